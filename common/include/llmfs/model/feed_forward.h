#pragma once

#include <torch/torch.h>

#include "llmfs/model/gpt_config.h"
#include "llmfs/ops/kernel_options.h"

namespace llmfs {

/// The transformer block's feed-forward network (book §4.3): Linear(emb_dim, 4 emb_dim), GELU,
/// Linear(4 emb_dim, emb_dim), in a Sequential named `layers` (keys layers.0.*, layers.2.*).
class FeedForwardImpl : public torch::nn::Module {
 public:
  explicit FeedForwardImpl(const GPTConfig& cfg);

  /// (B, T, emb_dim) -> (B, T, emb_dim).
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Sequential layers{nullptr};

 private:
  KernelOptions kernels_;  // GPTConfig::kernels(): GELU's kernel, one-token products (linear.h)
};
TORCH_MODULE(FeedForward);

}  // namespace llmfs
