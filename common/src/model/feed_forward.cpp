#include "llmfs/model/feed_forward.h"

#include "llmfs/model/gelu.h"
#include "llmfs/ops/linear.h"

namespace llmfs {

FeedForwardImpl::FeedForwardImpl(const GPTConfig& cfg) {
  TORCH_CHECK(cfg.emb_dim > 0, "FeedForward: emb_dim must be positive, got ", cfg.emb_dim);
  // One statement per linear layer: expand first, then contract (the seeded order).
  torch::nn::Sequential seq;
  seq->push_back(torch::nn::Linear(cfg.emb_dim, 4 * cfg.emb_dim));
  seq->push_back(GELU(cfg.kernels()));
  seq->push_back(torch::nn::Linear(4 * cfg.emb_dim, cfg.emb_dim));
  layers = register_module("layers", seq);
  kernels_ = cfg.kernels();
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  // layers->forward(x) would run LibTorch's LinearImpl::forward (see linear.h).
  const auto h = linear(*layers[0]->as<torch::nn::Linear>(), x, kernels_);  // (B, T, 4C)
  return linear(*layers[2]->as<torch::nn::Linear>(), layers[1]->as<GELU>()->forward(h), kernels_);
}

}  // namespace llmfs
