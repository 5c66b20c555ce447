// The model a finetuning run starts from: a new GPT or anything load_model loads, with the
// run's dropout rate.
#include "llmfs/finetune/base_model.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/checkpoint/model_loader.h"
#include "llmfs/core/error.h"

namespace llmfs {

namespace fs = std::filesystem;

std::string run_tokenizer_yaml(const fs::path& checkpoint_dir) {
  const auto file = checkpoint_dir / "config.yaml";
  if (!fs::exists(file)) return "";
  const auto root = YAML::LoadFile(file.string());
  if (!root["tokenizer"]) return "";
  return YAML::Dump(root["tokenizer"]);
}

std::string with_model_sections(const std::string& resolved, const GPTConfig& model,
                                const std::string& tokenizer_yaml) {
  YAML::Node root = resolved.empty() ? YAML::Node(YAML::NodeType::Map) : YAML::Load(resolved);
  root["model"] = YAML::Load(gpt_config_yaml(model));
  if (!tokenizer_yaml.empty()) root["tokenizer"] = YAML::Load(tokenizer_yaml);
  return YAML::Dump(root) + "\n";
}

std::string gpt_config_yaml(const GPTConfig& c, const std::string& indent) {
  return fmt::format(
      "{0}vocab_size: {1}\n{0}context_length: {2}\n{0}emb_dim: {3}\n{0}n_heads: {4}\n"
      "{0}n_layers: {5}\n{0}drop_rate: {6}\n{0}qkv_bias: {7}\n{0}tie_weights: {8}\n"
      "{0}attention: {9}\n{0}native_kernels: {10}\n",
      indent, c.vocab_size, c.context_length, c.emb_dim, c.n_heads, c.n_layers, c.drop_rate,
      c.qkv_bias, c.tie_weights, c.attention, c.native_kernels);
}

BaseModel load_base_model(const std::string& name, const GPTConfig& shape,
                          const TokenizerConfig& tokenizer, int64_t seed) {
  BaseModel base;
  if (name == "random") {
    torch::manual_seed(static_cast<uint64_t>(seed));
    base.model = GPTModel(shape);
    base.tokenizer = make_tokenizer(tokenizer);
    base.source = "random";
  } else {
    ModelLoadOptions options{.model_config = shape,
                             .what = "base_model",
                             .train_hint = "run `ch05 train` first, or set base_model"};
    // `shape` only for weights that do not say theirs (the book's .pth): a config.json wins.
    const auto path = resolve_model_path(name, options);
    const auto dir = fs::is_directory(path) ? path : path.parent_path();
    if (fs::exists(dir / "config.json")) options.model_config.reset();
    auto loaded = load_model(path.string(), options);
    base.model = loaded.model;
    base.tokenizer = loaded.tokenizer;
    base.source = loaded.source;
    base.tokenizer_yaml =
        loaded.is_checkpoint ? run_tokenizer_yaml(loaded.source) : loaded.tokenizer_yaml;
    auto config = loaded.config;  // the weights' shape, the run's dropout and kernels
    config.drop_rate = shape.drop_rate;
    config.attention = shape.attention;
    config.native_kernels = shape.native_kernels;
    if (config != loaded.config) {
      // Modules take these when built: a model of the run's choice, with the same weights.
      GPTModel model(config);
      load_model_state_dict(*model, model_state_dict(*loaded.model), base.source);
      base.model = model;
    }
    base.model->train();
  }
  if (base.tokenizer->vocab_size() > base.model->config().vocab_size) {
    fail("base_model {}: its vocabulary has {} entries, the tokenizer {} ({})", base.source,
         base.model->config().vocab_size, base.tokenizer->vocab_size(), base.tokenizer->name());
  }
  return base;
}

}  // namespace llmfs
