// The toy problem of appendix A (§A.5-A.8): the NeuralNetwork multilayer perceptron, the
// five-point training set and two-point test set, their loaders, the training loop of §A.7 and
// the accuracy helper. Header-only, so that appA's main.cpp and the chapter tests share it.
//
// `appA ddp` (A.9.3, main.cpp) trains this network data parallel under torchrun with the same
// pieces, a sharded loader (DataShard) and llmfs::ProcessGroup.
#pragma once

#include <fmt/format.h>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "llmfs/data/data_loader.h"
#include "llmfs/data/dataset.h"
#include "llmfs/dist/distributed.h"

namespace llmfs::appa {

/// The multilayer perceptron of §A.5: Linear(num_inputs, 30), ReLU, Linear(30, 20), ReLU,
/// Linear(20, num_outputs), all in a Sequential registered as "layers", so the state dict keys
/// are the book's ("layers.0.weight", ..., "layers.4.bias").
///
///   torch::manual_seed(123);
///   NeuralNetwork model(50, 3);  // the book's CA-04 weights
class NeuralNetworkImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kHidden1 = 30;  // width of the 1st hidden layer (§A.5)
  static constexpr int64_t kHidden2 = 20;  // width of the 2nd hidden layer

  NeuralNetworkImpl(int64_t num_inputs, int64_t num_outputs) {
    // Named locals in the book's order: a fixed seed then draws the book's weights (STYLE §3).
    torch::nn::Linear hidden1(num_inputs, kHidden1);
    torch::nn::Linear hidden2(kHidden1, kHidden2);
    torch::nn::Linear output(kHidden2, num_outputs);
    layers = register_module("layers", torch::nn::Sequential());
    layers->push_back(hidden1);
    layers->push_back(torch::nn::ReLU());
    layers->push_back(hidden2);
    layers->push_back(torch::nn::ReLU());
    layers->push_back(output);
  }

  /// x: (B, num_inputs) -> logits (B, num_outputs).
  torch::Tensor forward(const torch::Tensor& x) { return layers->forward(x); }

  torch::nn::Sequential layers{nullptr};
};
TORCH_MODULE(NeuralNetwork);

/// The book's ToyDataset: row i of the features with label i.
class ToyDataset : public Dataset<Example> {
 public:
  /// features: (N, num_inputs) float; labels: (N) int64.
  ToyDataset(torch::Tensor features, torch::Tensor labels)
      : features_(std::move(features)), labels_(std::move(labels)) {
    TORCH_CHECK(features_.size(0) == labels_.size(0), "ToyDataset: ", features_.size(0),
                " feature rows but ", labels_.size(0), " labels");
  }

  int64_t size() const override { return labels_.size(0); }
  Example get(int64_t index) const override { return {features_[index], labels_[index]}; }

  const torch::Tensor& features() const { return features_; }
  const torch::Tensor& labels() const { return labels_; }

 private:
  torch::Tensor features_;
  torch::Tensor labels_;
};

/// The five training points of §A.6 (two clusters; labels 0, 0, 0, 1, 1).
inline std::shared_ptr<const ToyDataset> toy_train_dataset() {
  const auto X_train = torch::tensor(
      {{-1.2f, 3.1f}, {-0.9f, 2.9f}, {-0.5f, 2.6f}, {2.3f, -1.1f}, {2.7f, -1.5f}});  // (5, 2)
  const auto y_train = torch::tensor({0, 0, 0, 1, 1}, torch::kLong);                 // (5)
  return std::make_shared<const ToyDataset>(X_train, y_train);
}

/// The two test points of §A.6 (labels 0, 1).
inline std::shared_ptr<const ToyDataset> toy_test_dataset() {
  const auto X_test = torch::tensor({{-0.8f, 2.8f}, {2.6f, -1.6f}});  // (2, 2)
  const auto y_test = torch::tensor({0, 1}, torch::kLong);            // (2)
  return std::make_shared<const ToyDataset>(X_test, y_test);
}

/// A loader over a toy dataset (num_workers=0). Building it draws nothing; every pass does
/// (BOOK.md §13.2), as in PyTorch.
inline DataLoader<> toy_loader(std::shared_ptr<const ToyDataset> dataset,
                               const DataLoaderOptions& options) {
  return DataLoader<>(std::move(dataset), options);
}

/// One optimisation step of the §A.7 loop, as the loop reports it.
struct ToyStep {
  int64_t epoch = 0;        // 0-based
  int64_t batch_index = 0;  // 0-based within the epoch
  int64_t num_batches = 0;  // batches per epoch (len(train_loader))
  double loss = 0.0;        // the batch's cross-entropy before the step
  int64_t batch_size = 0;   // examples in the batch
};

/// The §A.7 loop: for each epoch, train mode, then per batch forward, cross entropy, zero grad,
/// backward, SGD step, on_step; eval mode after each epoch. Each epoch is one pass over `loader`
/// (two draws from the global generator when it shuffles; a sharded loader's pass is ordered by
/// the epoch, DistributedSampler.set_epoch). With a process group (A.9.3, `appA ddp`) the
/// gradients are averaged over the ranks after each backward pass, as DDP's wrapper does; the
/// batches move to the model's `device`.
inline void train_toy_model(NeuralNetwork& model, const DataLoader<>& loader,
                            torch::optim::Optimizer& optimizer, int64_t num_epochs,
                            const std::function<void(const ToyStep&)>& on_step = {},
                            ProcessGroup* group = nullptr,
                            const torch::Device& device = torch::kCPU) {
  for (int64_t epoch = 0; epoch < num_epochs; ++epoch) {
    model->train();
    int64_t batch_index = 0;
    for (auto it = loader.start(epoch); it != std::default_sentinel; ++it) {
      const auto features = it->input.to(device);                              // (B, num_inputs)
      const auto labels = it->target.to(device);                               // (B)
      const auto logits = model(features);                                     // (B, num_outputs)
      const auto loss = torch::nn::functional::cross_entropy(logits, labels);  // scalar
      optimizer.zero_grad();
      loss.backward();
      if (group) group->average_gradients(model->parameters(), fmt::format("epoch {}", epoch + 1));
      optimizer.step();
      if (on_step) on_step({epoch, batch_index, loader.size(), loss.item<double>(), labels.size(0)});
      ++batch_index;
    }
    model->eval();
  }
}

/// The book's compute_accuracy: eval mode, no gradients, arg-max predictions, correct / total
/// over one pass of the loader (a float32 division, as the book's tensor arithmetic).
/// A sharded loader's pass is the one of `epoch` (DistributedSampler.set_epoch).
inline double compute_accuracy(NeuralNetwork& model, const DataLoader<>& loader,
                               int64_t epoch = 0) {
  model->eval();
  auto correct = torch::zeros({});  // float32, as the book's 0.0 + torch.sum(...)
  int64_t total_examples = 0;
  for (auto it = loader.start(epoch); it != std::default_sentinel; ++it) {
    const auto& [features, labels] = *it;
    torch::Tensor logits;
    {
      torch::NoGradGuard no_grad;
      logits = model(features);
    }
    const auto predictions = torch::argmax(logits, /*dim=*/1);
    const auto compare = labels == predictions;
    correct = correct + torch::sum(compare);
    total_examples += compare.size(0);
  }
  return (correct / total_examples).item<double>();
}

}  // namespace llmfs::appa
