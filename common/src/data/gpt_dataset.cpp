#include "llmfs/data/gpt_dataset.h"

#include <memory>
#include <string>

#include "llmfs/core/error.h"

namespace llmfs {

namespace {

std::vector<int64_t> encode_for_dataset(std::string_view text, const Tokenizer& tokenizer) {
  EncodeOptions options;
  options.allowed_special = {std::string(kEndOfText)};
  return tokenizer.encode(text, options);
}

}  // namespace

GPTDatasetV1::GPTDatasetV1(const std::vector<int64_t>& token_ids, int64_t max_length,
                           int64_t stride)
    : max_length_(max_length), stride_(stride) {
  if (max_length < 1) fail("GPTDatasetV1: max_length must be at least 1, got {}", max_length);
  if (stride < 1) fail("GPTDatasetV1: stride must be at least 1, got {}", stride);
  const auto n = static_cast<int64_t>(token_ids.size());
  if (n <= max_length) {
    fail(
        "GPTDatasetV1: max_length={} needs at least {} tokens (a window plus its shifted "
        "target), got {}",
        max_length, max_length + 1, n);
  }
  num_samples_ = (n - max_length - 1) / stride + 1;
  tokens_ = torch::tensor(token_ids, torch::kInt64);
}

GPTDatasetV1::GPTDatasetV1(std::string_view text, const Tokenizer& tokenizer, int64_t max_length,
                           int64_t stride)
    : GPTDatasetV1(encode_for_dataset(text, tokenizer), max_length, stride) {}

Example GPTDatasetV1::get(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < num_samples_, "GPTDatasetV1: index ", index,
              " out of range for ", num_samples_, " samples");
  const int64_t start = index * stride_;
  return {tokens_.narrow(0, start, max_length_).clone(),
          tokens_.narrow(0, start + 1, max_length_).clone()};
}

DataLoader<> create_dataloader_v1(std::string_view text, const Tokenizer& tokenizer,
                                  int64_t batch_size, int64_t max_length, int64_t stride,
                                  bool shuffle, bool drop_last) {
  auto dataset = std::make_shared<const GPTDatasetV1>(text, tokenizer, max_length, stride);
  return DataLoader<>(dataset, DataLoaderOptions(batch_size).shuffle(shuffle).drop_last(drop_last));
}

}  // namespace llmfs
