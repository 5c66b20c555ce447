#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "llmfs/model/gpt_config.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/tokenizer.h"
#include "llmfs/tokenizer/tokenizer_config.h"

namespace llmfs {

/// The model a finetuning run starts from (chapters 6 and 7, DPO), with its tokenizer.
struct BaseModel {
  GPTModel model{nullptr};
  std::shared_ptr<const Tokenizer> tokenizer;
  std::string source;          // the folder or file it came from ("random" for a new one)
  std::string tokenizer_yaml;  // a base run's `tokenizer:` section, if it had one
};

/// A finetuning run's base_model:
///   "random"        a new GPT of `shape` (torch::manual_seed(seed) first) with `tokenizer`;
///   anything else   llmfs::load_model's names ("gpt2:355M", a run folder, a checkpoint, a Hugging
///                   Face folder, a weights file; `shape` for weights without a config.json).
/// The dropout rate and the kernels are the run's (shape.drop_rate, attention, native_kernels)
/// whatever the weights' config says: the book finetunes GPT-2 with drop_rate 0.0 while OpenAI's
/// config.json says 0.1; the rest of the shape is the weights'. The model is on the
/// CPU in training mode. One-line errors: nothing there, a tokenizer larger than the model's
/// vocabulary.
BaseModel load_base_model(const std::string& name, const GPTConfig& shape,
                          const TokenizerConfig& tokenizer, int64_t seed);

/// The `model:` section of a config for a GPTConfig, each line prefixed by `indent`.
std::string gpt_config_yaml(const GPTConfig& config, const std::string& indent = "");

/// The `tokenizer:` section of a run's config.yaml as YAML text; "" when it has none.
std::string run_tokenizer_yaml(const std::filesystem::path& checkpoint_dir);

/// A resolved config with the trained model's `model:` section (and `tokenizer:` when
/// tokenizer_yaml is not empty) put in: what llmfs::load_model reads from a checkpoint.
std::string with_model_sections(const std::string& resolved, const GPTConfig& model,
                                const std::string& tokenizer_yaml);

}  // namespace llmfs
