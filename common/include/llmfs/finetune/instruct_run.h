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
#include "llmfs/data/instruction_data.h"
#include "llmfs/eval/judge.h"
#include "llmfs/finetune/lora.h"
#include "llmfs/generate/generation_config.h"
#include "llmfs/model/gpt_config.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/tokenizer.h"
#include "llmfs/tokenizer/tokenizer_config.h"
#include "llmfs/train/trainer.h"

namespace llmfs {

/// What trains in an instruction finetuning run: the `finetune:` section of configs/ch07.yaml.
///
///   finetune:
///     trainable: all     # all (the book) | lora (appendix E's adapters, the rest frozen)
///     lora: {rank: 16, alpha: 16.0, layers: [all], scale_by_rank: true}
struct InstructFinetuneConfig {
  std::string trainable = "all";
  LoRAConfig lora;
};

/// Where `ch07 respond` writes and which entries it answers: the `responses:` section.
///
///   responses:
///     split: test        # test (the book) | validation | train | all
///     file: null         # null: <train.output_dir>/instruction-data-with-response.json
struct ResponsesConfig {
  std::string split = "test";
  std::string file;
};

/// An instruction finetuning run (chapter 7): configs/ch07.yaml and configs/ch07/*.yaml.
struct InstructRunConfig {
  /// torch's global generator: before the loaders and again before training (train.seed).
  int64_t seed = 123;
  /// The model to finetune (llmfs::load_model's names): "gpt2:355M" (the book), a run of ours
  /// (a chapter-5 pretraining run, another ch07 run), a Hugging Face folder, a weights file; or
  /// "random": a new GPT of `model:` (seeded), for tests and demos.
  std::string base_model = "gpt2:355M";
  /// The shape of a "random" base model, and of weights that come without a config.json.
  GPTConfig model;
  /// The tokenizer of a "random" base model (a loaded base brings its own).
  TokenizerConfig tokenizer;
  InstructionDataConfig data;
  InstructFinetuneConfig finetune;
  TrainConfig train;  // the book: AdamW 5e-5, weight decay 0.1, 2 epochs, batch 8, eval 5 / 5
  /// The book's losses before finetuning (§7.6, C7-19) on a fresh run.
  bool initial_eval = true;
  /// Greedy tokens of the sample after each epoch (the book's 50); 0: no sample.
  int64_t sample_tokens = 50;
  /// How responses are generated (the book: greedy, 256 new tokens, stop at end-of-text).
  GenerationConfig generate;
  ResponsesConfig responses;
  JudgeConfig judge;
};

/// Chapter 7's defaults (BOOK.md §8.1): GPT-2 355M, the book's data, collate and training.
InstructRunConfig default_instruct_run_config();

/// Reads a whole ch07 config (the root node). Every key optional; defaults are `defaults`.
InstructRunConfig parse_instruct_run_config(ConfigNode root, const InstructRunConfig& defaults);

/// A model that answers instructions: eval mode, on the CPU, LoRA adapters merged.
struct InstructModel {
  GPTModel model{nullptr};
  std::shared_ptr<const Tokenizer> tokenizer;
  PromptStyle style = PromptStyle::kAlpaca;  // the prompt layout it was finetuned with
  int64_t pad_token_id = 50256;              // its end-of-text / padding id (data.pad_token_id)
  std::string source;                        // the checkpoint or weights it came from
  bool finetuned = false;                    // a ch07 run (false: a base model)
};

/// Loads a model to answer instructions: a ch07 run folder or checkpoint (its prompt style, its
/// LoRA adapters merged into the weights), or anything else llmfs::load_model loads (a base
/// model: the Alpaca prompt). "" or "latest": the latest checkpoint of run_dir. One-line errors
/// naming the path.
InstructModel load_instruct_model(const std::string& name, const std::filesystem::path& run_dir);

/// How finetune_instruct runs besides its config.
struct InstructRunOptions {
  std::string resume;       // "": a fresh run; "latest" or a checkpoint folder: continue
  bool overwrite = false;   // a fresh run into a folder that holds another run
  std::string config_yaml;  // the resolved config (saved with the run)
  bool handle_signals = true;
  std::optional<bool> interactive_progress;
};

/// What finetune_instruct reports while it runs; the chapter prints.
struct InstructCallbacks {
  std::function<void(const std::string& message)> on_info;  // data sizes, parameters, ...
  /// The book's losses before finetuning (§7.6, C7-19): eval_iter batches of each loader.
  std::function<void(double train_loss, double val_loss)> on_initial_loss;
  std::function<void(const EvalPoint&)> on_eval;
  std::function<void(int64_t step, double loss)> on_step;
  /// The sample after each epoch (1-based): validation entry 0's prompt and sample_tokens greedy
  /// tokens, newlines as spaces (the book's generate_and_print_sample).
  std::function<void(int64_t epoch, const std::string& text)> on_sample;
};

/// What a run measured.
struct InstructRunResult {
  TrainResult train;
  int64_t trainable_parameters = 0;
  int64_t total_parameters = 0;
  int64_t lora_layers = 0;
  double seconds = 0.0;       // wall time of the training loop
  double tokens_per_s = 0.0;  // input tokens (padded) per second of optimizer steps
  std::filesystem::path run_dir;
};

/// Chapter 7's run in the book's order (BOOK.md §8.1): read and split the data, the base model,
/// seed, the loaders, [the losses before finetuning], [LoRA], seed, train_model_simple on
/// llmfs::Trainer (evaluation lines, a sample after each epoch) with the masked next-token loss.
/// Writes into train.output_dir: config.yaml (with the trained model's `model:` and `tokenizer:`,
/// so llmfs::load_model reads full-finetuning checkpoints), metrics, checkpoints/ and
/// train.json / validation.json / test.json (the split). Bad input fails before anything is
/// written: a data file error (file and entry), a pad id outside the vocabulary, a training split
/// smaller than one batch, a base model that is not there.
InstructRunResult finetune_instruct(const InstructRunConfig& config,
                                    const InstructRunOptions& options,
                                    const InstructCallbacks& callbacks);

/// The training hooks of chapter 7 (for the trainer and for tests): the next-token loss with
/// -100 targets skipped, the sample after each epoch when on_sample is set.
TrainHooks<Batch> instruct_train_hooks(
    GPTModel model, std::shared_ptr<const Tokenizer> tokenizer, std::string sample_prompt,
    int64_t sample_tokens, std::function<void(int64_t epoch, const std::string& text)> on_sample);

/// Reads a `finetune:` section (trainable all | lora, lora:) for ch07 and DPO runs.
InstructFinetuneConfig parse_finetune_config(ConfigNode node,
                                             const InstructFinetuneConfig& defaults = {});

/// Where `ch07 respond` writes: responses.file, or
/// <train.output_dir>/instruction-data-with-response.json (the book's name).
std::filesystem::path responses_path(const InstructRunConfig& config);

/// The book's file name of a finetuned model (C7-23): the model choice without spaces and
/// parentheses plus "-sft.pth" ("gpt2:355M" -> "gpt2-medium355M-sft.pth"); "model-sft.pth" for
/// any other base.
std::string sft_file_name(const std::string& base_model);

/// Writes a model's weights by the book's names (LoRA already merged by load_instruct_model,
/// the attention masks included): .pth as torch.save(model.state_dict()) writes it, or
/// .safetensors. llmfs::Error naming the file for another extension.
void export_weights(const InstructModel& model, const std::filesystem::path& file);

/// The entries of a split by name: train, validation, test, or all (in file order).
std::vector<InstructionEntry> select_split(const InstructionSplits& splits,
                                           const std::string& split);

}  // namespace llmfs
