#include "llmfs/model/gelu.h"

#include <cmath>

namespace llmfs {

torch::Tensor GELUImpl::forward(const torch::Tensor& x) {
  if (kernels.native_kernels) return torch::gelu(x, "tanh");
  // The book's constant is the float32 sqrt of a float32 tensor holding 2/pi
  // (torch.sqrt(torch.tensor(2.0 / torch.pi))); computed the same way it is exactly a float, so
  // multiplying by it as a scalar gives the book's values bit for bit.
  static const double kSqrt2OverPi = torch::sqrt(torch::tensor(2.0 / M_PI)).item<double>();
  return 0.5 * x * (1 + torch::tanh(kSqrt2OverPi * (x + 0.044715 * torch::pow(x, 3))));
}

}  // namespace llmfs
