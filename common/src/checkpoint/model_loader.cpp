// The one model loader: what a user names (a run, a checkpoint, GPT-2 weights) to a GPTModel
// with its config and tokenizer.
#include "llmfs/checkpoint/model_loader.h"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>

#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/checkpoint/gpt2_weights.h"
#include "llmfs/config/config_node.h"
#include "llmfs/core/data_files.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/tokenizer/tokenizer_config.h"

namespace fs = std::filesystem;

namespace llmfs {

namespace {

constexpr std::string_view kGpt2Prefix = "gpt2:";

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// The run's tokenizer: its config.yaml's `tokenizer:` section when it has one, else GPT-2's.
std::shared_ptr<const Tokenizer> checkpoint_tokenizer(const fs::path& checkpoint_dir) {
  const fs::path file = checkpoint_dir / "config.yaml";
  const auto document = ConfigDocument::from_string(read_file(file), file.string());
  if (!document.root().has("tokenizer")) {
    return std::make_shared<BPETokenizer>(BPETokenizer::gpt2());
  }
  const auto config = parse_tokenizer_config(document.root().child("tokenizer"));
  return std::shared_ptr<const Tokenizer>(make_tokenizer(config));
}

}  // namespace

std::optional<TokenizerConfig> folder_tokenizer_config(const fs::path& dir) {
  const auto absolute = [](const fs::path& p) { return fs::absolute(p).lexically_normal().string(); };
  const fs::path vocab = dir / "vocab.json", merges = dir / "merges.txt";
  const fs::path tokenizer_json = dir / "tokenizer.json";
  TokenizerConfig config;
  config.kind = "bpe";
  if (is_file(vocab) && is_file(merges)) {  // the Hub's GPT-2 folders; transformers 4
    config.encoder_json = absolute(vocab);
    config.vocab_bpe = absolute(merges);
  } else if (is_file(tokenizer_json)) {  // transformers 5 saves tokenizer.json alone
    config.tokenizer_json = absolute(tokenizer_json);
  } else {
    return std::nullopt;
  }
  return config;
}

namespace {

// A folder's tokenizer (folder_tokenizer_config) as its `tokenizer:` section.
std::string tokenizer_section_yaml(const TokenizerConfig* own) {
  if (own == nullptr) return "";
  YAML::Node section;
  section["kind"] = own->kind;
  if (own->tokenizer_json.empty()) {
    section["encoder_json"] = own->encoder_json;
    section["vocab_bpe"] = own->vocab_bpe;
  } else {
    section["tokenizer_json"] = own->tokenizer_json;
  }
  return YAML::Dump(section) + "\n";
}

}  // namespace

std::string folder_tokenizer_yaml(const fs::path& dir) {
  const auto own = folder_tokenizer_config(dir);
  return tokenizer_section_yaml(own ? &*own : nullptr);
}

fs::path gpt2_weights_dir(const std::string& size) { return cache_root() / "gpt2" / size; }

std::optional<fs::path> find_gpt2_weights(const std::string& configured, const std::string& size) {
  if (!configured.empty()) {
    if (!fs::exists(configured)) fail("GPT-2 weights: {}: no such file or folder", configured);
    return fs::path(configured);
  }
  const fs::path dir = gpt2_weights_dir(size);
  if (is_file(dir / "model.safetensors") && is_file(dir / "config.json")) return dir;
  return std::nullopt;
}

std::optional<fs::path> latest_run_checkpoint(const fs::path& run_dir) {
  const auto latest = latest_checkpoint(run_dir / "checkpoints");
  if (latest && !is_dir(*latest)) {
    fail("{} names {}, which does not exist", (run_dir / "checkpoints" / kLatestFile).string(),
         latest->string());
  }
  return latest;
}

bool is_checkpoint_dir(const fs::path& dir) {
  return is_file(dir / kModelFile) && is_file(dir / "config.yaml");
}

GPTConfig checkpoint_model_config(const fs::path& dir) {
  const fs::path file = dir / "config.yaml";
  if (!is_file(file)) {
    fail("{}: no config.yaml, so the model's shape is unknown (not a training checkpoint?)",
         dir.string());
  }
  // Only the model section: the rest of a run's config belongs to the program that ran it.
  const auto document = ConfigDocument::from_string(read_file(file), file.string());
  return parse_gpt_config(document.root().child("model"));
}

fs::path resolve_model_path(const std::string& name, const ModelLoadOptions& options) {
  if (name.empty() || name == "latest") {
    const auto latest = latest_run_checkpoint(options.run_dir);
    if (!latest) fail("no trained model in {} ({})", options.run_dir.string(), options.train_hint);
    return *latest;
  }
  if (name.starts_with(kGpt2Prefix)) {
    const std::string size = name.substr(kGpt2Prefix.size());
    gpt2_config(size);  // an unknown size fails here, listing the known ones
    const fs::path dir = gpt2_weights_dir(size);
    if (!is_file(dir / "model.safetensors")) {
      fail("{}: {}: not downloaded yet (scripts/download_gpt2.sh {})", options.what, name, size);
    }
    return dir;
  }
  const fs::path path(name);
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("{}: {}: no such file or folder", options.what, name);
  if (!is_dir(path)) return path;  // a weights file; its format is checked when it is read
  if (is_checkpoint_dir(path)) return path;
  for (const fs::path& checkpoints : {path / "checkpoints", path}) {
    if (!is_file(checkpoints / kLatestFile)) continue;
    const auto latest = latest_checkpoint(checkpoints);
    if (!latest || !is_dir(*latest)) {
      fail("{} names {}, which does not exist", (checkpoints / kLatestFile).string(),
           latest ? latest->string() : "nothing");
    }
    return *latest;
  }
  if (is_dir(path / "checkpoints")) {
    fail("{}: {}: the run has no complete checkpoint yet ({})", options.what, name,
         options.train_hint);
  }
  if (is_file(path / "config.json")) return path;  // a Hugging Face model folder
  fail(
      "{}: {}: not a checkpoint folder, a run folder or a Hugging Face model folder (expected "
      "{} and config.yaml, checkpoints/, or config.json inside it)",
      options.what, name, kModelFile);
}

LoadedModel load_model(const std::string& name, const ModelLoadOptions& options) {
  const fs::path path = resolve_model_path(name, options);
  LoadedModel loaded;
  loaded.source = path.string();
  if (is_dir(path) && is_checkpoint_dir(path)) {
    loaded.is_checkpoint = true;
    loaded.config = checkpoint_model_config(path);
    loaded.model = GPTModel(loaded.config);
    const fs::path weights = path / kModelFile;
    load_model_state_dict(*loaded.model, read_tensor_file(weights), weights.string());
    loaded.model->eval();
    loaded.tokenizer = checkpoint_tokenizer(path);
  } else {
    loaded.model = load_gpt_model(path, options.model_config);  // eval mode
    loaded.config = loaded.model->config();
    // A Hugging Face folder that carries its tokenizer files is read with them: no data folder
    // (and no download) needed.
    if (const auto own = folder_tokenizer_config(is_dir(path) ? path : path.parent_path())) {
      loaded.tokenizer = std::shared_ptr<const Tokenizer>(make_tokenizer(*own));
      loaded.tokenizer_yaml = tokenizer_section_yaml(&*own);
    } else {
      loaded.tokenizer = std::make_shared<BPETokenizer>(BPETokenizer::gpt2());
    }
  }
  spdlog::debug("model {}: {} layers, emb_dim {}, context {}, tokenizer {}", loaded.source,
                loaded.config.n_layers, loaded.config.emb_dim, loaded.config.context_length,
                loaded.tokenizer->name());
  return loaded;
}

void add_model_flags(CLI::App& app, ModelFlags& flags, const std::string& run_dir,
                     bool weights_only) {
  auto* weights = app.add_option("--weights", flags.weights,
                                 "GPT-2 weights: .safetensors/.pth file or Hugging Face folder "
                                 "(scripts/download_gpt2.sh)");
  app.add_option("--model-config", flags.model_config,
                 "Model shape (YAML or config.json) when no config.json lies beside the weights");
  if (weights_only) {
    weights->required();
    return;
  }
  auto* checkpoint = app.add_option(
      "--checkpoint", flags.checkpoint,
      "Training checkpoint: a checkpoint folder or a run folder (default: the latest of " +
          run_dir + ")");
  checkpoint->excludes(weights);
}

LoadedModel load_model(const ModelFlags& flags, ModelLoadOptions options) {
  if (!flags.model_config.empty()) options.model_config = read_model_config(flags.model_config);
  options.what = flags.weights.empty() ? "--checkpoint" : "--weights";
  const std::string& name = flags.weights.empty() ? flags.checkpoint : flags.weights;
  if (!flags.model_config.empty()) {
    const auto path = resolve_model_path(name, options);
    if (is_dir(path) && is_checkpoint_dir(path)) {  // would be ignored
      fail("--model-config {}: {} is a training checkpoint, whose config.yaml gives the shape",
           flags.model_config, path.string());
    }
  }
  return load_model(name, options);
}

}  // namespace llmfs
