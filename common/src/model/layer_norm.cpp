#include "llmfs/model/layer_norm.h"

#include <cmath>

namespace llmfs {

LayerNormImpl::LayerNormImpl(int64_t emb_dim, KernelOptions kernels_) : kernels(kernels_) {
  TORCH_CHECK(emb_dim > 0, "LayerNorm: emb_dim must be positive, got ", emb_dim);
  scale = register_parameter("scale", torch::ones({emb_dim}));
  shift = register_parameter("shift", torch::zeros({emb_dim}));
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == scale.size(0), "LayerNorm: expected (..., ",
              scale.size(0), "), got ", x.sizes());
  if (kernels.native_kernels) return torch::layer_norm(x, {scale.size(0)}, scale, shift, eps);
  // The book's arithmetic step by step (biased variance), so values match to the last bit.
  const auto mean = x.mean(-1, /*keepdim=*/true);
  const auto var = x.var(-1, /*unbiased=*/false, /*keepdim=*/true);
  const auto norm_x = (x - mean) / torch::sqrt(var + eps);
  return scale * norm_x + shift;
}

}  // namespace llmfs
