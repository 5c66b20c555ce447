#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace llmfs {

/// Layer normalisation over the last dimension (book §4.2): scale * (x - mean) /
/// sqrt(var + eps) + shift with the biased variance and eps = 1e-5. `scale` starts at ones and
/// `shift` at zeros (no random draws).
class LayerNormImpl : public torch::nn::Module {
 public:
  /// `native`: PyTorch's fused kernel (torch::layer_norm) instead of the book's step-by-step
  /// arithmetic; the same function up to rounding.
  explicit LayerNormImpl(int64_t emb_dim, bool native = false);

  /// (..., emb_dim) -> same shape.
  torch::Tensor forward(const torch::Tensor& x);

  double eps = 1e-5;
  bool native = false;
  torch::Tensor scale, shift;  // (emb_dim)
};
TORCH_MODULE(LayerNorm);

}  // namespace llmfs
