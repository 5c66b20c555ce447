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

}  // namespace llmfs
