// Chapter 4: Implementing a GPT model from scratch to generate text.
//
// Narrates sections 4.1-4.7 of the book, printing what the notebook prints (BOOK.md C4-01 ..
// C4-20): the DummyGPTModel scaffold, layer normalisation, GELU and the feed-forward network,
// shortcut connections, the transformer block, the 124M GPTModel and greedy generation. The
// library parts live in llmfs/model/ and llmfs/generate/.
//
//   ch04                                        all sections
//   ch04 --section 4.6                          one section
//   ch04 info [--model-config FILE] [--build]   parameters and memory of a model config
//   ch04 generate --weights PATH [--prompt TEXT] [--max-new-tokens N] [--model-config FILE]
//                 [--temperature T --top-k K --top-p P --seed S] [--no-kv-cache]
//                                               continue a prompt with GPT-2 weights (greedy by
//                                               default); PATH: .safetensors, .pth or an HF folder
//   ch04 --config configs/ch04.yaml [model.n_layers=6 ...]
#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <optional>
#include <span>

#include <CLI/CLI.hpp>

#include "llmfs/checkpoint/model_loader.h"
#include "llmfs/config/cli.h"
#include "llmfs/config/config_node.h"
#include "llmfs/core/repr.h"
#include "llmfs/core/sections.h"
#include "llmfs/generate/generate.h"
#include "llmfs/generate/generation_config.h"
#include "llmfs/generate/sampling.h"
#include "llmfs/model/feed_forward.h"
#include "llmfs/model/gelu.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/model/layer_norm.h"
#include "llmfs/ops/linear.h"
#include "llmfs/model/parameter_count.h"
#include "llmfs/model/transformer_block.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"

namespace {

using llmfs::py_repr;

// The notebook turns scientific notation off in §4.2 and leaves it off (torch.set_printoptions).
const llmfs::PrintOptions kNoSci{.sci_mode = false};

struct Ch04Config {
  uint64_t seed = 123;
  llmfs::GPTConfig model;  // GPT_CONFIG_124M
  std::vector<std::string> batch_texts = {"Every effort moves you", "Every day holds a"};
  std::string start_context = "Hello, I am";
  int64_t max_new_tokens = 6;
  std::string prompt = "Hello, I am";  // `ch04 generate`
  llmfs::GenerationConfig generate;    // its settings (generate:)
};

Ch04Config parse_ch04_config(llmfs::ConfigNode node) {
  Ch04Config c;
  node.read("seed", c.seed);
  c.model = llmfs::parse_gpt_config(node.child("model"));
  node.read("batch_texts", c.batch_texts);
  node.read("start_context", c.start_context);
  node.read("max_new_tokens", c.max_new_tokens, llmfs::at_least(int64_t{0}));
  node.check(!c.batch_texts.empty(), "batch_texts", "needs at least one text");
  auto g = node.child("generate");
  g.read("prompt", c.prompt);
  llmfs::GenerationConfig generate_defaults;
  generate_defaults.max_new_tokens = 10;
  c.generate = llmfs::parse_generation_config(g, generate_defaults);
  return c;
}

// --- Tokenizer ---------------------------------------------------------------------------------

// GPT-2's BPE tokenizer (tiktoken's "gpt2"), loaded once on first use.
const llmfs::BPETokenizer& tokenizer() {
  static const llmfs::BPETokenizer gpt2 = llmfs::BPETokenizer::gpt2();
  return gpt2;
}

// (B, T) ids of equally long texts, as torch.stack of the encoded texts.
torch::Tensor encode_batch(const std::vector<std::string>& texts) {
  std::vector<torch::Tensor> rows;
  for (const auto& text : texts) rows.push_back(torch::tensor(tokenizer().encode(text), torch::kLong));
  for (const auto& row : rows) {
    if (row.size(0) != rows[0].size(0)) {
      llmfs::fail("batch_texts: the texts must encode to the same number of tokens ({} vs {})",
                  row.size(0), rows[0].size(0));
    }
  }
  return torch::stack(rows, 0);
}

// --- 4.1 The scaffold ---------------------------------------------------------------------------

// Placeholders of §4.1: they return their input and hold no parameters.
struct DummyTransformerBlockImpl : torch::nn::Module {
  torch::Tensor forward(const torch::Tensor& x) { return x; }
};
TORCH_MODULE(DummyTransformerBlock);

struct DummyLayerNormImpl : torch::nn::Module {
  torch::Tensor forward(const torch::Tensor& x) { return x; }
};
TORCH_MODULE(DummyLayerNorm);

// The GPT skeleton of §4.1, created in the book's order: tok_emb, pos_emb, drop_emb, the
// placeholder blocks, the placeholder norm, out_head.
struct DummyGPTModelImpl : torch::nn::Module {
  explicit DummyGPTModelImpl(const llmfs::GPTConfig& cfg) {
    tok_emb = register_module("tok_emb", torch::nn::Embedding(cfg.vocab_size, cfg.emb_dim));
    pos_emb = register_module("pos_emb", torch::nn::Embedding(cfg.context_length, cfg.emb_dim));
    drop_emb = register_module("drop_emb", torch::nn::Dropout(cfg.drop_rate));
    trf_blocks = register_module("trf_blocks", torch::nn::Sequential());
    for (int64_t i = 0; i < cfg.n_layers; ++i) trf_blocks->push_back(DummyTransformerBlock());
    final_norm = register_module("final_norm", DummyLayerNorm());
    out_head = register_module(
        "out_head",
        torch::nn::Linear(torch::nn::LinearOptions(cfg.emb_dim, cfg.vocab_size).bias(false)));
  }

  torch::Tensor forward(const torch::Tensor& in_idx) {
    const auto tok_embeds = tok_emb(in_idx);
    const auto pos_embeds = pos_emb(torch::arange(in_idx.size(1), in_idx.options()));
    auto x = drop_emb(tok_embeds + pos_embeds);
    x = final_norm(trf_blocks->forward(x));
    return llmfs::linear(out_head, x);
  }

  torch::nn::Embedding tok_emb{nullptr}, pos_emb{nullptr};
  torch::nn::Dropout drop_emb{nullptr};
  torch::nn::Sequential trf_blocks{nullptr};
  DummyLayerNorm final_norm{nullptr};
  torch::nn::Linear out_head{nullptr};
};
TORCH_MODULE(DummyGPTModel);

void section_4_1(const Ch04Config& cfg) {
  const auto batch = encode_batch(cfg.batch_texts);
  fmt::print("{}\n\n", py_repr(batch));  // C4-01

  torch::manual_seed(cfg.seed);
  DummyGPTModel model(cfg.model);
  const auto logits = model(batch);  // training mode, as the book: dropout is active (R)
  fmt::print("Output shape: {}\n{}\n", py_repr(logits.sizes()), py_repr(logits));  // C4-02
}

// --- 4.2 Layer normalisation --------------------------------------------------------------------

void section_4_2(const Ch04Config& cfg) {
  torch::manual_seed(cfg.seed);
  const auto batch_example = torch::randn({2, 5});  // drawn before the layer (BOOK.md §5.3)
  torch::nn::Sequential layer(torch::nn::Linear(5, 6), torch::nn::ReLU());
  const auto out = layer->forward(batch_example);
  fmt::print("{}\n\n", py_repr(out));  // C4-03

  auto mean = out.mean(-1, /*keepdim=*/true);
  auto var = out.var(-1, /*unbiased=*/true, /*keepdim=*/true);
  fmt::print("Mean:\n {}\nVariance:\n {}\n\n", py_repr(mean), py_repr(var));  // C4-04

  const auto out_norm = (out - mean) / torch::sqrt(var);
  fmt::print("Normalized layer outputs:\n {}\n", py_repr(out_norm));
  mean = out_norm.mean(-1, true);
  var = out_norm.var(-1, true, true);
  fmt::print("Mean:\n {}\nVariance:\n {}\n\n", py_repr(mean), py_repr(var));  // C4-05

  // torch.set_printoptions(sci_mode=False)
  fmt::print("Mean:\n {}\nVariance:\n {}\n\n", py_repr(mean, kNoSci),
             py_repr(var, kNoSci));  // C4-06

  llmfs::LayerNorm ln(6);
  const auto out_ln = ln(out);
  mean = out_ln.mean(-1, true);
  var = out_ln.var(-1, /*unbiased=*/false, true);
  fmt::print("Mean:\n {}\nVariance:\n {}\n", py_repr(mean, kNoSci), py_repr(var, kNoSci));  // C4-07
}

// --- 4.3 GELU and the feed-forward network ------------------------------------------------------

void section_4_3(const Ch04Config& cfg) {
  fmt::print("{}\n\n", cfg.model.emb_dim);  // C4-08
  llmfs::FeedForward ffn(cfg.model);
  const auto x = torch::rand({2, 3, cfg.model.emb_dim});  // (batch, tokens, emb_dim)
  fmt::print("{}\n", py_repr(ffn(x).sizes()));            // C4-09
}

// --- 4.4 Shortcut connections -------------------------------------------------------------------

// Five linear+GELU stages; with shortcuts each stage's output is added to its input where the
// shapes agree (§4.4).
struct ExampleDeepNeuralNetworkImpl : torch::nn::Module {
  ExampleDeepNeuralNetworkImpl(const std::vector<int64_t>& layer_sizes, bool use_shortcut_)
      : use_shortcut(use_shortcut_) {
    layers = register_module("layers", torch::nn::ModuleList());
    for (size_t i = 0; i + 1 < layer_sizes.size(); ++i) {
      layers->push_back(torch::nn::Sequential(torch::nn::Linear(layer_sizes[i], layer_sizes[i + 1]),
                                              llmfs::GELU()));
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    for (const auto& layer : *layers) {
      const auto layer_output = layer->as<torch::nn::Sequential>()->forward(x);
      x = use_shortcut && x.sizes() == layer_output.sizes() ? x + layer_output : layer_output;
    }
    return x;
  }

  bool use_shortcut;
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(ExampleDeepNeuralNetwork);

void print_gradients(ExampleDeepNeuralNetwork& model, const torch::Tensor& x) {
  const auto output = model(x);
  const auto target = torch::tensor({{0.0f}});
  const auto loss = torch::mse_loss(output, target);
  loss.backward();
  for (const auto& p : model->named_parameters()) {
    if (p.key().find("weight") == std::string::npos) continue;
    fmt::print("{} has gradient mean of {}\n", p.key(),
               llmfs::py_float(p.value().grad().abs().mean().item<double>()));
  }
}

void section_4_4(const Ch04Config& cfg) {
  const std::vector<int64_t> layer_sizes = {3, 3, 3, 3, 3, 1};
  const auto sample_input = torch::tensor({{1.0f, 0.0f, -1.0f}});
  torch::manual_seed(cfg.seed);
  ExampleDeepNeuralNetwork model_without_shortcut(layer_sizes, false);
  print_gradients(model_without_shortcut, sample_input);  // C4-10
  fmt::print("\n");
  torch::manual_seed(cfg.seed);
  ExampleDeepNeuralNetwork model_with_shortcut(layer_sizes, true);
  print_gradients(model_with_shortcut, sample_input);  // C4-11
}

// --- 4.5 The transformer block ------------------------------------------------------------------

void section_4_5(const Ch04Config& cfg) {
  torch::manual_seed(cfg.seed);
  const auto x = torch::rand({2, 4, cfg.model.emb_dim});  // drawn before the block
  llmfs::TransformerBlock block(cfg.model);
  const auto output = block(x);
  fmt::print("Input shape: {}\nOutput shape: {}\n", py_repr(x.sizes()),
             py_repr(output.sizes()));  // C4-12
}

// --- 4.6 The GPT model --------------------------------------------------------------------------

void section_4_6(const Ch04Config& cfg) {
  const auto batch = encode_batch(cfg.batch_texts);
  torch::manual_seed(cfg.seed);
  llmfs::GPTModel model(cfg.model);
  const auto out = model(batch);  // training mode, as the book: dropout is active (R)
  fmt::print("Input batch:\n {}\n\nOutput shape: {}\n{}\n\n", py_repr(batch), py_repr(out.sizes()),
             py_repr(out, kNoSci));  // C4-13

  const int64_t total_params = llmfs::count_parameters(*model);
  fmt::print("Total number of parameters: {}\n\n", llmfs::group_thousands(total_params));  // C4-14
  fmt::print("Token embedding layer shape: {}\n", py_repr(model->tok_emb->weight.sizes()));
  if (!model->out_head.is_empty()) {
    fmt::print("Output layer shape: {}\n", py_repr(model->out_head->weight.sizes()));  // C4-15
  }
  fmt::print("\nNumber of trainable parameters considering weight tying: {}\n\n",
             llmfs::group_thousands(llmfs::count_parameters_tied(*model)));  // C4-16
  fmt::print("Total size of the model: {:.2f} MB\n",
             llmfs::parameter_megabytes(total_params, 4));  // C4-17 (float32)
}

// --- 4.7 Generating text ------------------------------------------------------------------------

void section_4_7(const Ch04Config& cfg) {
  const auto encoded = tokenizer().encode(cfg.start_context);
  fmt::print("encoded: {}\n", py_repr(encoded));
  const auto encoded_tensor = torch::tensor(encoded, torch::kLong).unsqueeze(0);
  fmt::print("encoded_tensor.shape: {}\n\n", py_repr(encoded_tensor.sizes()));  // C4-18

  torch::manual_seed(cfg.seed);
  llmfs::GPTModel model(cfg.model);
  model->eval();  // disable dropout
  const auto out = llmfs::generate_text_simple(model, encoded_tensor, cfg.max_new_tokens,
                                               cfg.model.context_length);
  fmt::print("Output: {}\nOutput length: {}\n\n", py_repr(out), out.size(1));  // C4-19
  const auto ids = out.squeeze(0);
  fmt::print("{}\n", tokenizer().decode(std::span<const int64_t>(ids.data_ptr<int64_t>(),
                                                                  ids.numel())));  // C4-20
}

// --- ch04 info ----------------------------------------------------------------------------------

int run_info(const llmfs::GPTConfig& model_cfg, const std::string& source, bool build) {
  fmt::print("Model config: {}\n", source);
  fmt::print(
      "  vocab_size {}, context_length {}, emb_dim {}, n_heads {}, n_layers {}, drop_rate {}, "
      "qkv_bias {}, tie_weights {}, attention {}\n",
      model_cfg.vocab_size, model_cfg.context_length, model_cfg.emb_dim, model_cfg.n_heads,
      model_cfg.n_layers, model_cfg.drop_rate, model_cfg.qkv_bias, model_cfg.tie_weights,
      model_cfg.attention);
  int64_t total = llmfs::count_gpt_parameters(model_cfg);
  int64_t tied = llmfs::count_gpt_parameters_tied(model_cfg);
  if (build) {  // count the instantiated model instead of the arithmetic
    llmfs::GPTModel model(model_cfg);
    total = llmfs::count_parameters(*model);
    tied = llmfs::count_parameters_tied(*model);
  }
  fmt::print("Total number of parameters: {}\n", llmfs::group_thousands(total));
  fmt::print("Number of parameters with the output head tied to the token embedding: {}\n",
             llmfs::group_thousands(tied));
  fmt::print("Total size of the model: {:.2f} MB (float32), {:.2f} MB (bfloat16)\n",
             llmfs::parameter_megabytes(total, 4), llmfs::parameter_megabytes(total, 2));
  return 0;
}

// --- ch04 generate ------------------------------------------------------------------------------

// GPT weights (shape from the config.json beside them, or --model-config): the prompt with its
// continuation.
int run_generate(const Ch04Config& cfg, const llmfs::ModelFlags& model_flags,
                 const llmfs::GenerationFlags& flags) {
  const auto settings = llmfs::apply_generation_flags(cfg.generate, flags);  // fails before loading
  auto loaded = llmfs::load_model(model_flags, {});
  const auto prompt = flags.has_prompt() ? flags.prompt : cfg.prompt;
  fmt::print("{}\n", llmfs::generate_text(loaded.model, *loaded.tokenizer, prompt, settings,
                                          loaded.source).text);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Chapter 4: Implementing a GPT model from scratch to generate text"};
  llmfs::CommonOptions common;  // --config, --log-level, --print-config, key.sub=value ...
  llmfs::add_common_options(app, common);
  std::string only_section;
  app.add_option("--section", only_section, "Run one section, e.g. 4.6");

  auto* info = app.add_subcommand("info", "Parameters and memory of a model config");
  llmfs::add_common_options(*info, common);
  std::string model_config;
  bool build = false;
  info->add_option("--model-config", model_config,
                   "Model YAML, e.g. configs/models/gpt2-355M.yaml (default: the config's model)")
      ->check(CLI::ExistingFile);
  info->add_flag("--build", build, "Instantiate the model and count its parameters");

  auto* gen = app.add_subcommand("generate", "Continue a prompt with GPT weights (greedy by default)");
  llmfs::add_common_options(*gen, common);
  llmfs::ModelFlags model_flags;
  llmfs::add_model_flags(*gen, model_flags, "", /*weights_only=*/true);
  llmfs::GenerationFlags generation_flags;
  llmfs::add_generation_flags(*gen, generation_flags);
  if (const auto code = llmfs::parse_command_line(app, argc, argv)) return *code;

  return llmfs::run_main([&] {
    const auto cfg = llmfs::load_config<Ch04Config>(common, parse_ch04_config);
    if (gen->parsed()) return run_generate(cfg, model_flags, generation_flags);
    if (info->parsed()) {
      if (model_config.empty()) return run_info(cfg.model, "model (chapter config)", build);
      llmfs::ConfigDocument doc(model_config, {});
      const auto model_cfg = llmfs::parse_gpt_config(doc.root());
      doc.finish();
      return run_info(model_cfg, model_config, build);
    }
    return llmfs::run_sections(
        {{"4.1", "Coding an LLM architecture", [&] { section_4_1(cfg); }},
         {"4.2", "Normalizing activations with layer normalization", [&] { section_4_2(cfg); }},
         {"4.3", "Implementing a feed forward network with GELU activations",
          [&] { section_4_3(cfg); }},
         {"4.4", "Adding shortcut connections", [&] { section_4_4(cfg); }},
         {"4.5", "Connecting attention and linear layers in a transformer block",
          [&] { section_4_5(cfg); }},
         {"4.6", "Coding the GPT model", [&] { section_4_6(cfg); }},
         {"4.7", "Generating text", [&] { section_4_7(cfg); }}},
        only_section);
  });
}
