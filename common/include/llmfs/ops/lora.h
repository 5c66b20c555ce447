#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace llmfs {

/// Appendix E's LoRALayer: a low-rank update beside a frozen linear layer. A is in_dim × rank,
/// B is rank × out_dim, and forward(x) = scale · (x A) B, with scale = α / r (the book's
/// repository since PR #823; the print book used α alone: pass that as the scale).
/// Initialisation: A Kaiming-uniform with a = √5 (U(−1/√r, 1/√r), drawn from the global
/// generator), B zeros, so the wrapped layer starts out unchanged.
class LoRALayerImpl : public torch::nn::Module {
 public:
  LoRALayerImpl(int64_t in_dim, int64_t out_dim, int64_t rank, double scale);

  /// (…, in_dim) -> (…, out_dim).
  torch::Tensor forward(const torch::Tensor& x);

  /// The update as a weight of the wrapped layer: scale · (A B)ᵀ, (out_dim, in_dim).
  torch::Tensor delta_weight() const;

  torch::Tensor A, B;
  double scale;
};
TORCH_MODULE(LoRALayer);

/// The registered name of the adapter inside a linear layer: "W_query.lora.A".
inline constexpr const char* kLoRAChild = "lora";

/// The adapter attached to a linear layer (its child module "lora", put there by
/// llmfs::apply_lora), or nullptr. Every linear layer of the model goes through llmfs::linear
/// (linear.h), which adds the adapter's output to the layer's.
LoRALayerImpl* lora_of(const torch::nn::LinearImpl& layer);

/// While one is alive, every adapter is skipped on this thread: the wrapped layers compute with
/// their base weights alone. DPO uses it to run a LoRA policy's own base as the reference model
/// (no second copy of the weights).
class LoRADisabled {
 public:
  LoRADisabled();
  ~LoRADisabled();
  LoRADisabled(const LoRADisabled&) = delete;
  LoRADisabled& operator=(const LoRADisabled&) = delete;

 private:
  bool previous_;
};

/// False while a LoRADisabled is alive on this thread.
bool lora_enabled();

}  // namespace llmfs
