// A stand-in language model for trainer tests: embedding, dropout, linear head. Small enough
// that a whole training run takes milliseconds, random enough (dropout) to exercise the
// generator bookkeeping of resume.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "llmfs/data/data_loader.h"
#include "llmfs/data/gpt_dataset.h"
#include "llmfs/train/loss.h"

namespace llmfs::test {

class TinyLMImpl : public torch::nn::Module {
 public:
  TinyLMImpl(int64_t vocab_size, int64_t emb_dim, double drop_rate) {
    tok_emb = register_module("tok_emb", torch::nn::Embedding(vocab_size, emb_dim));
    drop_emb = register_module("drop_emb", torch::nn::Dropout(drop_rate));
    out_head = register_module("out_head", torch::nn::Linear(emb_dim, vocab_size));
  }
  torch::Tensor forward(const torch::Tensor& idx) { return out_head(drop_emb(tok_emb(idx))); }

  torch::nn::Embedding tok_emb{nullptr};
  torch::nn::Dropout drop_emb{nullptr};
  torch::nn::Linear out_head{nullptr};
};
TORCH_MODULE(TinyLM);

inline constexpr int64_t kTinyVocab = 37;

/// A deterministic token sequence with some structure to learn (a repeating pattern plus noise).
inline std::vector<int64_t> tiny_tokens(int64_t n) {
  std::vector<int64_t> ids;
  uint32_t state = 12345;
  for (int64_t i = 0; i < n; ++i) {
    state = state * 1103515245u + 12345u;
    ids.push_back((i % 7 == 0) ? static_cast<int64_t>((state >> 16) % kTinyVocab)
                               : (i * 5) % kTinyVocab);
  }
  return ids;
}

/// A loader over GPTDatasetV1 windows of tiny_tokens(n).
inline DataLoader<> tiny_loader(int64_t n_tokens, int64_t max_length, int64_t batch_size,
                                bool shuffle, bool drop_last) {
  auto dataset = std::make_shared<GPTDatasetV1>(tiny_tokens(n_tokens), max_length, max_length);
  return DataLoader<>(dataset, DataLoaderOptions(batch_size).shuffle(shuffle).drop_last(drop_last));
}

/// The chapter-5 loss for a TinyLM.
inline LossFn<Batch> tiny_loss(TinyLM model) {
  return [model](const Batch& b) mutable {
    return calc_loss_batch(b.input, b.target, model, torch::Device(torch::kCPU));
  };
}

}  // namespace llmfs::test
