#pragma once

#include <torch/torch.h>

#include "llmfs/ops/kernel_options.h"

namespace llmfs {

/// GELU in the tanh approximation GPT-2 uses (book §4.3):
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). No parameters. kernels.native_kernels:
/// PyTorch's fused kernel (torch::gelu(x, "tanh")), the same function in one pass over memory
/// (equal to the book's arithmetic up to rounding).
class GELUImpl : public torch::nn::Module {
 public:
  explicit GELUImpl(KernelOptions kernels_ = {}) : kernels(kernels_) {}
  torch::Tensor forward(const torch::Tensor& x);

  KernelOptions kernels;
};
TORCH_MODULE(GELU);

}  // namespace llmfs
