// Appendix E's LoRA layer, and how llmfs::linear adds it to the layer it is attached to.
#include "llmfs/ops/lora.h"

#include <cmath>

#include "llmfs/ops/linear.h"

namespace llmfs {

LoRALayerImpl::LoRALayerImpl(int64_t in_dim, int64_t out_dim, int64_t rank, double scale_)
    : scale(scale_) {
  TORCH_CHECK(in_dim > 0 && out_dim > 0 && rank > 0,
              "LoRALayer: in_dim, out_dim and rank must be positive, got ", in_dim, ", ", out_dim,
              ", ", rank);
  A = register_parameter("A", torch::empty({in_dim, rank}));
  {
    torch::NoGradGuard no_grad;
    // nn.init.kaiming_uniform_(A, a=sqrt(5)): fan_in of an (in_dim, rank) matrix is rank.
    torch::nn::init::kaiming_uniform_(A, std::sqrt(5.0));
  }
  B = register_parameter("B", torch::zeros({rank, out_dim}));
}

torch::Tensor LoRALayerImpl::forward(const torch::Tensor& x) {
  return scale * torch::matmul(torch::matmul(x, A), B);  // the book: alpha * (x @ A @ B)
}

torch::Tensor LoRALayerImpl::delta_weight() const { return (scale * torch::matmul(A, B)).t(); }

LoRALayerImpl* lora_of(const torch::nn::LinearImpl& layer) {
  const auto children = layer.named_children();
  if (children.is_empty()) return nullptr;
  const auto* found = children.find(kLoRAChild);
  return found != nullptr ? (*found)->as<LoRALayerImpl>() : nullptr;
}

namespace {
thread_local bool adapters_enabled = true;
}  // namespace

LoRADisabled::LoRADisabled() : previous_(adapters_enabled) { adapters_enabled = false; }
LoRADisabled::~LoRADisabled() { adapters_enabled = previous_; }
bool lora_enabled() { return adapters_enabled; }

torch::Tensor add_adapter(const torch::nn::LinearImpl& layer, const torch::Tensor& x,
                          torch::Tensor y) {
  if (!adapters_enabled) return y;
  auto* lora = lora_of(layer);
  if (lora == nullptr) return y;
  return y + lora->forward(x);
}

}  // namespace llmfs
