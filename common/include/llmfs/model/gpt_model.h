#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <span>
#include <vector>

#include "llmfs/model/gpt_config.h"
#include "llmfs/attention/kv_cache.h"
#include "llmfs/model/transformer_block.h"

namespace llmfs {

/// The GPT model of book §4.6. Members, created in the book's order so that
/// torch::manual_seed(123) reproduces its weights: tok_emb, pos_emb, drop_emb, trf_blocks
/// (children 0 .. n_layers-1), final_norm, out_head (no bias). Parameter names equal the book's
/// state_dict keys ("trf_blocks.0.att.W_query.weight", "out_head.weight", ...).
///
/// With cfg.tie_weights the output head is the token embedding (GPT-2 proper): no `out_head`
/// module is registered and the logits are x @ tok_emb.weightᵀ. With cfg.attention "sdpa" the
/// attention uses torch::scaled_dot_product_attention.
class GPTModelImpl : public torch::nn::Module {
 public:
  explicit GPTModelImpl(const GPTConfig& cfg);

  /// in_idx: (B, T) int64 token ids -> logits (B, T, vocab_size).
  /// Without a cache, T <= context_length and the positions are 0 .. T-1. With a cache, the
  /// positions continue from cache->position() (which advances by T) and must stay below
  /// context_length; the blocks attend to the cached keys and values as well. last_only: the
  /// final norm and the head run at the last position only, logits (B, 1, vocab_size) (what
  /// generation needs from a prompt).
  torch::Tensor forward(const torch::Tensor& in_idx, KVCache* cache = nullptr,
                        bool last_only = false);

  /// The logits at one position per row: in_idx (B, T), rows (B) int64 in [0, T) -> (B, V),
  /// equal to forward(in_idx)[b, rows[b]] (within float rounding). The last block computes
  /// keys and values everywhere but its query, feed-forward, the final norm and the head only at
  /// the chosen positions: what a classifier reading one position needs (book §6.5).
  torch::Tensor forward_rows(const torch::Tensor& in_idx, const torch::Tensor& rows);
  /// One new token for each of B independent sequences, each with its own cache and position:
  /// ids (B) int64, caches[b] the cache of sequence b -> logits (B, vocab_size); each cache
  /// advances by one. The matrix products run over the whole batch (what makes serving several
  /// conversations at once cheaper than one after another); row b equals
  /// forward(ids[b].view({1, 1}), caches[b], true) up to the rounding of a batched product
  /// (exactly for B = 1).
  torch::Tensor forward_step(const torch::Tensor& ids, std::span<KVCache* const> caches);

  const GPTConfig& config() const { return cfg_; }

  /// A KV cache sized for this model (window 0: keep every position).
  KVCache make_kv_cache(int64_t window = 0) const;

  torch::nn::Embedding tok_emb{nullptr}, pos_emb{nullptr};
  torch::nn::Dropout drop_emb{nullptr};
  torch::nn::ModuleList trf_blocks{nullptr};
  LayerNorm final_norm{nullptr};
  torch::nn::Linear out_head{nullptr};  // empty with tie_weights

 private:
  torch::Tensor embed(const torch::Tensor& in_idx, int64_t start);  // dropout(tok + pos)
  torch::Tensor dropout_embeddings(const torch::Tensor& x);
  torch::Tensor head(const torch::Tensor& x);                        // out_head or the tied one
  GPTConfig cfg_;
  std::vector<TransformerBlock> blocks_;  // the same modules as trf_blocks, typed
};
TORCH_MODULE(GPTModel);

/// Parameters of the model the way the book counts them "considering weight tying" (§4.6):
/// all parameters minus those of the output head (equal to the total when tied).
int64_t count_parameters_tied(const GPTModelImpl& model);

}  // namespace llmfs
