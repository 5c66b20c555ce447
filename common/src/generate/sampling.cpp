// Decoding strategies of book §5.3: temperature scaling, top-k, multinomial sampling, plus
// nucleus (top-p) filtering, and the book's generate loop with end-of-sequence handling and an
// optional KV cache.
#include "llmfs/generate/sampling.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "llmfs/core/error.h"
#include "llmfs/attention/kv_cache.h"

namespace llmfs {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

void check_logits(const torch::Tensor& logits, const char* what) {
  TORCH_CHECK(logits.dim() >= 1 && logits.size(-1) > 0, what,
              ": expected logits (..., V) with V >= 1, got ", logits.sizes());
  TORCH_CHECK(logits.is_floating_point(), what, ": expected floating-point logits, got ",
              logits.scalar_type());
}

}  // namespace

std::string SamplingOptions::describe() const {
  if (temperature <= 0.0) return "greedy";
  std::string s = fmt::format("temperature {:g}", temperature);
  if (top_k) s += fmt::format(", top-k {}", *top_k);
  if (top_p) s += fmt::format(", top-p {:g}", *top_p);
  return s;
}

void check_sampling_options(const SamplingOptions& options, const std::string& what) {
  if (!std::isfinite(options.temperature) || options.temperature < 0.0) {
    fail("{}: temperature must be a number >= 0 (0 = greedy), got {:g}", what, options.temperature);
  }
  if (options.top_k && *options.top_k < 1) {
    fail("{}: top_k must be >= 1, got {}", what, *options.top_k);
  }
  if (options.top_p && !(*options.top_p > 0.0 && *options.top_p <= 1.0)) {
    fail("{}: top_p must be in (0, 1], got {:g}", what, *options.top_p);
  }
}

torch::Tensor scale_by_temperature(const torch::Tensor& logits, double temperature) {
  TORCH_CHECK(temperature > 0.0 && std::isfinite(temperature),
              "scale_by_temperature: temperature must be > 0, got ", temperature);
  return logits / temperature;  // a Python float divisor: the same kernel as the book's
}

torch::Tensor softmax_with_temperature(const torch::Tensor& logits, double temperature) {
  check_logits(logits, "softmax_with_temperature");
  return torch::softmax(scale_by_temperature(logits, temperature), /*dim=*/-1);
}

torch::Tensor top_k_logits(const torch::Tensor& logits, int64_t k) {
  check_logits(logits, "top_k_logits");
  TORCH_CHECK(k >= 1, "top_k_logits: k must be >= 1, got ", k);
  const int64_t vocab = logits.size(-1);
  if (k >= vocab) return logits;
  const auto top = std::get<0>(torch::topk(logits, k, /*dim=*/-1));  // (..., k), descending
  const auto kth = top.narrow(-1, k - 1, 1);                         // (..., 1)
  return logits.masked_fill(logits < kth, kNegInf);
}

torch::Tensor top_p_logits(const torch::Tensor& logits, double p) {
  check_logits(logits, "top_p_logits");
  TORCH_CHECK(p > 0.0 && p <= 1.0, "top_p_logits: p must be in (0, 1], got ", p);
  if (p >= 1.0) return logits;
  // Descending by logit; stable, so equal logits stay in id order.
  const auto [sorted_logits, order] =
      torch::sort(logits, /*stable=*/true, /*dim=*/-1, /*descending=*/true);
  const auto sorted_probs = torch::softmax(sorted_logits, -1);  // (..., V)
  // Probability of the tokens before each one: an exclusive prefix sum.
  const auto cumulative = sorted_probs.cumsum(-1);
  const auto before = torch::cat({torch::zeros_like(cumulative.narrow(-1, 0, 1)),
                                  cumulative.narrow(-1, 0, logits.size(-1) - 1)},
                                 -1);
  auto drop_sorted = before >= p;
  drop_sorted.narrow(-1, 0, 1).fill_(false);  // the most probable token always stays
  const auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
  return logits.masked_fill(drop, kNegInf);
}

torch::Tensor sample_multinomial(const torch::Tensor& probs,
                                 std::optional<at::Generator> generator) {
  TORCH_CHECK(probs.dim() == 1 || probs.dim() == 2,
              "sample_multinomial: expected probabilities (V) or (B, V), got ", probs.sizes());
  TORCH_CHECK(probs.is_floating_point(),
              "sample_multinomial: expected floating-point probabilities, got ",
              probs.scalar_type());
  return torch::multinomial(probs, /*num_samples=*/1, /*replacement=*/false, generator);
}

torch::Tensor sample_next_token(const torch::Tensor& logits, const SamplingOptions& options,
                                std::optional<at::Generator> generator) {
  TORCH_CHECK(logits.dim() == 2, "sample_next_token: expected logits (B, V), got ", logits.sizes());
  check_logits(logits, "sample_next_token");
  check_sampling_options(options, "sample_next_token");
  auto scores = logits;
  if (options.top_k) scores = top_k_logits(scores, *options.top_k);
  if (options.temperature <= 0.0) return torch::argmax(scores, /*dim=*/-1, /*keepdim=*/true);
  scores = scale_by_temperature(scores, options.temperature);
  // The book subtracts the row maximum (for MPS); mathematically neutral, kept for parity.
  scores = scores - std::get<0>(scores.max(/*dim=*/-1, /*keepdim=*/true));
  if (options.top_p) scores = top_p_logits(scores, *options.top_p);
  return sample_multinomial(torch::softmax(scores, /*dim=*/-1), std::move(generator));
}

// --- Generation loop ---

torch::Tensor generate(GPTModel model, const torch::Tensor& idx, int64_t max_new_tokens,
                       int64_t context_size, double temperature, std::optional<int64_t> top_k,
                       std::optional<int64_t> eos_id) {
  DecodingOptions options;
  options.max_new_tokens = max_new_tokens;
  options.context_size = context_size;
  options.sampling.temperature = temperature;
  options.sampling.top_k = top_k;
  options.eos_id = eos_id;
  return generate(std::move(model), idx, options);
}

torch::Tensor generate(GPTModel model, const torch::Tensor& idx, const DecodingOptions& options) {
  TORCH_CHECK(idx.dim() == 2 && idx.size(1) >= 1,
              "generate: expected token ids (B, T) with T >= 1, got ", idx.sizes());
  TORCH_CHECK(idx.scalar_type() == torch::kLong, "generate: token ids must be int64, got ",
              idx.scalar_type());
  TORCH_CHECK(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ",
              options.max_new_tokens);
  const int64_t model_context = model->config().context_length;
  const int64_t context_size = options.context_size > 0 ? options.context_size : model_context;
  TORCH_CHECK(context_size <= model_context, "generate: context_size ", context_size,
              " exceeds the model's context_length ", model_context);
  check_sampling_options(options.sampling, "generate");
  torch::NoGradGuard no_grad;

  // All ids live in one (B, T + max_new_tokens) buffer on the model's device; steps read views.
  const auto device = model->tok_emb->weight.device();
  const int64_t batch = idx.size(0), prompt_len = idx.size(1);
  auto out = torch::empty({batch, prompt_len + options.max_new_tokens},
                          idx.options().device(device));
  out.narrow(1, 0, prompt_len).copy_(idx);
  int64_t length = prompt_len;
  const auto context = [&] {  // the last context_size ids, (B, <= context_size)
    const int64_t n = std::min(length, context_size);
    return out.narrow(1, length - n, n);
  };

  std::optional<KVCache> cache;
  if (options.use_cache) cache.emplace(model->make_kv_cache());
  auto done = torch::zeros({batch, 1}, torch::TensorOptions().dtype(torch::kBool).device(device));

  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    torch::Tensor logits;  // (B, T, V)
    if (!cache) {
      logits = model->forward(context());
    } else if (step == 0 || cache->position() >= context_size) {
      // First step, or the context is full: (re)fill the cache with the last context_size ids,
      // exactly the tokens and positions the uncached loop feeds.
      cache->reset();
      logits = model->forward(context(), &*cache);
    } else {
      logits = model->forward(out.narrow(1, length - 1, 1), &*cache);
    }
    auto next = sample_next_token(logits.select(1, logits.size(1) - 1), options.sampling);  // (B, 1)
    if (options.eos_id) {
      const auto is_eos = next.eq(*options.eos_id);
      next = next.masked_fill(done, *options.eos_id);  // finished rows are padded with eos_id
      done = done.logical_or(is_eos);
      if (done.all().item<bool>()) break;  // the book: stop without appending
    }
    out.narrow(1, length, 1).copy_(next);
    ++length;
  }
  return length == out.size(1) ? out : out.narrow(1, 0, length).clone();
}

}  // namespace llmfs
