#include "llmfs/model/parameter_count.h"

#include <unordered_set>

namespace llmfs {

namespace {

int64_t count(const torch::nn::Module& module, bool trainable_only) {
  std::unordered_set<const void*> seen;
  int64_t total = 0;
  for (const auto& p : module.parameters(/*recurse=*/true)) {
    if (trainable_only && !p.requires_grad()) continue;
    if (!seen.insert(p.unsafeGetTensorImpl()).second) continue;  // shared (tied) tensor
    total += p.numel();
  }
  return total;
}

}  // namespace

int64_t count_parameters(const torch::nn::Module& module) { return count(module, false); }

int64_t count_trainable_parameters(const torch::nn::Module& module) {
  return count(module, true);
}

double parameter_megabytes(int64_t parameters, int64_t bytes_per_parameter) {
  return static_cast<double>(parameters) * static_cast<double>(bytes_per_parameter) /
         (1024.0 * 1024.0);
}

}  // namespace llmfs
