#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llmfs/config/config_node.h"
#include "llmfs/data/classification_data.h"
#include "llmfs/finetune/base_model.h"
#include "llmfs/finetune/classifier.h"
#include "llmfs/model/gpt_config.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/tokenizer.h"
#include "llmfs/tokenizer/tokenizer_config.h"
#include "llmfs/train/trainer.h"

namespace llmfs {

/// A classification finetuning run (chapter 6, appendix E): configs/ch06/*.yaml.
struct ClassifierRunConfig {
  /// torch's global generator: before the loaders, the head, the accuracy check and the
  /// training (train.seed in the config).
  int64_t seed = 123;
  /// The pretrained model (llmfs::load_model's names): "gpt2:124M" (the book: OpenAI's weights
  /// from the download cache), a chapter-5 run folder or checkpoint, a Hugging Face folder, a
  /// .safetensors/.pth file; or "random": a new GPT of `model:` (seeded), for tests and demos.
  std::string base_model = "gpt2:124M";
  /// The shape of a "random" base model, and of weights that come without a config.json.
  GPTConfig model;
  /// The tokenizer of a "random" base model (a loaded base brings its own).
  TokenizerConfig tokenizer;
  ClassificationDataConfig data;
  ClassifierConfig classifier;
  TrainConfig train;  // the book: lr 5e-5, weight decay 0.1, 5 epochs, batch 8, eval 50 / 5
  /// The book's accuracy check before finetuning (C6-15): batches per split; 0 skips it.
  int64_t initial_eval_batches = 10;
  /// The accuracies on the whole splits after training (C6-18); false skips them (benchmarks).
  bool final_eval = true;
};

/// Chapter 6's defaults (BOOK.md §7.1): the book's data, head, freezing and training settings.
ClassifierRunConfig default_classifier_run_config();

/// Reads a whole ch06 config (the root node): base_model, model, tokenizer, data, classifier,
/// train, initial_eval_batches, final_eval. Every key optional; defaults are `defaults`.
ClassifierRunConfig parse_classifier_run_config(ConfigNode root,
                                                const ClassifierRunConfig& defaults);

/// A classifier ready to classify: the model (eval mode), its tokenizer and what the run knew.
struct ClassifierModel {
  GPTModel model{nullptr};
  std::shared_ptr<const Tokenizer> tokenizer;
  std::vector<std::string> classes;
  ClassificationDataConfig data;  // the run's data section (its splits can be made again)
  ClassifierHead head;     // pooling, pad id, device (the CPU)
  int64_t max_length = 0;  // the padding length the model was trained with
  std::string source;      // the checkpoint or adapter it came from
};

/// The run's base model (llmfs::load_base_model of base_model, model, tokenizer and seed), before
/// any conversion.
BaseModel load_base_model(const ClassifierRunConfig& config);

/// Loads a classifier trained by finetune_classifier: a run folder (its latest checkpoint), a
/// checkpoint folder, or an adapter folder written by export_adapter (the base model named in
/// its config plus the adapter tensors). Errors are one line naming the path: nothing there, not
/// a classifier checkpoint, a checkpoint of another head size or model.
ClassifierModel load_classifier(const std::string& name);

/// Writes an adapter-only checkpoint: <dir>/adapter.safetensors (the LoRA tensors and the other
/// trainable parameters, the head among them) and <dir>/config.yaml; atomically (a temporary
/// folder renamed). Returns the number of tensors written.
int64_t export_adapter(const ClassifierModel& classifier, const std::filesystem::path& checkpoint,
                       const std::filesystem::path& dir);

/// Writes a merged checkpoint: LoRA folded into the weights (merge_lora), config.yaml without
/// adapters, loadable by load_classifier.
void export_merged(ClassifierModel classifier, const std::filesystem::path& checkpoint,
                   const std::filesystem::path& dir);

/// The texts' ids as the run's dataset encodes them (truncated to, and right-padded to,
/// max_length) and the class probabilities and labels.
struct Classification {
  std::string label;
  int64_t class_id = 0;
  double probability = 0.0;
  std::vector<double> probabilities;
};
std::vector<Classification> classify_texts(ClassifierModel& classifier,
                                           const std::vector<std::string>& texts);

/// How finetune_classifier runs besides its config.
struct ClassifierRunOptions {
  std::string resume;        // "": a fresh run; "latest" or a checkpoint folder: continue
  bool overwrite = false;    // a fresh run into a folder that holds another run
  std::string config_yaml;   // the resolved config (saved with the run)
  bool handle_signals = true;
  std::optional<bool> interactive_progress;
};

/// What finetune_classifier reports while it runs; the chapter prints.
struct ClassifierCallbacks {
  std::function<void(const std::string& message)> on_info;  // data sizes, parameters, ...
  std::function<void(const AccuracyCount& train, const AccuracyCount& val,
                     const AccuracyCount& test)>
      on_initial_accuracy;
  std::function<void(const EvalPoint&)> on_eval;
  std::function<void(int64_t epoch, double train_accuracy, double val_accuracy)> on_epoch;
};

/// What a run measured.
struct ClassifierRunResult {
  TrainResult train;
  AccuracyCount train_accuracy, val_accuracy, test_accuracy;  // whole splits, after training
  int64_t trainable_parameters = 0;
  int64_t total_parameters = 0;
  int64_t lora_layers = 0;
  int64_t max_length = 0;
  double seconds = 0.0;         // wall time of the training loop
  double tokens_per_s = 0.0;    // input tokens (padded) per second of optimizer steps
  double examples_per_s = 0.0;
  std::filesystem::path run_dir;
};

/// Chapter 6's run, in the book's order (BOOK.md §7.1, §12.2): read and split the data, seed,
/// the loaders, the base model, the new head (seeded), the accuracy check before finetuning
/// (seeded), freezing / LoRA, seed, train_classifier_simple on llmfs::Trainer (evaluation lines,
/// accuracies after each epoch over eval_iter batches), the accuracies on whole splits. Writes
/// into train.output_dir: config.yaml, metrics.jsonl/csv, epoch_metrics.csv, checkpoints/,
/// train.csv/validation.csv/test.csv and results.json.
ClassifierRunResult finetune_classifier(const ClassifierRunConfig& config,
                                        const ClassifierRunOptions& options,
                                        const ClassifierCallbacks& callbacks);

/// results.json of a run folder as written by finetune_classifier (for `ch06 compare`).
std::string classifier_results_json(const ClassifierRunConfig& config,
                                    const ClassifierRunResult& result);

}  // namespace llmfs
