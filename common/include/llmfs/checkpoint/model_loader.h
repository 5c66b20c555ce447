#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "llmfs/model/gpt_config.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/tokenizer.h"
#include "llmfs/tokenizer/tokenizer_config.h"

namespace CLI {
class App;
}  // namespace CLI

namespace llmfs {

/// Where scripts/download_gpt2.sh puts GPT-2 weights of a size ("124M", ...):
/// cache_root()/gpt2/<size>, i.e. ~/.cache/llmfs/gpt2/124M unless LLMFS_CACHE_DIR says otherwise.
std::filesystem::path gpt2_weights_dir(const std::string& size = "124M");

/// GPT-2 weights for a chapter's demo: `configured` when given (it must exist), else the download
/// cache of `size` when it holds model.safetensors and config.json, else nothing.
std::optional<std::filesystem::path> find_gpt2_weights(const std::string& configured,
                                                       const std::string& size = "124M");

/// The latest checkpoint of a run folder (<run_dir>/checkpoints/latest), or nothing before the
/// first one. llmfs::Error when the pointer names a folder that does not exist.
std::optional<std::filesystem::path> latest_run_checkpoint(const std::filesystem::path& run_dir);

/// What load_model needs besides the name the user gave.
struct ModelLoadOptions {
  /// The run folder that "latest" (and an empty name) refers to: the chapter's train.output_dir.
  std::filesystem::path run_dir;
  /// The model's shape for weights without a config.json beside them (the book's .pth);
  /// ignored for training checkpoints, whose config.yaml says it.
  std::optional<GPTConfig> model_config;
  /// Names the option in messages ("--weights: x: no such file or folder").
  std::string what = "model";
  /// What to suggest when a run folder has no checkpoint yet ("run `ch05 train` first").
  std::string train_hint = "train a model first";
};

/// A model ready to generate or evaluate (eval mode, on the CPU), with what describes it.
struct LoadedModel {
  GPTModel model{nullptr};
  GPTConfig config;
  /// The tokenizer the model was trained with: the `tokenizer:` section of a run's config.yaml,
  /// GPT-2's BPE otherwise (OpenAI's weights, runs without that section).
  std::shared_ptr<const Tokenizer> tokenizer;
  /// The folder or file the weights came from, for messages and headings.
  std::string source;
  /// True for a training checkpoint (a run of ours), false for a weights file or folder.
  bool is_checkpoint = false;
  /// A weights folder's own tokenizer as a `tokenizer:` section (YAML), which a run finetuned
  /// from it saves; empty for GPT-2's from the data folder and for checkpoints.
  std::string tokenizer_yaml;
};

/// The tokenizer files a Hugging Face GPT-2 folder carries, as a `tokenizer:` section of kind
/// bpe: vocab.json and merges.txt (GPT-2's encoder.json and vocab.bpe under the Hub's names), else
/// tokenizer.json (what transformers 5 saves); nullopt when it has neither.
std::optional<TokenizerConfig> folder_tokenizer_config(const std::filesystem::path& dir);

/// folder_tokenizer_config as YAML (the section a run finetuned from the folder saves); empty
/// when the folder has no tokenizer files.
std::string folder_tokenizer_yaml(const std::filesystem::path& dir);

/// The one model loader of llmfs. `name` is what a user names a model with:
///   ""  or "latest"             the latest checkpoint of options.run_dir
///   a run folder                its latest checkpoint (<run>/checkpoints/latest)
///   a checkpoints folder        its latest checkpoint
///   a checkpoint folder         (model.safetensors + config.yaml, as the Trainer writes them)
///   a Hugging Face folder       (config.json + model.safetensors / sharded / pytorch_model.bin)
///   a .safetensors file         in the Hugging Face or the book's layout (config.json beside it,
///                               or options.model_config)
///   a .pth / .bin file          the book's torch.save(model.state_dict()) (+ model_config)
///   "gpt2:124M" ... "gpt2:1558M"  the download cache (gpt2_weights_dir)
/// Errors are one-line llmfs::Errors naming the path: nothing there, no checkpoint in a run
/// folder, a checkpoint of another model (naming the tensor and both shapes).
LoadedModel load_model(const std::string& name, const ModelLoadOptions& options = {});

/// The flags that name a model on a command line: --checkpoint (a run of ours) or --weights
/// (GPT-2 weights), and --model-config for weights without a config.json.
struct ModelFlags {
  std::string checkpoint;
  std::string weights;
  std::string model_config;
};

/// Adds --checkpoint and --weights (exclusive) to a subcommand; `run_dir` is named in the help as
/// the default (its latest checkpoint). With `weights_only`, only --weights (required) and
/// --model-config.
void add_model_flags(CLI::App& app, ModelFlags& flags, const std::string& run_dir,
                     bool weights_only = false);

/// load_model of what the flags name: --weights, else --checkpoint, else the latest checkpoint
/// of options.run_dir; --model-config (YAML or config.json) gives options.model_config.
LoadedModel load_model(const ModelFlags& flags, ModelLoadOptions options);

/// The path a name resolves to (load_model's rules), without loading anything: a checkpoint
/// folder, a weights file or a Hugging Face folder.
std::filesystem::path resolve_model_path(const std::string& name, const ModelLoadOptions& options);

/// Whether `dir` is a training checkpoint folder (a model file and a config.yaml).
bool is_checkpoint_dir(const std::filesystem::path& dir);

/// The GPTConfig of a training checkpoint (the `model:` section of its config.yaml).
GPTConfig checkpoint_model_config(const std::filesystem::path& checkpoint_dir);

}  // namespace llmfs
