#include "llmfs/train/loss.h"

namespace llmfs {

torch::Tensor lm_loss(const torch::Tensor& logits, const torch::Tensor& targets) {
  TORCH_CHECK(logits.dim() >= 2, "lm_loss: logits must be (..., V), got ", logits.sizes());
  TORCH_CHECK(logits.sizes().slice(0, logits.dim() - 1) == targets.sizes(), "lm_loss: logits ",
              logits.sizes(), " do not match targets ", targets.sizes());
  return torch::nn::functional::cross_entropy(
      logits.flatten(0, -2), targets.flatten(),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreIndex));
}

}  // namespace llmfs
