#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>


namespace llmfs {

/// How the next token is chosen from the logits of the last position (book §5.3). The defaults
/// are greedy decoding.
///
///   llmfs::SamplingOptions s{.temperature = 1.4, .top_k = 25};
struct SamplingOptions {
  /// 0: greedy (arg-max of the logits, the first index on ties); > 0: multinomial sampling from
  /// softmax(logits / temperature). Must be >= 0.
  double temperature = 0.0;
  /// Keep the top_k largest logits (and any logit tied with the k-th), the others become -inf;
  /// applied before the temperature, as in the book. Must be >= 1; values above the vocabulary
  /// size keep everything.
  std::optional<int64_t> top_k = std::nullopt;
  /// Nucleus sampling (ours, not in the book): after top-k and the temperature, keep the most
  /// probable tokens until their probability reaches top_p (at least one token). In (0, 1];
  /// 1 keeps everything. Greedy decoding ignores it (the arg-max is always kept).
  std::optional<double> top_p = std::nullopt;

  /// "greedy", "temperature 1.4, top-k 25", ... for logs and headings.
  std::string describe() const;
};

/// llmfs::Error with a one-line message for temperature < 0 (or not finite), top_k < 1, top_p
/// outside (0, 1]. `what` prefixes the message ("--temperature", "generate.temperature").
void check_sampling_options(const SamplingOptions& options, const std::string& what = "sampling");

/// logits / temperature (temperature > 0): the book's temperature scaling. Any shape.
torch::Tensor scale_by_temperature(const torch::Tensor& logits, double temperature);

/// The book's softmax_with_temperature (§5.3.1): softmax(logits / temperature) over the last
/// dimension. Any shape (..., V).
torch::Tensor softmax_with_temperature(const torch::Tensor& logits, double temperature);

/// Top-k filtering (§5.3.2): (..., V) -> (..., V) with every logit smaller than the k-th largest
/// of its row set to -inf. Ties with the k-th value survive, so more than k may remain. Each row
/// is filtered on its own (the book's version compares against the first row's threshold).
torch::Tensor top_k_logits(const torch::Tensor& logits, int64_t k);

/// Nucleus (top-p) filtering: (..., V) -> (..., V). Sorts each row's softmax(logits) in
/// descending order (stable: equal logits keep id order) and keeps a token while the
/// probability of the tokens before it is below p; the others become -inf. The most probable
/// token always survives; p = 1 keeps every token of positive probability.
torch::Tensor top_p_logits(const torch::Tensor& logits, double p);

/// One multinomial draw per row: probabilities (V) -> (1) or (B, V) -> (B, 1), int64. This is
/// torch.multinomial(probs, num_samples=1), so it consumes the global CPU generator (or
/// `generator`) exactly as PyTorch does (BOOK.md §13.4): one exponential variate per entry, then
/// the arg-max of p / q. Rows need not be normalised; they must be non-negative with a positive
/// sum.
torch::Tensor sample_multinomial(const torch::Tensor& probs,
                                 std::optional<at::Generator> generator = std::nullopt);

/// The next token of every row of logits (B, V) -> (B, 1) int64, following the book's generate:
/// top-k if set; then, with temperature > 0, divide by it, subtract the row maximum (neutral,
/// kept for parity), top-p if set, softmax and one multinomial draw; otherwise the arg-max.
torch::Tensor sample_next_token(const torch::Tensor& logits, const SamplingOptions& options,
                                std::optional<at::Generator> generator = std::nullopt);

}  // namespace llmfs
