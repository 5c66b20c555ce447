#pragma once

#include <torch/torch.h>

namespace llmfs {

/// Applies a linear layer the way Python's nn.Linear does: ATen's torch::linear, which runs a
/// (B, T, in) input as one fused addmm. LibTorch's LinearImpl::forward instead multiplies and
/// then adds the bias, which rounds differently and records AddBackward0 where PyTorch records
/// ViewBackward0 (book C3-32). Every linear layer of the model goes through here.
inline torch::Tensor linear(const torch::nn::LinearImpl& layer, const torch::Tensor& x) {
  return torch::linear(x, layer.weight, layer.bias);
}

inline torch::Tensor linear(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return linear(*layer, x);
}

}  // namespace llmfs
