// Greedy text generation (book §4.7) with and without the KV cache (book ch04/03_kv-cache).
#include "llmfs/generate/generate.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "llmfs/attention/kv_cache.h"

namespace llmfs {

namespace {

void check_ids(const torch::Tensor& idx) {
  TORCH_CHECK(idx.dim() == 2 && idx.size(1) > 0,
              "generate: expected token ids (B, T) with T >= 1, got ", idx.sizes());
  TORCH_CHECK(idx.scalar_type() == torch::kLong, "generate: token ids must be int64, got ",
              idx.scalar_type());
}

torch::Tensor last_tokens(const torch::Tensor& idx, int64_t n) {
  const int64_t t = idx.size(1);
  return t <= n ? idx : idx.narrow(1, t - n, n);
}

// Feeds `tokens` through the model in chunks of at most `chunk` tokens; the last chunk's logits.
torch::Tensor prefill(GPTModel& model, KVCache& cache, const torch::Tensor& tokens, int64_t chunk) {
  torch::Tensor logits;
  for (int64_t i = 0; i < tokens.size(1); i += chunk) {
    logits = model(tokens.narrow(1, i, std::min(chunk, tokens.size(1) - i)), &cache);
  }
  return logits;
}

}  // namespace

torch::Tensor greedy_next_token(const torch::Tensor& logits) {
  TORCH_CHECK(logits.dim() == 2, "greedy_next_token: expected logits (B, V), got ", logits.sizes());
  const auto probas = torch::softmax(logits, -1);  // (B, V); the book takes the arg-max of these
  return torch::argmax(probas, -1, /*keepdim=*/true);  // (B, 1)
}

torch::Tensor generate_text_simple(GPTModel model, const torch::Tensor& idx, int64_t max_new_tokens,
                                   int64_t context_size) {
  GenerateOptions options;
  options.max_new_tokens = max_new_tokens;
  options.context_size = context_size;
  options.use_cache = false;
  return generate_tokens(std::move(model), idx, options);
}

torch::Tensor generate_text_simple_cached(GPTModel model, const torch::Tensor& idx,
                                          int64_t max_new_tokens, int64_t context_size) {
  GenerateOptions options;
  options.max_new_tokens = max_new_tokens;
  options.context_size = context_size;
  options.use_cache = true;
  options.stop_at_context = true;
  return generate_tokens(std::move(model), idx, options);
}

torch::Tensor generate_tokens(GPTModel model, const torch::Tensor& idx,
                              const GenerateOptions& options) {
  check_ids(idx);
  const int64_t model_context = model->config().context_length;
  const int64_t context_size = options.context_size > 0 ? options.context_size : model_context;
  TORCH_CHECK(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ",
              options.max_new_tokens);
  TORCH_CHECK(context_size <= model_context, "generate: context_size ", context_size,
              " exceeds the model's context_length ", model_context);
  TORCH_CHECK(options.kv_window_size >= 0, "generate: kv_window_size must be >= 0, got ",
              options.kv_window_size);
  const NextTokenFn next_token = options.next_token ? options.next_token : greedy_next_token;
  const int64_t window =
      options.kv_window_size > 0 ? std::min(options.kv_window_size, context_size) : context_size;
  const auto prompt = last_tokens(idx, context_size);
  int64_t max_new_tokens = options.max_new_tokens;
  if (options.use_cache && options.stop_at_context) {
    // The book's rule: every generated token is fed back, so at most context - prompt of them.
    max_new_tokens = std::min(max_new_tokens, context_size - prompt.size(1));
    if (max_new_tokens < options.max_new_tokens) {
      spdlog::debug("generate: {} new tokens instead of {} (context size {})", max_new_tokens,
                    options.max_new_tokens, context_size);
    }
  }

  // Every step's ids go into one preallocated (B, T + new) buffer; a step reads a view of it.
  // It is made outside inference mode, so callers may use the ids in autograd later (embedding
  // lookups save their indices for backward, which inference tensors cannot be).
  const int64_t prompt_len = idx.size(1);
  auto out = torch::empty({idx.size(0), prompt_len + max_new_tokens}, idx.options());
  c10::InferenceMode inference;  // no autograd, no version-counter bookkeeping
  out.narrow(1, 0, prompt_len).copy_(idx);
  int64_t length = prompt_len;
  const auto append = [&](const torch::Tensor& next) {  // next: (B, 1)
    out.narrow(1, length, 1).copy_(next);
    ++length;
  };

  if (!options.use_cache) {
    for (int64_t step = 0; step < max_new_tokens; ++step) {
      const auto logits = model(last_tokens(out.narrow(1, 0, length), context_size));
      append(next_token(logits.select(1, logits.size(1) - 1)));
    }
    return out;
  }

  KVCache cache = model->make_kv_cache(window);
  auto logits = prefill(model, cache, prompt, window);
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    append(next_token(logits.select(1, logits.size(1) - 1)));
    if (step + 1 == max_new_tokens) break;  // the last token's logits are never needed
    if (cache.position() < context_size) {
      logits = model(out.narrow(1, length - 1, 1), &cache);
    } else {
      // The context is full: continue as the uncached loop does, from the last context_size ids.
      cache.reset();
      logits = prefill(model, cache, last_tokens(out.narrow(1, 0, length), context_size), window);
    }
  }
  return out;
}

}  // namespace llmfs
