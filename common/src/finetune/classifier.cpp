// Chapter 6: the GPT as a classifier (head, freezing, pooling, loss, accuracy, reports).
#include "llmfs/finetune/classifier.h"

#include <fmt/format.h>

#include <algorithm>

#include "llmfs/core/error.h"

namespace llmfs {

const std::vector<std::string>& classifier_trainable_choices() {
  static const std::vector<std::string> choices = {"head", "last_block", "last_two_blocks", "all",
                                                   "lora"};
  return choices;
}

const std::vector<std::string>& classifier_pooling_choices() {
  static const std::vector<std::string> choices = {"last", "last_real", "mean"};
  return choices;
}

ClassifierConfig parse_classifier_config(ConfigNode node, const ClassifierConfig& defaults) {
  ClassifierConfig c = defaults;
  node.read<std::string>("trainable", c.trainable, one_of(classifier_trainable_choices()));
  node.read<std::string>("pooling", c.pooling, one_of(classifier_pooling_choices()));
  node.read("pooled_only", c.pooled_only);
  c.lora = parse_lora_config(node.child("lora"), c.lora);
  return c;
}

void freeze_all(torch::nn::Module& model) {
  for (auto& p : model.parameters()) p.set_requires_grad(false);
}

void replace_output_head(GPTModelImpl& model, int64_t num_classes, int64_t seed) {
  if (num_classes < 2) fail("classifier: needs at least 2 classes, got {}", num_classes);
  freeze_all(model);
  torch::manual_seed(static_cast<uint64_t>(seed));
  torch::nn::Linear head(
      torch::nn::LinearOptions(model.config().emb_dim, num_classes).bias(true));
  head->to(model.tok_emb->weight.device());
  if (model.out_head.is_empty()) {
    model.out_head = model.register_module("out_head", head);
  } else {
    model.out_head = model.replace_module("out_head", head);
  }
}

void set_trainable(GPTModelImpl& model, const std::string& trainable) {
  const auto& choices = classifier_trainable_choices();
  if (std::find(choices.begin(), choices.end(), trainable) == choices.end()) {
    fail("classifier.trainable: unknown choice '{}'", trainable);
  }
  auto unfreeze = [](torch::nn::Module& m) {
    for (auto& p : m.parameters()) p.set_requires_grad(true);
  };
  if (trainable == "lora") return;
  if (trainable == "all") return unfreeze(model);
  if (!model.out_head.is_empty()) unfreeze(*model.out_head);
  if (trainable == "head") return;
  const int64_t blocks = trainable == "last_two_blocks" ? 2 : 1;
  const auto n = static_cast<int64_t>(model.trf_blocks->size());
  if (n < blocks) fail("classifier.trainable {}: the model has {} block(s)", trainable, n);
  for (int64_t i = n - blocks; i < n; ++i) unfreeze(*model.trf_blocks[i]);
  unfreeze(*model.final_norm);
}

torch::Tensor pool_logits(const torch::Tensor& logits, const torch::Tensor& input_ids,
                          std::string_view pooling, int64_t pad_token_id) {
  TORCH_CHECK(logits.dim() == 3, "pool_logits: expected logits (B, T, N), got ", logits.sizes());
  if (pooling == "last") return logits.select(1, -1);  // the book: logits[:, -1, :]
  if (pooling == "last_real") {
    const auto last = pooled_positions(input_ids.to(logits.device()), pooling, pad_token_id);
    const auto index = last.view({-1, 1, 1}).expand({logits.size(0), 1, logits.size(2)});
    return logits.gather(1, index).squeeze(1);
  }
  const auto real = input_ids.to(logits.device()).ne(pad_token_id);  // (B, T)
  if (pooling == "mean") {
    auto mask = real.clone();
    mask.select(1, 0).logical_or_(real.any(1).logical_not());  // padding only: first position
    const auto m = mask.to(logits.scalar_type()).unsqueeze(-1);  // (B, T, 1)
    return (logits * m).sum(1) / m.sum(1);
  }
  fail("classifier.pooling: unknown choice '{}'", std::string(pooling));
}

torch::Tensor pooled_positions(const torch::Tensor& input_ids, std::string_view pooling,
                               int64_t pad_token_id) {
  TORCH_CHECK(input_ids.dim() == 2, "pooled_positions: expected ids (B, T), got ",
              input_ids.sizes());
  const auto opts = input_ids.options().dtype(torch::kLong);
  if (pooling == "last") return torch::full({input_ids.size(0)}, input_ids.size(1) - 1, opts);
  if (pooling == "last_real") {
    // Index of the last non-pad token (0 for a row of padding).
    const auto real = input_ids.ne(pad_token_id).to(torch::kLong);
    return (real * torch::arange(input_ids.size(1), opts)).amax(1);
  }
  fail("classifier.pooling: '{}' reads more than one position", std::string(pooling));
}

torch::Tensor classifier_logits(GPTModel& model, const torch::Tensor& input_ids,
                                const ClassifierHead& head) {
  const auto ids = input_ids.to(head.device);
  if (head.pooled_only && head.pooling != "mean" && ids.size(1) > 0) {
    return model->forward_rows(ids, pooled_positions(ids, head.pooling, head.pad_token_id));
  }
  return pool_logits(model->forward(ids), ids, head.pooling, head.pad_token_id);
}

torch::Tensor predict_classes(GPTModel& model, const torch::Tensor& input_ids,
                              const ClassifierHead& head, torch::Tensor* probs) {
  const auto logits = classifier_logits(model, input_ids, head);
  if (probs != nullptr) *probs = torch::softmax(logits, -1);
  return torch::argmax(logits, -1);
}

LossOutput calc_classification_loss_batch(GPTModel& model, const Batch& batch,
                                          const ClassifierHead& head) {
  const auto input = batch.input.to(head.device);
  const auto target = batch.target.to(head.device);
  const auto logits = classifier_logits(model, input, head);
  auto loss = torch::nn::functional::cross_entropy(logits, target);
  const auto accuracy =
      torch::argmax(logits.detach(), -1).eq(target).to(torch::kDouble).mean();
  return LossOutput(std::move(loss), {{"accuracy", accuracy}});
}

AccuracyCount calc_accuracy_loader(const BatchSource<Batch>& loader, GPTModel& model,
                                   const ClassifierHead& head,
                                   std::optional<int64_t> num_batches) {
  AccuracyCount count;
  const int64_t size = loader.size();
  const int64_t n = num_batches ? std::min(*num_batches, size) : size;
  auto pass = loader.start();  // draws as the book's `for i, (x, y) in enumerate(loader)`
  for (int64_t i = 0; i < n; ++i) {
    const Batch* batch = pass->next();
    if (batch == nullptr) break;
    const auto predicted = predict_classes(model, batch->input, head);
    count.correct += predicted.eq(batch->target.to(head.device)).sum().item<int64_t>();
    count.total += predicted.size(0);
  }
  return count;
}

TrainHooks<Batch> classifier_train_hooks(
    GPTModel model, ClassifierHead head, std::shared_ptr<const BatchSource<Batch>> train,
    std::shared_ptr<const BatchSource<Batch>> val, int64_t eval_iter,
    std::function<void(int64_t epoch, double train_accuracy, double val_accuracy)> on_epoch) {
  TrainHooks<Batch> hooks;
  hooks.loss = [model, head](const Batch& b) mutable {
    return calc_classification_loss_batch(model, b, head);
  };
  hooks.count_tokens = [](const Batch& b) { return b.input.size(0); };  // examples seen
  hooks.on_epoch_end = [=](int64_t epoch) mutable -> std::map<std::string, double> {
    const double tr = calc_accuracy_loader(*train, model, head, eval_iter).accuracy();
    const double va = calc_accuracy_loader(*val, model, head, eval_iter).accuracy();
    if (on_epoch) on_epoch(epoch, tr, va);
    return {{"train_accuracy", tr}, {"val_accuracy", va}};
  };
  return hooks;
}

Predictions collect_predictions(const BatchSource<Batch>& loader, GPTModel& model,
                                const ClassifierHead& head) {
  Predictions out;
  auto pass = loader.start();
  while (const Batch* batch = pass->next()) {
    const auto predicted = predict_classes(model, batch->input, head).to(torch::kCPU);
    const auto labels = batch->target.to(torch::kCPU).to(torch::kLong);
    for (int64_t i = 0; i < predicted.size(0); ++i) {
      out.predicted.push_back(predicted[i].item<int64_t>());
      out.labels.push_back(labels[i].item<int64_t>());
    }
  }
  return out;
}

ClassificationReport classification_report(const Predictions& predictions,
                                           const std::vector<std::string>& classes) {
  ClassificationReport r;
  r.classes = classes;
  const auto n = classes.size();
  r.confusion.assign(n, std::vector<int64_t>(n, 0));
  int64_t correct = 0;
  for (size_t i = 0; i < predictions.labels.size(); ++i) {
    const auto t = predictions.labels[i], p = predictions.predicted[i];
    if (t < 0 || p < 0 || static_cast<size_t>(t) >= n || static_cast<size_t>(p) >= n) {
      fail("classification report: class id {} or {} outside the {} classes", t, p, n);
    }
    ++r.confusion[t][p];
    correct += t == p ? 1 : 0;
  }
  r.total = static_cast<int64_t>(predictions.labels.size());
  r.accuracy = r.total > 0 ? static_cast<double>(correct) / r.total : 0.0;
  for (size_t c = 0; c < n; ++c) {
    int64_t predicted_c = 0, true_c = 0;
    for (size_t k = 0; k < n; ++k) {
      predicted_c += r.confusion[k][c];
      true_c += r.confusion[c][k];
    }
    const double tp = static_cast<double>(r.confusion[c][c]);
    const double precision = predicted_c > 0 ? tp / predicted_c : 0.0;
    const double recall = true_c > 0 ? tp / true_c : 0.0;
    r.precision.push_back(precision);
    r.recall.push_back(recall);
    r.f1.push_back(precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0);
    r.support.push_back(true_c);
  }
  return r;
}

std::string format_classification_report(const ClassificationReport& r) {
  size_t width = 9;  // "predicted"
  for (const auto& c : r.classes) width = std::max(width, c.size());
  std::string out = fmt::format("Accuracy: {:.2f}% ({} of {})\n\nConfusion matrix (rows: true class, columns: predicted):\n",
                                r.accuracy * 100, static_cast<int64_t>(r.accuracy * r.total + 0.5), r.total);
  out += fmt::format("{:<{}}", "", width + 2);
  for (const auto& c : r.classes) out += fmt::format(" {:>{}}", c, width);
  out += "\n";
  for (size_t i = 0; i < r.classes.size(); ++i) {
    out += fmt::format("{:<{}}", r.classes[i], width + 2);
    for (const auto v : r.confusion[i]) out += fmt::format(" {:>{}}", v, width);
    out += "\n";
  }
  out += fmt::format("\n{:<{}} {:>9} {:>9} {:>9} {:>9}\n", "class", width + 1, "precision",
                     "recall", "f1", "support");
  for (size_t i = 0; i < r.classes.size(); ++i) {
    out += fmt::format("{:<{}} {:>9.4f} {:>9.4f} {:>9.4f} {:>9}\n", r.classes[i], width + 1,
                       r.precision[i], r.recall[i], r.f1[i], r.support[i]);
  }
  return out;
}

}  // namespace llmfs
