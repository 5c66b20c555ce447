#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "llmfs/data/data_loader.h"
#include "llmfs/data/dataset.h"
#include "llmfs/tokenizer/tokenizer.h"

namespace llmfs {

/// Sliding windows over a token sequence for next-token prediction (book §2.6): sample i is the
/// input window tokens[i·stride, i·stride + max_length) and the target window shifted by one.
/// With N tokens there are ⌊(N − max_length − 1) / stride⌋ + 1 samples; N must exceed
/// max_length. The tokens are stored once; get() copies out one window pair.
///
///   llmfs::GPTDatasetV1 dataset(text, tokenizer, /*max_length=*/256, /*stride=*/128);
class GPTDatasetV1 : public Dataset<Example> {
 public:
  /// Windows over token ids. llmfs::Error when max_length or stride is below 1 or there are not
  /// more than max_length tokens.
  GPTDatasetV1(const std::vector<int64_t>& token_ids, int64_t max_length, int64_t stride);

  /// Encodes `text` with `tokenizer` ("<|endoftext|>" allowed, as the book) and windows it.
  GPTDatasetV1(std::string_view text, const Tokenizer& tokenizer, int64_t max_length,
               int64_t stride);

  int64_t size() const override { return num_samples_; }

  /// (input, target) of sample index, each (max_length) int64.
  Example get(int64_t index) const override;

  int64_t num_tokens() const { return tokens_.size(0); }
  int64_t max_length() const { return max_length_; }
  int64_t stride() const { return stride_; }

 private:
  torch::Tensor tokens_;  // (N) int64
  int64_t max_length_;
  int64_t stride_;
  int64_t num_samples_;
};

/// The book's create_dataloader_v1 (§2.6): a GPTDatasetV1 over `text` in a DataLoader. Same
/// defaults as the book; the tokenizer is an argument (the book builds tiktoken's "gpt2").
/// Iterating it draws from the global generator as PyTorch's loader does (BOOK.md §13.2).
DataLoader<> create_dataloader_v1(std::string_view text, const Tokenizer& tokenizer,
                                  int64_t batch_size = 4, int64_t max_length = 256,
                                  int64_t stride = 128, bool shuffle = true, bool drop_last = true);

}  // namespace llmfs
