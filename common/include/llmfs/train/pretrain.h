#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "llmfs/model/gpt_config.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/tokenizer.h"
#include "llmfs/train/pretrain_data.h"
#include "llmfs/train/trainer.h"

namespace llmfs {

/// How pretrain_gpt treats the output folder.
struct PretrainOptions {
  /// "" : a fresh run; "latest" or a path: continue that checkpoint (resolve_checkpoint).
  std::string resume;
  /// A fresh run into a folder that holds checkpoints of another run: false refuses (nothing is
  /// overwritten), true deletes its checkpoints and metrics first.
  bool overwrite = false;
};

/// What pretrain_gpt reports; the chapter prints.
struct PretrainCallbacks {
  std::function<void(const EvalPoint&)> on_eval;
  /// The sample after each epoch (1-based), newlines already replaced by spaces.
  std::function<void(int64_t epoch, const std::string& text)> on_sample;
};

/// Chapter 5's run, the book's order (BOOK.md §6.1, §6.3): read and split the text, seed, the
/// training then the validation loader, seed, the GPT model, AdamW, train_model_simple (or
/// appendix D's train_model, per `train`), a sample after each epoch, checkpoints in
/// train.output_dir. Bad input fails before anything is written, with one line each: a
/// data.max_length above the model's context, a text too short for one batch, a tokenizer larger
/// than the model's vocabulary, a missing checkpoint to resume, a checkpoint of another model.
TrainResult pretrain_gpt(const GPTConfig& model_config, const TrainConfig& train,
                         const PretrainDataConfig& data, const Tokenizer& tokenizer,
                         const PretrainOptions& options, const PretrainCallbacks& callbacks);

/// The book's generate_and_print_sample (§5.2) without the printing: eval mode, greedy
/// generate_text_simple of max_new_tokens after start_context with the context size of the
/// positional embedding, decoded, newlines replaced by spaces; the model's mode is restored.
std::string generate_sample(GPTModel model, const Tokenizer& tokenizer,
                            std::string_view start_context, int64_t max_new_tokens);

/// The model of a training checkpoint folder: the `model:` section of its config.yaml, the
/// weights of its model.safetensors, in eval mode on the CPU. llmfs::Error naming the folder
/// and file for what is missing or does not fit.
GPTModel load_gpt_checkpoint(const std::filesystem::path& checkpoint_dir);

/// The GPTConfig of a training checkpoint's config.yaml (its `model:` section).
GPTConfig checkpoint_model_config(const std::filesystem::path& checkpoint_dir);

}  // namespace llmfs
