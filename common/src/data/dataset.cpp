#include "llmfs/data/dataset.h"

#include <utility>

namespace llmfs {

Batch stack_examples(std::vector<Example>&& examples) {
  TORCH_CHECK(!examples.empty(), "stack_examples: no examples to stack");
  std::vector<torch::Tensor> inputs, targets;
  inputs.reserve(examples.size());
  targets.reserve(examples.size());
  for (auto& example : examples) {
    inputs.push_back(std::move(example.input));
    targets.push_back(std::move(example.target));
  }
  return {torch::stack(inputs), torch::stack(targets)};
}

}  // namespace llmfs
