#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>

#include "llmfs/generate/sampling.h"
#include "llmfs/model/gpt_model.h"

namespace llmfs {

/// Chooses the next token of every row from the logits of the last position:
/// (B, vocab_size) float -> (B, 1) int64. Greedy decoding is greedy_next_token; chapter 5's
/// temperature / top-k sampling plugs in here.
using NextTokenFn = std::function<torch::Tensor(const torch::Tensor& logits)>;

/// The book's greedy choice (§4.7): softmax, then the arg-max (the first index on ties).
torch::Tensor greedy_next_token(const torch::Tensor& logits);

/// The book's generate_text_simple (§4.7): max_new_tokens times, crop the running sequence to
/// its last context_size tokens, run the whole sequence through the model without gradients,
/// append the greedy choice. idx: (B, T) int64 -> (B, T + max_new_tokens). Leaves the model's
/// mode alone (callers put it in eval mode, as the book does).
torch::Tensor generate_text_simple(GPTModel model, const torch::Tensor& idx, int64_t max_new_tokens,
                                   int64_t context_size);

/// Everything generate() takes besides the model and the prompt.
///
///   llmfs::GenerateOptions options{.max_new_tokens = 25, .sampling = {.temperature = 1.4, .top_k =
///   25}};
struct GenerateOptions {
  int64_t max_new_tokens = 0;
  /// Most tokens the model sees at once (the book's context_size); 0: the model's context_length.
  int64_t context_size = 0;
  /// How the next token is chosen (sampling.h): greedy by default.
  SamplingOptions sampling;
  /// Stop at this id without appending it (see generate()).
  std::optional<int64_t> eos_id = std::nullopt;
  /// true: KV cache (feed the prompt once, then one token per step; BOOK.md §5.5); false: the
  /// book's loop, re-reading the last context_size tokens every step. Same ids for the same seed
  /// (up to float rounding in the last bits of the logits, which only matters on exact ties).
  bool use_cache = true;
  /// Positions each layer's KV cache keeps; 0 = context_size (BOOK.md §5.5 variant 1). Smaller:
  /// a sliding window (variant 2), prompts prefilled in chunks of this size; its results differ
  /// from uncached generation once tokens drop out of the window.
  int64_t kv_window_size = 0;
  /// With the cache, once the sequence fills context_size: true caps max_new_tokens at
  /// context_size - prompt length as the book's cached generator does; false continues like the
  /// uncached loop, re-reading the last context_size tokens at every later step (the same
  /// tokens as generate_text_simple, at the uncached cost for those steps).
  bool stop_at_context = false;
  /// A next-token rule replacing `sampling` (generate_text_simple's greedy_next_token, tests).
  NextTokenFn next_token;
};

/// The one generation loop, token ids (B, T) int64 -> (B, T + n) with n <= max_new_tokens, on
/// the model's device. Each step, without gradients: the logits of the last position of the
/// last context_size tokens (through the KV cache or not), then the next token by
/// sample_next_token (the book's generate, §5.3.3: top-k, temperature, [top-p], softmax and
/// torch.multinomial; the arg-max when greedy) or options.next_token. The model's mode is left
/// alone (put it in eval mode first, as the book does). The ids returned are ordinary tensors
/// (usable in autograd later).
///
/// End of sequence: with eos_id set, a row that draws eos_id is finished. Batch size 1 (the
/// book's case): generation stops and the eos_id is not appended. Batch size > 1 (defined here;
/// the book's test only works for one row): generation continues while any row is unfinished;
/// a finished row gets eos_id in every later column (padding); when the last unfinished rows draw
/// eos_id the loop stops without appending that step. So every row's continuation ends at its
/// first eos_id, if any. Finished rows still take part in the batched draw, so the random stream
/// is consumed the same way whether or not rows finish.
torch::Tensor generate(GPTModel model, const torch::Tensor& idx, const GenerateOptions& options);

/// The book's generate (§5.3.3) with its arguments, without the KV cache (the book's arithmetic):
///
///   torch::manual_seed(123);
///   auto ids = llmfs::generate(model, idx, 15, 256, /*temperature=*/1.4, /*top_k=*/25);
torch::Tensor generate(GPTModel model, const torch::Tensor& idx, int64_t max_new_tokens,
                       int64_t context_size, double temperature = 0.0,
                       std::optional<int64_t> top_k = std::nullopt,
                       std::optional<int64_t> eos_id = std::nullopt);

/// The book's generate_text_simple_cached (ch04/03_kv-cache): greedy generation with a growing
/// KV cache, capped at context_size - prompt length new tokens. context_size 0: the model's.
torch::Tensor generate_text_simple_cached(GPTModel model, const torch::Tensor& idx,
                                          int64_t max_new_tokens, int64_t context_size = 0);

}  // namespace llmfs
