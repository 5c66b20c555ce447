#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>

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
torch::Tensor generate_text_simple(GPTModel model, const torch::Tensor& idx,
                                   int64_t max_new_tokens, int64_t context_size);

/// How generate_tokens runs.
struct GenerateOptions {
  int64_t max_new_tokens = 0;
  /// Most tokens the model sees at once; 0: the model's context_length.
  int64_t context_size = 0;
  /// true: KV cache (feed the prompt once, then one token per step); false: the book's loop.
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
  /// The next-token rule; empty: greedy_next_token.
  NextTokenFn next_token;
};

/// Generation from idx (B, T) int64: (B, T + new tokens). With options.use_cache and greedy
/// choice the tokens equal generate_text_simple's (BOOK.md CI-03). No gradients; the model's
/// mode is left alone.
torch::Tensor generate_tokens(GPTModel model, const torch::Tensor& idx,
                              const GenerateOptions& options);

/// The book's generate_text_simple_cached (ch04/03_kv-cache): greedy generation with a growing
/// KV cache, capped at context_size - prompt length new tokens. context_size 0: the model's.
torch::Tensor generate_text_simple_cached(GPTModel model, const torch::Tensor& idx,
                                          int64_t max_new_tokens, int64_t context_size = 0);

}  // namespace llmfs
