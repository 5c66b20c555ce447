#pragma once

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>

#include "llmfs/data/data_loader.h"
#include "llmfs/data/dataset.h"
#include "llmfs/train/batch_source.h"

namespace llmfs {

/// Targets with this value add nothing to the loss (PyTorch's ignore_index; chapter 7 masks
/// padding and prompt tokens with it).
inline constexpr int64_t kIgnoreIndex = -100;

/// The next-token loss of book §5.1.2: logits (B, T, V) and targets (B, T) flattened to
/// (B·T, V) and (B·T), mean over the positions whose target is not kIgnoreIndex of
/// −log softmax(logits)[target] (torch::nn::functional::cross_entropy). 0-dim float tensor.
torch::Tensor lm_loss(const torch::Tensor& logits, const torch::Tensor& targets);

/// Perplexity of a mean cross-entropy loss: exp(loss) (book §5.1.2).
inline double perplexity(double loss) { return std::exp(loss); }

/// The loss of one batch: the trainer calls it in training mode, the evaluation in eval mode
/// without gradients. It moves the batch to the model's device itself. Chapter 5 uses
/// calc_loss_batch below; chapter 6 classifies with the last token's logits, chapter 7 masks with
/// kIgnoreIndex, DPO compares two responses: each brings its own function.
template <typename BatchT = Batch>
using LossFn = std::function<torch::Tensor(const BatchT& batch)>;

/// The book's calc_loss_batch (§5.1.3): inputs and targets to `device`, the model's logits,
/// lm_loss. `model` is any module holder whose forward takes (B, T) token ids (GPTModel).
template <typename ModelT>
torch::Tensor calc_loss_batch(const torch::Tensor& input_batch, const torch::Tensor& target_batch,
                              ModelT& model, const torch::Device& device) {
  const auto logits = model->forward(input_batch.to(device));  // (B, T, V)
  return lm_loss(logits, target_batch.to(device));
}

/// The book's calc_loss_loader (§5.1.3) for any loss function: the mean of the batch losses
/// (as host doubles) over the first num_batches batches of one new pass over the loader (all
/// batches when not given; capped at the loader's length); NaN for an empty loader, which is not
/// iterated. Starting the pass draws from the global generator as Python's iter(loader) does
/// (BOOK.md §13.2), also when only the first batch is used. Gradients are the caller's choice
/// (the book's evaluation wraps it in torch.no_grad()).
template <typename BatchT>
double calc_loss_loader(const BatchSource<BatchT>& loader, const LossFn<BatchT>& loss_fn,
                        std::optional<int64_t> num_batches = std::nullopt) {
  const int64_t size = loader.size();
  if (size == 0) return std::numeric_limits<double>::quiet_NaN();
  const int64_t n = num_batches ? std::min(*num_batches, size) : size;
  double total = 0.0;
  auto pass = loader.start();
  for (int64_t i = 0; i < n; ++i) {
    const BatchT* batch = pass->next();
    if (batch == nullptr) break;
    total += loss_fn(*batch).template item<double>();
  }
  return total / static_cast<double>(n);
}

/// calc_loss_loader with the book's signature: (loader, model, device, num_batches).
template <typename ExampleT, typename ModelT>
double calc_loss_loader(const DataLoader<ExampleT, Batch>& loader, ModelT& model,
                        const torch::Device& device,
                        std::optional<int64_t> num_batches = std::nullopt) {
  const LossFn<Batch> loss = [&](const Batch& b) {
    return calc_loss_batch(b.input, b.target, model, device);
  };
  return calc_loss_loader(*batch_source(loader), loss, num_batches);
}

}  // namespace llmfs
