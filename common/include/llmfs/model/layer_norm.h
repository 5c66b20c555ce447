#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "llmfs/ops/kernel_options.h"

namespace llmfs {

/// Layer normalisation over the last dimension (book §4.2): scale * (x - mean) /
/// sqrt(var + eps) + shift with the biased variance and eps = 1e-5. `scale` starts at ones and
/// `shift` at zeros (no random draws).
class LayerNormImpl : public torch::nn::Module {
 public:
  /// kernels.native_kernels: PyTorch's fused kernel (torch::layer_norm) instead of the book's
  /// step-by-step arithmetic; the same function up to rounding.
  explicit LayerNormImpl(int64_t emb_dim, KernelOptions kernels = {});

  /// (..., emb_dim) -> same shape.
  torch::Tensor forward(const torch::Tensor& x);

  double eps = 1e-5;
  KernelOptions kernels;
  torch::Tensor scale, shift;  // (emb_dim)
};
TORCH_MODULE(LayerNorm);

}  // namespace llmfs
