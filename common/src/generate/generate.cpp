// Greedy text generation (book §4.7) with and without the KV cache (book ch04/03_kv-cache).
#include "llmfs/generate/generate.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "llmfs/attention/kv_cache.h"
#include "llmfs/generate/sampling.h"

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
  options.next_token = greedy_next_token;  // the book's arg-max of the softmax (§4.7)
  return generate(std::move(model), idx, options);
}

torch::Tensor generate_text_simple_cached(GPTModel model, const torch::Tensor& idx,
                                          int64_t max_new_tokens, int64_t context_size) {
  GenerateOptions options;
  options.max_new_tokens = max_new_tokens;
  options.context_size = context_size;
  options.use_cache = true;
  options.stop_at_context = true;
  options.next_token = greedy_next_token;
  return generate(std::move(model), idx, options);
}

torch::Tensor generate(GPTModel model, const torch::Tensor& idx, int64_t max_new_tokens,
                       int64_t context_size, double temperature, std::optional<int64_t> top_k,
                       std::optional<int64_t> eos_id) {
  GenerateOptions options;
  options.max_new_tokens = max_new_tokens;
  options.context_size = context_size;
  options.sampling.temperature = temperature;
  options.sampling.top_k = top_k;
  options.eos_id = eos_id;
  options.use_cache = false;  // the book's loop
  return generate(std::move(model), idx, options);
}

torch::Tensor generate(GPTModel model, const torch::Tensor& idx, const GenerateOptions& options) {
  check_ids(idx);
  const int64_t model_context = model->config().context_length;
  const int64_t context_size = options.context_size > 0 ? options.context_size : model_context;
  TORCH_CHECK(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ",
              options.max_new_tokens);
  TORCH_CHECK(context_size <= model_context, "generate: context_size ", context_size,
              " exceeds the model's context_length ", model_context);
  TORCH_CHECK(options.kv_window_size >= 0, "generate: kv_window_size must be >= 0, got ",
              options.kv_window_size);
  if (!options.next_token) check_sampling_options(options.sampling, "generate");
  const int64_t window =
      options.kv_window_size > 0 ? std::min(options.kv_window_size, context_size) : context_size;
  int64_t max_new_tokens = options.max_new_tokens;
  if (options.use_cache && options.stop_at_context) {
    // The book's rule: every generated token is fed back, so at most context - prompt of them.
    const int64_t prompt_in_context = std::min(idx.size(1), context_size);
    max_new_tokens = std::min(max_new_tokens, context_size - prompt_in_context);
    if (max_new_tokens < options.max_new_tokens) {
      spdlog::debug("generate: {} new tokens instead of {} (context size {})", max_new_tokens,
                    options.max_new_tokens, context_size);
    }
  }
  const auto choose = [&](const torch::Tensor& logits) {  // (B, V) -> (B, 1)
    return options.next_token ? options.next_token(logits)
                              : sample_next_token(logits, options.sampling);
  };

  // Every step's ids go into one preallocated (B, T + new) buffer on the model's device; a step
  // reads a view of it. It is made outside inference mode, so callers may use the ids in autograd
  // later (embedding lookups save their indices for backward, which inference tensors cannot).
  const auto device = model->tok_emb->weight.device();
  const int64_t batch = idx.size(0), prompt_len = idx.size(1);
  auto out = torch::empty({batch, prompt_len + max_new_tokens}, idx.options().device(device));
  out.narrow(1, 0, prompt_len).copy_(idx);
  int64_t length = prompt_len;
  {
    c10::InferenceMode inference;  // no autograd, no version-counter bookkeeping
    const auto context = [&] { return last_tokens(out.narrow(1, 0, length), context_size); };
    std::optional<KVCache> cache;
    if (options.use_cache) cache.emplace(model->make_kv_cache(window));
    torch::Tensor done;  // (B, 1) bool: rows that have drawn eos_id
    if (options.eos_id) done = torch::zeros({batch, 1}, out.options().dtype(torch::kBool));

    for (int64_t step = 0; step < max_new_tokens; ++step) {
      torch::Tensor logits;  // (B, T, V)
      if (!cache) {
        logits = model(context());
      } else if (step == 0 || cache->position() >= context_size) {
        // First step, or the context is full: (re)fill the cache with the last context_size ids,
        // exactly the tokens and positions the uncached loop feeds.
        cache->reset();
        logits = prefill(model, *cache, context(), window);
      } else {
        logits = model(out.narrow(1, length - 1, 1), &*cache);
      }
      auto next = choose(logits.select(1, logits.size(1) - 1));
      if (options.eos_id) {
        const auto is_eos = next.eq(*options.eos_id);
        next = next.masked_fill(done, *options.eos_id);  // finished rows are padded with eos_id
        done = done.logical_or(is_eos);
        if (done.all().item<bool>()) break;  // the book: stop without appending
      }
      out.narrow(1, length, 1).copy_(next);
      ++length;
    }
  }
  return length == out.size(1) ? out : out.narrow(1, 0, length).clone();
}

}  // namespace llmfs
