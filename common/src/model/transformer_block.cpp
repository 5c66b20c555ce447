#include "llmfs/model/transformer_block.h"

#include "llmfs/ops/fused_dropout.h"
#include "llmfs/attention/kv_cache.h"

namespace llmfs {

TransformerBlockImpl::TransformerBlockImpl(const GPTConfig& cfg) {
  // The book's __init__ order: attention, feed-forward, norm1, norm2, shortcut dropout.
  att = register_module(
      "att", MultiHeadAttention(MultiHeadAttentionOptions(cfg.emb_dim, cfg.emb_dim,
                                                          cfg.context_length, cfg.n_heads)
                                    .dropout(cfg.drop_rate)
                                    .qkv_bias(cfg.qkv_bias)
                                    .use_sdpa(cfg.attention == "sdpa")
                                    .kernels(cfg.kernels())));
  ff = register_module("ff", FeedForward(cfg));
  norm1 = register_module("norm1", LayerNorm(cfg.emb_dim, cfg.kernels()));
  norm2 = register_module("norm2", LayerNorm(cfg.emb_dim, cfg.kernels()));
  drop_shortcut = register_module("drop_shortcut", torch::nn::Dropout(cfg.drop_rate));
  kernels_ = cfg.kernels();
}

torch::Tensor TransformerBlockImpl::drop(const torch::Tensor& x) {
  if (kernels_.native_kernels) return fused_dropout(x, drop_shortcut->options.p(), is_training());
  return drop_shortcut(x);
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x, LayerKVCache* cache) {
  auto shortcut = x;
  auto h = drop(att(norm1(x), cache));
  h = h + shortcut;
  shortcut = h;
  h = drop(ff(norm2(h)));
  return h + shortcut;
}

torch::Tensor TransformerBlockImpl::forward_step(const torch::Tensor& x,
                                                std::span<LayerKVCache* const> caches) {
  const auto h = drop(att->forward_step(norm1(x), caches)) + x;
  return drop(ff(norm2(h))) + h;
}

torch::Tensor TransformerBlockImpl::forward_rows(const torch::Tensor& x, const torch::Tensor& rows) {
  const auto picked = x.gather(1, rows.view({-1, 1, 1}).expand({x.size(0), 1, x.size(2)}));
  const auto h = drop(att->forward_rows(norm1(x), rows)) + picked;
  return drop(ff(norm2(h))) + h;
}

}  // namespace llmfs
