#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace llmfs {

/// A map-style dataset, as PyTorch's torch.utils.data.Dataset: size() examples, get(i) the i-th.
/// Every dataset of the project implements it (GPTDatasetV1, the spam and instruction datasets of
/// chapters 6 and 7), so one DataLoader serves them all. get() must not draw random numbers:
/// the loader's random-stream parity with PyTorch (BOOK.md §13.2) assumes it.
///
///   class MyDataset : public llmfs::Dataset<llmfs::Example> { ... };
template <typename ExampleT>
class Dataset {
 public:
  using ExampleType = ExampleT;

  virtual ~Dataset() = default;

  /// Number of examples (Python's __len__).
  virtual int64_t size() const = 0;

  /// The example at index in [0, size()) (Python's __getitem__).
  virtual ExampleT get(int64_t index) const = 0;
};

/// One example: a model input and its target, e.g. a window of max_length token ids and the same
/// window shifted by one (GPTDatasetV1), or token ids and a class label (chapter 6).
struct Example {
  torch::Tensor input;   // (T) int64 for the GPT datasets
  torch::Tensor target;  // (T) int64, or a 0-d label
};

/// A batch of examples, stacked along a new first dimension (Python's (input_batch, target_batch)):
///
///   for (const auto& [input_batch, target_batch] : loader) { ... }
struct Batch {
  torch::Tensor input;   // (B, T)
  torch::Tensor target;  // (B, T), or (B) for labels
};

/// PyTorch's default_collate for (input, target) examples: stacks each field along a new
/// dimension 0. The examples must have equal shapes (TORCH_CHECK otherwise, as torch.stack).
Batch stack_examples(std::vector<Example>&& examples);

}  // namespace llmfs
