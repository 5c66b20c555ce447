#pragma once

#include <torch/torch.h>

#include <span>

#include "llmfs/attention/multi_head_attention.h"
#include "llmfs/model/feed_forward.h"
#include "llmfs/model/gpt_config.h"
#include "llmfs/model/layer_norm.h"
#include "llmfs/ops/kernel_options.h"

namespace llmfs {

class LayerKVCache;

/// The pre-LayerNorm transformer block of book §4.5. Members in the book's order: att, ff,
/// norm1, norm2, drop_shortcut. Forward: x + drop(att(norm1(x))), then x + drop(ff(norm2(x))).
class TransformerBlockImpl : public torch::nn::Module {
 public:
  explicit TransformerBlockImpl(const GPTConfig& cfg);

  /// (B, T, emb_dim) -> (B, T, emb_dim); `cache` as in MultiHeadAttention::forward.
  torch::Tensor forward(const torch::Tensor& x, LayerKVCache* cache = nullptr);
  /// One position per row: x (B, T, emb_dim), rows (B) int64 -> (B, 1, emb_dim), equal to
  /// forward(x)[b, rows[b]] at a fraction of the work (MultiHeadAttention::forward_rows).
  torch::Tensor forward_rows(const torch::Tensor& x, const torch::Tensor& rows);
  /// One new token for each of B sequences with their own caches (MultiHeadAttention::
  /// forward_step): (B, 1, emb_dim) -> (B, 1, emb_dim).
  torch::Tensor forward_step(const torch::Tensor& x, std::span<LayerKVCache* const> caches);

  MultiHeadAttention att{nullptr};
  FeedForward ff{nullptr};
  LayerNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Dropout drop_shortcut{nullptr};

 private:
  torch::Tensor drop(const torch::Tensor& x);  // drop_shortcut, or fused_dropout (native_kernels)
  KernelOptions kernels_;
};
TORCH_MODULE(TransformerBlock);

}  // namespace llmfs
