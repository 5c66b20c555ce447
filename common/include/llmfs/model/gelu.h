#pragma once

#include <torch/torch.h>

namespace llmfs {

/// GELU in the tanh approximation GPT-2 uses (book §4.3):
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). No parameters.
class GELUImpl : public torch::nn::Module {
 public:
  torch::Tensor forward(const torch::Tensor& x);
};
TORCH_MODULE(GELU);

}  // namespace llmfs
