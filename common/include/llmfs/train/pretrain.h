#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "llmfs/config/config_node.h"
#include "llmfs/model/gpt_config.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/tokenizer.h"
#include "llmfs/train/pretrain_data.h"
#include "llmfs/train/trainer.h"

namespace llmfs {

/// The sample printed after each epoch (book §5.2): greedy continuation of start_context. The
/// `train.sample:` section of chapter 5's config.
struct SampleConfig {
  std::string start_context = "Every effort moves you";
  int64_t max_new_tokens = 50;  // 0: no sample
};

/// Reads a `sample:` section (every key optional).
SampleConfig parse_sample_config(ConfigNode node, const SampleConfig& defaults = {});

/// How pretrain_gpt runs besides its configs.
struct PretrainOptions {
  /// "" : a fresh run; "latest" or a path: continue that checkpoint (resolve_checkpoint).
  std::string resume;
  /// A fresh run into a folder that holds checkpoints of another run: false refuses (nothing is
  /// overwritten), true deletes its checkpoints and metrics first.
  bool overwrite = false;
  /// The sample after each epoch.
  SampleConfig sample;
  /// The run's resolved config (saved with its outputs and checkpoints).
  std::string config_yaml;
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

/// What evaluate_text_loss measured.
struct TextLoss {
  int64_t tokens = 0;     // tokens of the text
  int64_t window = 0;     // tokens per window (the model's context, or fewer for a short text)
  int64_t windows = 0;    // windows evaluated
  int64_t evaluated = 0;  // tokens predicted: tokens - 1
  double loss = 0.0;      // mean cross entropy per predicted token (perplexity: exp(loss))
};

/// Loss of a model on a text (`ch05 evaluate`): the text encoded (<|endoftext|> allowed), every
/// token after the first predicted once, from windows of up to context_length tokens (stride =
/// window, the last one shorter), batch_size windows of equal length per forward pass, on the
/// model's device, in eval mode without gradients. A text of fewer than 2 tokens returns only
/// `tokens`.
TextLoss evaluate_text_loss(GPTModel& model, const Tokenizer& tokenizer, std::string_view text,
                            int64_t batch_size);

}  // namespace llmfs
