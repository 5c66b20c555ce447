// Chapter 5: Pretraining on unlabeled data.
//
// Narrates the chapter with the book's numbers (BOOK.md §6): the untrained model's text, the
// cross entropy and perplexity by hand, the-verdict's loaders and initial losses (5.1), how to
// train (5.2, the `train` subcommand), decoding strategies (5.3), saving and loading (5.4) and
// OpenAI's GPT-2 weights (5.5). The subcommands are the chapter's tools, thin calls of common/:
//
//   ch05                                   narrate every section
//   ch05 --section 5.3.1                   one section (5.1 and 5.3 include their subsections)
//   ch05 --weights DIR                     5.5 with these GPT-2 weights (default: the download
//                                          cache ~/.cache/llmfs/gpt2/124M, when present)
//   ch05 generate [--checkpoint RUN | --weights PATH] [--prompt TEXT] [--max-new-tokens N]
//                 [--temperature T] [--top-k K] [--top-p P] [--seed S] [--no-kv-cache]
//   ch05 evaluate [--checkpoint RUN | --weights PATH] --input FILE
//   ch05 train [--resume [latest|DIR]] [--overwrite] [train.num_epochs=2 ...]
//                                          the book's pretraining run (5.2) into runs/ch05;
//                                          Ctrl-C saves a checkpoint, --resume continues it
//
// 5.2 does not train inside the narration: `ch05 train` is the run (90 optimizer steps), and
// later sections use its checkpoint in runs/ch05 when there is one.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "llmfs/checkpoint/gpt2_weights.h"
#include "llmfs/checkpoint/model_loader.h"
#include "llmfs/config/cli.h"
#include "llmfs/core/device.h"
#include "llmfs/core/error.h"
#include "llmfs/core/repr.h"
#include "llmfs/core/sections.h"
#include "llmfs/core/temp_dir.h"
#include "llmfs/core/utf8.h"
#include "llmfs/generate/generate.h"
#include "llmfs/generate/generation_config.h"
#include "llmfs/generate/sampling.h"
#include "llmfs/generate/text_ids.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/train/adamw.h"
#include "llmfs/train/loss.h"
#include "llmfs/train/metrics.h"
#include "llmfs/train/pretrain.h"
#include "llmfs/train/plot.h"
#include "llmfs/train/pretrain_data.h"
#include "llmfs/train/training_checkpoint.h"

namespace {

namespace fs = std::filesystem;
using llmfs::py_repr;

// --- Config -----------------------------------------------------------------------------------

struct Ch05Config {
  uint64_t seed = 123;       // before the model (5.1), the loaders and the initial losses (5.1.3)
  llmfs::GPTConfig model;    // GPT_CONFIG_124M with context_length 256 (§5.1)
  std::string gpt2_weights;  // 5.5: GPT-2 weights (file or HF folder); "": the download cache
  std::string prompt = "Every effort moves you";  // `ch05 generate`
  llmfs::GenerationConfig generate;               // its settings (generate:)
  int64_t evaluate_batch_size = 8;                // `ch05 evaluate`
  std::string evaluate_device = "auto";
  llmfs::TrainConfig train;        // `ch05 train` (5.2): the book's run, appendix D's options
  llmfs::PretrainDataConfig data;  // its text: train.data
  llmfs::SampleConfig sample;      // its sample after each epoch: train.sample
};

Ch05Config parse_ch05_config(llmfs::ConfigNode node) {
  Ch05Config c;
  node.read("seed", c.seed);
  llmfs::GPTConfig model_defaults;
  model_defaults.context_length = 256;  // shortened from 1024 (§5.1)
  c.model = llmfs::parse_gpt_config(node.child("model"), model_defaults);
  node.read("gpt2_weights", c.gpt2_weights);
  auto g = node.child("generate");
  g.read("prompt", c.prompt);
  c.generate = llmfs::parse_generation_config(g);
  auto e = node.child("evaluate");
  e.read("batch_size", c.evaluate_batch_size, llmfs::at_least(int64_t{1}));
  e.read<std::string>("device", c.evaluate_device, llmfs::check_device_name);
  auto t = node.child("train");
  llmfs::TrainConfig train_defaults;
  train_defaults.output_dir = "runs/ch05";
  c.train = llmfs::parse_train_config(t, train_defaults);
  c.data = llmfs::parse_pretrain_data_config(t.child("data"));
  c.sample = llmfs::parse_sample_config(t.child("sample"));
  t.child("data").check(c.data.max_length <= c.model.context_length, "max_length",
                        "{} exceeds model.context_length ({})", c.data.max_length,
                        c.model.context_length);
  return c;
}

/// Where the tools look for a model by default: the latest checkpoint of train.output_dir.
llmfs::ModelLoadOptions model_options(const Ch05Config& cfg, const std::string& what) {
  return {.run_dir = cfg.train.output_dir,
          .what = what,
          .train_hint = "run `ch05 train` first, or pass --checkpoint DIR or --weights PATH"};
}

std::string megabytes(uintmax_t bytes) {
  return fmt::format("{:.1f} MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

const std::array<std::string, 9> kToyVocab = {"closer", "every", "effort", "forward", "inches",
                                              "moves",  "pizza", "toward", "you"};

// BOOK.md §6.3: the toy next-token logits after "every effort moves you".
torch::Tensor toy_logits() {
  return torch::tensor({4.51f, 0.89f, -1.90f, 6.75f, 1.63f, -1.62f, -1.89f, 6.28f, 1.79f});
}

// The book's print_sampled_tokens: seed 123, 1,000 single draws, "<count> x <word>" per id.
void print_sampled_tokens(const torch::Tensor& probas) {
  torch::manual_seed(123);
  std::vector<int64_t> counts(kToyVocab.size(), 0);
  for (int i = 0; i < 1000; ++i) ++counts[llmfs::sample_multinomial(probas).item<int64_t>()];
  for (size_t i = 0; i < counts.size(); ++i) fmt::print("{} x {}\n", counts[i], kToyVocab[i]);
}

// --- Narration --------------------------------------------------------------------------------

/// What the sections share: the config, the GPT-2 tokenizer and the untrained model of 5.1
/// (built on first use, after seeding, in eval mode, as the book does once).
class Narration {
 public:
  Narration(const Ch05Config& config, std::string weights_path, std::string resolved_yaml)
      : cfg(config),
        weights(std::move(weights_path)),
        config_yaml(std::move(resolved_yaml)),
        tokenizer(llmfs::BPETokenizer::gpt2()) {}

  llmfs::GPTModel& untrained_model() {
    if (!untrained_) {
      torch::manual_seed(cfg.seed);
      untrained_.emplace(cfg.model);
      (*untrained_)->eval();  // disable dropout during inference
    }
    return *untrained_;
  }

  /// The model of the latest `ch05 train` checkpoint (on the CPU, eval mode), if there is one.
  const std::optional<llmfs::LoadedModel>& trained_model() {
    if (!trained_checked_) {
      trained_checked_ = true;
      if (llmfs::latest_run_checkpoint(cfg.train.output_dir)) {
        trained_ = llmfs::load_model("latest", model_options(cfg, "train.output_dir"));
        spdlog::info("trained model: {}", trained_->source);
      }
    }
    return trained_;
  }

  torch::Tensor ids(std::string_view text) const {
    return llmfs::text_to_token_ids(text, tokenizer);
  }
  std::string text(const torch::Tensor& ids) const {
    return llmfs::token_ids_to_text(ids, tokenizer);
  }

  const Ch05Config& cfg;
  std::string weights;      // --weights for 5.5
  std::string config_yaml;  // the resolved config, saved with 5.4's checkpoint
  llmfs::BPETokenizer tokenizer;

 private:
  std::optional<llmfs::GPTModel> untrained_;
  std::optional<llmfs::LoadedModel> trained_;
  bool trained_checked_ = false;
};

void section_5_1_1(Narration& n) {
  auto& model = n.untrained_model();
  const auto token_ids = llmfs::generate_text_simple(model, n.ids("Every effort moves you"), 10,
                                                     n.cfg.model.context_length);
  fmt::print("Output text:\n {}\n", n.text(token_ids));  // C5-01
}

void section_5_1_2(Narration& n) {
  auto& model = n.untrained_model();
  const auto inputs = torch::tensor({{16833, 3626, 6100},    // ["every effort moves",
                                     {40, 1107, 588}});      //  "I really like"]
  const auto targets = torch::tensor({{3626, 6100, 345},     // [" effort moves you",
                                      {1107, 588, 11311}});  //  " really like chocolate"]
  torch::NoGradGuard no_grad;
  const auto logits = model(inputs);               // (B, T, V)
  const auto probas = torch::softmax(logits, -1);  // probability of each token in the vocabulary
  fmt::print("{}\n\n", py_repr(probas.sizes()));   // C5-02

  const auto token_ids = torch::argmax(probas, -1, /*keepdim=*/true);
  fmt::print("Token IDs:\n {}\n\n", py_repr(token_ids));    // C5-03
  fmt::print("Targets batch 1: {}\n", n.text(targets[0]));  // C5-04
  fmt::print("Outputs batch 1: {}\n\n", n.text(token_ids[0].flatten()));

  const auto positions = torch::arange(3);
  const auto target_probas_1 = probas.index({0, positions, targets[0]});
  const auto target_probas_2 = probas.index({1, positions, targets[1]});
  fmt::print("Text 1: {}\n", py_repr(target_probas_1));  // C5-05
  fmt::print("Text 2: {}\n\n", py_repr(target_probas_2));

  const auto log_probas = torch::log(torch::cat({target_probas_1, target_probas_2}));
  fmt::print("{}\n\n", py_repr(log_probas));  // C5-06
  const auto avg_log_probas = torch::mean(log_probas);
  fmt::print("{}\n\n", py_repr(avg_log_probas));  // C5-07
  const auto neg_avg_log_probas = avg_log_probas * -1;
  fmt::print("{}\n\n", py_repr(neg_avg_log_probas));  // C5-08

  fmt::print("Logits shape: {}\n", py_repr(logits.sizes()));  // C5-09
  fmt::print("Targets shape: {}\n\n", py_repr(targets.sizes()));
  const auto logits_flat = logits.flatten(0, 1);
  const auto targets_flat = targets.flatten();
  fmt::print("Flattened logits: {}\n", py_repr(logits_flat.sizes()));  // C5-10
  fmt::print("Flattened targets: {}\n\n", py_repr(targets_flat.sizes()));

  const auto loss = torch::nn::functional::cross_entropy(logits_flat, targets_flat);
  fmt::print("{}\n\n", py_repr(loss));  // C5-11
  const auto perplexity = torch::exp(loss);
  fmt::print("{}\n", py_repr(perplexity));  // C5-12
}

void section_5_1_3(Narration& n) {
  const auto text_data = llmfs::read_training_text(n.cfg.data.file);
  const int64_t total_characters = llmfs::utf8_length(text_data);
  const int64_t total_tokens = static_cast<int64_t>(n.tokenizer.encode(text_data).size());
  fmt::print("{}\n", llmfs::utf8_slice(text_data, 0, 99));  // C5-13: first 100 characters
  fmt::print("{}\n\n",
             llmfs::utf8_slice(text_data, total_characters - 99, total_characters));  // C5-14
  fmt::print("Characters: {}\nTokens: {}\n\n", total_characters, total_tokens);       // C5-15

  // Split by characters, then seed and build the training and validation loaders (§5.1.3).
  const auto split = llmfs::split_text(text_data, n.cfg.data.train_ratio);
  const auto loaders = llmfs::make_pretrain_loaders(
      split, n.tokenizer, n.cfg.data, n.cfg.train.batch_size, static_cast<int64_t>(n.cfg.seed));
  fmt::print("Train loader:\n");  // C5-16
  for (const auto& batch : loaders.train) {
    fmt::print("{} {}\n", py_repr(batch.input.sizes()), py_repr(batch.target.sizes()));
  }
  fmt::print("\nValidation loader:\n");
  for (const auto& batch : loaders.val) {
    fmt::print("{} {}\n", py_repr(batch.input.sizes()), py_repr(batch.target.sizes()));
  }

  int64_t train_tokens = 0, val_tokens = 0;  // C5-17
  for (const auto& batch : loaders.train) train_tokens += batch.input.numel();
  for (const auto& batch : loaders.val) val_tokens += batch.input.numel();
  fmt::print("\nTraining tokens: {}\nValidation tokens: {}\nAll tokens: {}\n\n", train_tokens,
             val_tokens, train_tokens + val_tokens);

  auto& model = n.untrained_model();
  const auto device = torch::Device(torch::kCPU);
  torch::NoGradGuard no_grad;
  torch::manual_seed(n.cfg.seed);  // the book: for reproducibility due to the shuffling
  const double train_loss = llmfs::calc_loss_loader(loaders.train, model, device);
  const double val_loss = llmfs::calc_loss_loader(loaders.val, model, device);
  fmt::print("Training loss: {}\nValidation loss: {}\n", llmfs::py_float(train_loss),  // C5-18
             llmfs::py_float(val_loss));
}

void section_5_2(Narration& n) {
  const auto& t = n.cfg.train;
  fmt::print(
      "Training is its own command, so that the narration stays quick and the run can be\n"
      "resumed, logged and reused: the book's train_model_simple, {} epochs, batch size {},\n"
      "AdamW lr {:g} and weight decay {:g}, evaluation every {} steps over {} batches.\n"
      "\n"
      "  ch05 train                writes {}/: config.yaml, metrics.jsonl, checkpoints/\n"
      "  scripts/run.sh ch05       trains, then continues \"Every effort moves you\"\n"
      "\n"
      "Sections 5.3 and 5.4 use its latest checkpoint when there is one.\n",
      t.num_epochs, t.batch_size, t.learning_rate, t.weight_decay, t.eval_freq, t.eval_iter,
      t.output_dir);
  const auto metrics = fs::path(t.output_dir) / "metrics.jsonl";
  if (!fs::exists(metrics)) return;
  fmt::print("\nThe log of {}:\n", t.output_dir);  // C5-19 (without the samples)
  for (const auto& point : llmfs::read_metrics_jsonl(metrics)) {
    fmt::print("{}\n", llmfs::format_eval_line(point, t.log_label()));
  }
}

void print_needs_training(const Ch05Config& cfg) {
  fmt::print("(no trained model in {}: run `ch05 train` first; this uses the model of 5.2)\n",
             cfg.train.output_dir);
}

void section_5_3(Narration& n) {
  const auto& trained = n.trained_model();
  if (!trained) return print_needs_training(n.cfg);
  const auto token_ids = llmfs::generate_text_simple(
      trained->model, n.ids("Every effort moves you"), 25, trained->model->config().context_length);
  fmt::print("Output text:\n {}\n", n.text(token_ids));  // C5-20: greedy, 25 tokens
}

void section_5_3_1(Narration&) {
  const auto next_token_logits = toy_logits();
  const auto probas = torch::softmax(next_token_logits, 0);
  const int64_t next_token_id = torch::argmax(probas).item<int64_t>();
  fmt::print("{}\n\n", kToyVocab[next_token_id]);  // C5-21: greedy

  torch::manual_seed(123);
  const int64_t sampled_id = llmfs::sample_multinomial(probas).item<int64_t>();
  fmt::print("{}\n\n", kToyVocab[sampled_id]);  // C5-22: one multinomial draw

  fmt::print("Temperature 1 (1,000 draws):\n");  // C5-23
  print_sampled_tokens(probas);
  for (const double temperature : {0.1, 5.0}) {  // C5-24, C5-25
    fmt::print("\nTemperature {:g} (1,000 draws):\n", temperature);
    print_sampled_tokens(llmfs::softmax_with_temperature(next_token_logits, temperature));
  }
}

void section_5_3_2(Narration&) {
  const auto next_token_logits = toy_logits();
  const int64_t top_k = 3;
  const auto [top_logits, top_pos] = torch::topk(next_token_logits, top_k);
  fmt::print("Top logits: {}\n", py_repr(top_logits));  // C5-26
  fmt::print("Top positions: {}\n\n", py_repr(top_pos));
  const auto new_logits = llmfs::top_k_logits(next_token_logits, top_k);
  fmt::print("{}\n\n", py_repr(new_logits));  // C5-27
  const auto topk_probas = torch::softmax(new_logits, 0);
  fmt::print("{}\n", py_repr(topk_probas));  // C5-28
}

void section_5_3_3(Narration& n) {
  const auto& trained = n.trained_model();
  if (!trained) return print_needs_training(n.cfg);
  torch::manual_seed(123);  // C5-29: top-k 25, temperature 1.4, 15 tokens
  const auto token_ids = llmfs::generate(trained->model, n.ids("Every effort moves you"), 15,
                                         trained->model->config().context_length,
                                         /*temperature=*/1.4, /*top_k=*/25);
  fmt::print("Output text:\n {}\n", n.text(token_ids));
}

// Parameter tensors of `a` equal to those of `b` with the same name.
int64_t equal_parameters(const llmfs::GPTModel& a, const llmfs::GPTModel& b) {
  const auto theirs = b->named_parameters();
  int64_t equal = 0;
  for (const auto& item : a->named_parameters()) {
    const auto* other = theirs.find(item.key());
    equal += other != nullptr && torch::equal(item.value(), *other) ? 1 : 0;
  }
  return equal;
}

void section_5_4(Narration& n) {
  llmfs::TempDir scratch("ch05-5.4");
  const auto& trained = n.trained_model();
  const llmfs::GPTModel model = trained ? trained->model : n.untrained_model();
  const auto& model_cfg = model->config();
  const auto count = static_cast<int64_t>(model->parameters().size());
  fmt::print("Model: {}\n\n",
             trained ? "the trained model of " + trained->source
                     : std::string("the untrained model of 5.1 (no `ch05 train` run yet)"));

  // The book's torch.save(model.state_dict(), "model.pth") and load_state_dict into a new model.
  const auto pth = scratch.path() / "model.pth";
  llmfs::save_weights(*model, pth, llmfs::WeightLayout::Book);
  fmt::print(
      "Saved the state dict as model.pth ({}), in the book's layout: Python's\n"
      "model.load_state_dict(torch.load(\"model.pth\")) reads it.\n",
      megabytes(fs::file_size(pth)));
  llmfs::GPTModel reloaded(model_cfg);
  llmfs::load_weights(reloaded, pth);
  reloaded->eval();
  fmt::print("Loaded into a new GPTModel: {} of {} parameter tensors equal.\n\n",
             equal_parameters(model, reloaded), count);

  // Model and optimizer together: the project's training checkpoint (the book's
  // model_and_optimizer.pth with model_state_dict and optimizer_state_dict).
  fs::path dir;
  if (trained) {
    dir = trained->source;
  } else {
    llmfs::AdamW optimizer(model->named_parameters(), {.lr = n.cfg.train.learning_rate,
                                                       .weight_decay = n.cfg.train.weight_decay});
    llmfs::TrainingCheckpoint checkpoint;
    checkpoint.model = llmfs::model_state_dict(*model);
    checkpoint.optimizer = optimizer.state_dict();  // no step taken: only the learning rate
    checkpoint.rng = llmfs::get_rng_states(torch::kCPU);
    checkpoint.config_yaml = n.config_yaml;
    dir = llmfs::save_checkpoint(scratch.path() / "checkpoints", checkpoint);
  }
  fmt::print("Model and optimizer as a training checkpoint{}:\n",
             trained ? fmt::format(" ({})", dir.filename().string()) : " (before any step)");
  for (const char* file : {llmfs::kModelFile, llmfs::kOptimizerFile, llmfs::kRngFile,
                           llmfs::kTrainerStateFile, "config.yaml"}) {
    if (fs::exists(dir / file))
      fmt::print("  {:<20} {:>10}\n", file, megabytes(fs::file_size(dir / file)));
  }
  const auto checkpoint = llmfs::load_checkpoint(dir);
  llmfs::GPTModel restored(model_cfg);
  llmfs::load_model_state_dict(*restored, checkpoint.model, (dir / llmfs::kModelFile).string());
  // The book's reload: a new AdamW with lr 0.0005 and weight decay 0.1, then its saved state.
  llmfs::AdamW optimizer(restored->named_parameters(), {.lr = 5e-4, .weight_decay = 0.1});
  optimizer.load_state_dict(checkpoint.optimizer, (dir / llmfs::kOptimizerFile).string());
  restored->train();
  fmt::print(
      "Restored into a new GPTModel and a new AdamW: {} of {} parameter tensors equal;\n"
      "the optimizer has taken {} step(s) and continues with lr {:g}.\n",
      equal_parameters(model, restored), count, optimizer.step_count(), optimizer.lr());
}

void section_5_5(Narration& n) {
  const auto found = llmfs::find_gpt2_weights(n.weights.empty() ? n.cfg.gpt2_weights : n.weights);
  std::optional<llmfs::TempDir> scratch;
  fs::path path;
  if (found) {
    path = *found;
    fmt::print("GPT-2 weights: {}\n\n", path.string());
  } else {
    // The same code path on a small randomly initialised GPT-2 in the Hugging Face layout.
    scratch.emplace("ch05-5.5");
    path = scratch->path() / "gpt2-random";
    llmfs::GPTConfig demo;
    demo.emb_dim = 64, demo.n_heads = 4, demo.n_layers = 2, demo.qkv_bias = true;
    torch::manual_seed(n.cfg.seed);
    llmfs::GPTModel random_model(demo);
    llmfs::save_hf_gpt2(*random_model, path);
    fmt::print(
        "No GPT-2 weights found (get them with `scripts/download_gpt2.sh 124M`, or pass\n"
        "--weights PATH). Showing the same steps on a small random GPT-2 saved in the Hugging\n"
        "Face layout (emb_dim 64, 2 layers), so the text below is noise.\n\n");
  }
  auto model = llmfs::load_model(path.string(), model_options(n.cfg, "--weights")).model;
  const auto& c = model->config();
  fmt::print(
      "Settings: {{'n_vocab': {}, 'n_ctx': {}, 'n_embd': {}, 'n_head': {}, 'n_layer': {}}}\n\n",
      c.vocab_size, c.context_length, c.emb_dim, c.n_heads, c.n_layers);  // C5-30
  fmt::print("{}\n", py_repr(model->tok_emb->weight.detach()));  // C5-32 (as a torch tensor)
  fmt::print("Token embedding weight tensor dimensions: ({}, {})\n\n",
             model->tok_emb->weight.size(0), model->tok_emb->weight.size(1));

  torch::manual_seed(123);  // C5-33
  const auto token_ids = llmfs::generate(model, n.ids("Every effort moves you"), 25,
                                         c.context_length, /*temperature=*/1.5, /*top_k=*/50);
  fmt::print("Output text:\n {}\n", n.text(token_ids));
}

int narrate(Narration& n, const std::string& only) {
  return llmfs::run_sections(
      {{"5.1.1", "Using GPT to generate text", [&] { section_5_1_1(n); }},
       {"5.1.2", "Calculating the text generation loss: cross entropy and perplexity",
        [&] { section_5_1_2(n); }},
       {"5.1.3", "Calculating the training and validation set losses", [&] { section_5_1_3(n); }},
       {"5.2", "Training an LLM", [&] { section_5_2(n); }},
       {"5.3", "Decoding strategies to control randomness", [&] { section_5_3(n); }},
       {"5.3.1", "Temperature scaling", [&] { section_5_3_1(n); }},
       {"5.3.2", "Top-k sampling", [&] { section_5_3_2(n); }},
       {"5.3.3", "Modifying the text generation function", [&] { section_5_3_3(n); }},
       {"5.4", "Loading and saving model weights", [&] { section_5_4(n); }},
       {"5.5", "Loading pretrained weights from OpenAI", [&] { section_5_5(n); }}},
      only);
}

// --- Subcommands ------------------------------------------------------------------------------

int run_generate(const Ch05Config& cfg, const llmfs::ModelFlags& model_flags,
                 const llmfs::GenerationFlags& flags) {
  const auto settings = llmfs::apply_generation_flags(cfg.generate, flags);  // fails before loading
  const auto prompt = flags.has_prompt() ? flags.prompt : cfg.prompt;
  auto loaded = llmfs::load_model(model_flags, model_options(cfg, ""));
  const auto out =
      llmfs::generate_text(loaded.model, *loaded.tokenizer, prompt, settings, loaded.source);
  fmt::print("{}\n", out.text);
  return 0;
}

int run_evaluate(const Ch05Config& cfg, const llmfs::ModelFlags& model_flags,
                 const std::string& input, std::optional<int64_t> batch_size_arg,
                 const std::string& device_arg) {
  const int64_t batch_size = batch_size_arg.value_or(cfg.evaluate_batch_size);
  if (batch_size < 1) llmfs::fail("--batch-size must be >= 1, got {}", batch_size);
  const auto device = llmfs::resolve_device(device_arg.empty() ? cfg.evaluate_device : device_arg);
  const auto text = llmfs::read_training_text(input);  // a path or a known data file name
  auto loaded = llmfs::load_model(model_flags, model_options(cfg, ""));
  loaded.model->to(device);
  const auto r = llmfs::evaluate_text_loss(loaded.model, *loaded.tokenizer, text, batch_size);
  if (r.tokens < 2) llmfs::fail("{}: {} token(s); evaluation needs at least 2", input, r.tokens);
  fmt::print("Model: {}\n", loaded.source);
  fmt::print("Text: {} ({} characters, {} tokens)\n", input, llmfs::utf8_length(text), r.tokens);
  fmt::print("Windows: {} of up to {} tokens (stride {}), batch size {}\n", r.windows, r.window,
             r.window, batch_size);
  fmt::print("Tokens evaluated: {}\n", r.evaluated);
  fmt::print("Loss: {:.4f}\n", r.loss);
  fmt::print("Perplexity: {:.2f}\n", llmfs::perplexity(r.loss));
  return 0;
}

int run_train(const Ch05Config& cfg, const std::string& resume, bool overwrite,
              const std::string& resolved_yaml) {
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  llmfs::PretrainCallbacks print;
  print.on_eval = [&](const llmfs::EvalPoint& p) {
    fmt::print("{}\n", llmfs::format_eval_line(p, cfg.train.log_label()));
    std::fflush(stdout);
  };
  print.on_sample = [](int64_t, const std::string& text) {
    fmt::print("{}\n", text);
    std::fflush(stdout);
  };
  const llmfs::PretrainOptions options{
      .resume = resume, .overwrite = overwrite, .sample = cfg.sample, .config_yaml = resolved_yaml};
  const auto result =
      llmfs::pretrain_gpt(cfg.model, cfg.train, cfg.data, tokenizer, options, print);
  if (llmfs::report_interrupted(
          result, "ch05 train --resume latest (and the same config and overrides)")) {
    return 130;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Chapter 5: Pretraining on unlabeled data"};
  llmfs::CommonOptions common;
  llmfs::add_common_options(app, common);
  std::string only_section, weights;
  app.add_option("--section", only_section, "Run one section, e.g. 5.3.1 (5.1: 5.1.1-5.1.3)");
  app.add_option("--weights", weights, "GPT-2 weights for 5.5 (.safetensors/.pth or HF folder)");

  auto* generate = app.add_subcommand("generate", "Continue a prompt with a trained model (5.3)");
  llmfs::ModelFlags generate_model;
  llmfs::add_model_flags(*generate, generate_model, "runs/ch05");
  llmfs::GenerationFlags generation_flags;
  llmfs::add_generation_flags(*generate, generation_flags);
  llmfs::add_common_options(*generate, common);

  auto* evaluate = app.add_subcommand("evaluate", "Loss and perplexity of a model on a text");
  llmfs::ModelFlags evaluate_model;
  llmfs::add_model_flags(*evaluate, evaluate_model, "runs/ch05");
  std::string input, device;
  std::optional<int64_t> batch_size;
  evaluate->add_option("--input", input, "UTF-8 text file (or a known data file name)")->required();
  evaluate->add_option("--batch-size", batch_size, "Windows per forward pass");
  evaluate->add_option("--device", device, "auto, cpu, cuda, cuda:N, mps");
  llmfs::add_common_options(*evaluate, common);

  auto* train = app.add_subcommand("train", "Pretrain on a text (5.2; runs/ch05 by default)");
  std::string resume;
  bool overwrite = false;
  train
      ->add_option("--resume", resume,
                   "Continue a run: latest (also without a value), a checkpoint folder or a run "
                   "folder")
      ->expected(0, 1)
      ->default_str("latest");
  train->add_flag("--overwrite", overwrite,
                  "Start over in an output folder that holds another run's checkpoints");
  llmfs::add_common_options(*train, common);

  if (const auto code = llmfs::parse_command_line(app, argc, argv)) return *code;

  return llmfs::run_main([&] {
    const auto cfg = llmfs::load_config<Ch05Config>(common, parse_ch05_config);
    if (train->parsed()) return run_train(cfg, resume, overwrite, common.resolved_yaml);
    if (generate->parsed()) return run_generate(cfg, generate_model, generation_flags);
    if (evaluate->parsed()) return run_evaluate(cfg, evaluate_model, input, batch_size, device);
    Narration narration(cfg, weights, common.resolved_yaml);
    return narrate(narration, only_section);
  });
}
