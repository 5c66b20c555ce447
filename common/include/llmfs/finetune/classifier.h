#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmfs/config/config_node.h"
#include "llmfs/data/dataset.h"
#include "llmfs/finetune/lora.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/model/parameter_count.h"  // count_trainable_parameters
#include "llmfs/train/batch_source.h"
#include "llmfs/train/trainer.h"

namespace llmfs {

/// How a GPT becomes a classifier (book §6.5, appendix E): the `classifier:` section.
struct ClassifierConfig {
  /// What trains: "head" (the new head only), "last_block" (the book: last transformer block,
  /// final norm and head), "last_two_blocks" (two blocks, final norm, head), "all" (every
  /// parameter), "lora" (appendix E: everything frozen, adapters on the `lora.layers`).
  std::string trainable = "last_block";
  /// Which position's logits classify a sequence: "last" (the book: the last position, on
  /// right-padded batches usually a pad token), "last_real" (the last non-pad token), "mean"
  /// (the mean over the non-pad positions).
  std::string pooling = "last";
  /// With "last" or "last_real" pooling, compute the last block's query, feed-forward, the final
  /// norm and the head only at the position the head reads (GPTModelImpl::forward_rows): the
  /// same logits within float rounding, less work. false: every position, as the book's code.
  bool pooled_only = true;
  LoRAConfig lora;  // with trainable "lora"
};

/// Reads a `classifier:` section (every key optional).
ClassifierConfig parse_classifier_config(ConfigNode node, const ClassifierConfig& defaults = {});

/// The trainable choices and the pooling choices, for help texts and checks.
const std::vector<std::string>& classifier_trainable_choices();
const std::vector<std::string>& classifier_pooling_choices();

/// Book §6.5, in the book's order: freeze every parameter; torch::manual_seed(seed); replace the
/// output head by a linear layer emb_dim → num_classes with bias (its weight and bias are the
/// next draws). Only the new head is trainable afterwards (it is created so); set_trainable
/// adds what else trains, freeze_all before LoRA freezes the head too (appendix E).
void replace_output_head(GPTModelImpl& model, int64_t num_classes, int64_t seed);

/// Makes the parts `trainable` names trainable again ("lora": nothing, the adapters bring their
/// own parameters). llmfs::Error for an unknown choice or a model with too few blocks.
void set_trainable(GPTModelImpl& model, const std::string& trainable);

/// Sets every parameter's requires_grad to false (the book's loop over model.parameters()).
void freeze_all(torch::nn::Module& model);

/// The class logits of each sequence, (B, N), from the model's logits (B, T, N) and the input
/// ids (B, T), per `pooling` (ClassifierConfig::pooling). pad_token_id marks padding for
/// "last_real" and "mean"; a row of padding only uses its first position.
torch::Tensor pool_logits(const torch::Tensor& logits, const torch::Tensor& input_ids,
                          std::string_view pooling, int64_t pad_token_id);

/// The position each row's "last" or "last_real" pooling reads, (B) int64.
torch::Tensor pooled_positions(const torch::Tensor& input_ids, std::string_view pooling,
                               int64_t pad_token_id);

struct ClassifierHead;
/// The class logits (B, N) of input ids (B, T) on the head's device: forward_rows at the pooled
/// positions when head.pooled_only allows it, else pool_logits(model->forward(ids)).
torch::Tensor classifier_logits(GPTModel& model, const torch::Tensor& input_ids,
                                const ClassifierHead& head);

/// What the classification loss needs besides the model and the batch.
struct ClassifierHead {
  std::string pooling = "last";
  int64_t pad_token_id = 50256;
  torch::Device device = torch::kCPU;
  bool pooled_only = true;  // ClassifierConfig::pooled_only
};

/// The book's calc_loss_batch of §6.6 with a choice of position: cross entropy of the pooled
/// logits against the labels, and the batch's accuracy as the metric "accuracy".
LossOutput calc_classification_loss_batch(GPTModel& model, const Batch& batch,
                                          const ClassifierHead& head);

/// The predicted classes of a batch of input ids (B, T): arg-max of the pooled logits; `probs`
/// receives the softmax probabilities (B, N) when given. Eval mode and no gradients are the
/// caller's.
torch::Tensor predict_classes(GPTModel& model, const torch::Tensor& input_ids,
                              const ClassifierHead& head, torch::Tensor* probs = nullptr);

/// Correct and total predictions over loader passes.
struct AccuracyCount {
  int64_t correct = 0;
  int64_t total = 0;
  double accuracy() const { return total > 0 ? static_cast<double>(correct) / total : 0.0; }
};

/// The book's calc_accuracy_loader (§6.6): a new pass over the loader (drawing from the global
/// generator as iter(loader) does), the first num_batches batches (all when not given), correct
/// predictions over examples. Eval mode and no gradients are the caller's (the book sets eval
/// mode and runs under no_grad).
AccuracyCount calc_accuracy_loader(const BatchSource<Batch>& loader, GPTModel& model,
                                   const ClassifierHead& head,
                                   std::optional<int64_t> num_batches = std::nullopt);

/// The book's train_classifier_simple as hooks of the common Trainer: the classification loss
/// (with the batch accuracy as a metric), examples (batch rows) as the count the log calls
/// "examples seen", and after each epoch the accuracies over eval_iter batches of the training
/// and the validation loader (new passes, drawing as the book's calc_accuracy_loader), returned
/// as "train_accuracy" / "val_accuracy" and passed to on_epoch.
TrainHooks<Batch> classifier_train_hooks(
    GPTModel model, ClassifierHead head, std::shared_ptr<const BatchSource<Batch>> train,
    std::shared_ptr<const BatchSource<Batch>> val, int64_t eval_iter,
    std::function<void(int64_t epoch, double train_accuracy, double val_accuracy)> on_epoch = {});

/// The predictions and labels of a whole loader, for confusion matrices.
struct Predictions {
  std::vector<int64_t> predicted, labels;
};
Predictions collect_predictions(const BatchSource<Batch>& loader, GPTModel& model,
                                const ClassifierHead& head);

/// A confusion matrix with per-class precision, recall and F1.
struct ClassificationReport {
  std::vector<std::string> classes;
  std::vector<std::vector<int64_t>> confusion;  // [true class][predicted class]
  std::vector<double> precision, recall, f1;
  std::vector<int64_t> support;  // examples per true class
  double accuracy = 0.0;
  int64_t total = 0;
};
ClassificationReport classification_report(const Predictions& predictions,
                                           const std::vector<std::string>& classes);

/// The report as text: accuracy, the confusion matrix, a per-class table.
std::string format_classification_report(const ClassificationReport& report);

}  // namespace llmfs
