#pragma once

#include <torch/torch.h>

namespace llmfs {

/// GELU in the tanh approximation GPT-2 uses (book §4.3):
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). No parameters. `native`: PyTorch's fused
/// kernel (torch::gelu(x, "tanh")), the same function in one pass over memory (equal to the
/// book's arithmetic up to rounding).
class GELUImpl : public torch::nn::Module {
 public:
  explicit GELUImpl(bool native_kernel = false) : native(native_kernel) {}
  torch::Tensor forward(const torch::Tensor& x);

  bool native;
};
TORCH_MODULE(GELU);

}  // namespace llmfs
