// Chapter 7: Finetuning to follow instructions.
//
// Narrates the chapter with the book's numbers (BOOK.md §8): the instruction data and its prompt
// format (7.2), batching with the custom collate (7.3, 7.4), the pretrained 355M model (7.5,
// with OpenAI's weights), finetuning (7.6, the `finetune` subcommand), the test-set responses
// (7.7) and their evaluation (7.8). The subcommands are the chapter's tools:
//
//   ch07                                     narrate every section (--section 7.3: one)
//   ch07 --weights DIR                       7.5-7.6 with these weights (default: the download
//                                            cache ~/.cache/llmfs/gpt2/355M, if present)
//   ch07 prepare [--output DIR]              train/validation/test JSON files of the split
//   ch07 finetune [--config configs/ch07/sft.yaml] [--resume] [--overwrite] [key=value ...]
//   ch07 respond [--checkpoint RUN] [--output FILE]   answers to the test set (7.7)
//   ch07 evaluate [--responses FILE] [--checkpoint RUN] [--judge] [--judge-url URL]
//                 [--judge-model M] [--judge-api ollama|openai]   metrics, loss, LLM judge (7.8)
//   ch07 generate [--checkpoint RUN] --instruction TEXT [--input TEXT]
//   ch07 export [--checkpoint RUN] [--output FILE.pth]   the book's gpt2-medium355M-sft.pth
//   ch07 dpo [--config configs/ch07/dpo.yaml] [--policy RUN] [--reference RUN]   DPO (bonus)
//   ch07 chat [--checkpoint RUN] [--system TEXT]       talk to the model in the terminal
//   ch07 serve [--checkpoint RUN] [--host H] [--port P]   Ollama/OpenAI APIs and a chat page
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <filesystem>
#include <span>
#include <optional>
#include <string>
#include <vector>

#include "llmfs/chat/chat_engine.h"
#include "llmfs/chat/server.h"
#include "llmfs/chat/terminal_chat.h"
#include "llmfs/checkpoint/model_loader.h"
#include "llmfs/config/cli.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/repr.h"
#include "llmfs/core/sections.h"
#include "llmfs/core/utf8.h"
#include "llmfs/data/instruction_data.h"
#include "llmfs/eval/judge.h"
#include "llmfs/finetune/base_model.h"
#include "llmfs/finetune/dpo.h"
#include "llmfs/finetune/instruct_run.h"
#include "llmfs/finetune/responses.h"
#include "llmfs/generate/generate.h"
#include "llmfs/model/parameter_count.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/train/loss.h"
#include "llmfs/train/metrics.h"
#include "llmfs/train/plot.h"
#include "llmfs/train/pretrain.h"

namespace {

namespace fs = std::filesystem;
using llmfs::py_repr;

// configs/ch07.yaml: the finetuning run's sections, and chat: / serve: for ch07 chat and serve.
struct Ch07Config : llmfs::InstructRunConfig {
  llmfs::ChatConfig chat;
  llmfs::ServeConfig serve;
};

Ch07Config parse_ch07_config(llmfs::ConfigNode node) {
  Ch07Config c;
  static_cast<llmfs::InstructRunConfig&>(c) =
      llmfs::parse_instruct_run_config(node, llmfs::default_instruct_run_config());
  c.chat = llmfs::parse_chat_config(node.child("chat"));
  c.serve = llmfs::parse_serve_config(node.child("serve"));
  return c;
}

void print_tensor(const torch::Tensor& t) { fmt::print("{}\n", py_repr(t)); }

// --- Narration ---------------------------------------------------------------------------------

class Narration {
 public:
  Narration(llmfs::InstructRunConfig config, std::string weights)
      : cfg(std::move(config)), weights_(std::move(weights)) {}

  const llmfs::InstructionSplits& splits() {
    if (!splits_) splits_ = llmfs::prepare_instruction_data(cfg.data);
    return *splits_;
  }

  const llmfs::InstructionLoaders& loaders() {
    if (!loaders_) {
      loaders_.emplace(llmfs::make_instruction_loaders(splits(), tokenizer, cfg.data,
                                                       cfg.train.batch_size, cfg.seed, 1024));
    }
    return *loaders_;
  }

  /// GPT-2 355M with OpenAI's weights (7.5), when at hand.
  llmfs::GPTModel* model() {
    if (model_.is_empty()) {
      const auto path = llmfs::find_gpt2_weights(weights_, "355M");
      if (!path) return nullptr;
      model_ = llmfs::load_base_model(path->string(), cfg.model, cfg.tokenizer, cfg.seed).model;
      model_->eval();
    }
    return &model_;
  }

  void say_no_model() const {
    fmt::print(
        "(No GPT-2 355M weights found: get them with `scripts/download_gpt2.sh 355M`, or pass\n"
        "--weights PATH. What needs the pretrained model is skipped.)\n");
  }

  llmfs::InstructRunConfig cfg;
  llmfs::BPETokenizer tokenizer = llmfs::BPETokenizer::gpt2();

 private:
  std::string weights_;
  std::optional<llmfs::InstructionSplits> splits_;
  std::optional<llmfs::InstructionLoaders> loaders_;
  llmfs::GPTModel model_{nullptr};
};

void section_7_2(Narration& n) {
  const auto data = llmfs::read_instruction_entries(n.cfg.data);
  fmt::print("Number of entries: {}\n\n", data.size());  // C7-01
  if (data.size() > 999) {
    fmt::print("Example entry:\n {}\n\n", llmfs::py_repr(data[50], n.cfg.data));           // C7-02
    fmt::print("Another example entry:\n {}\n\n", llmfs::py_repr(data[999], n.cfg.data));  // C7-03
    for (const auto i : {50, 999}) {  // C7-04, C7-05
      fmt::print("{}{}\n\n", llmfs::format_input(data[i], n.cfg.data.prompt_style),
                 llmfs::format_response(data[i], n.cfg.data.prompt_style));
    }
  }
  const auto& s = n.splits();
  fmt::print("Training set length: {}\nValidation set length: {}\nTest set length: {}\n",
             s.train.size(), s.validation.size(), s.test.size());  // C7-06
}

void section_7_3(Narration& n) {
  const auto eot = n.tokenizer.encode("<|endoftext|>", {.allowed_special = {"<|endoftext|>"}});
  fmt::print("{}\n\n", py_repr(torch::tensor(eot)).substr(7, 7));  // C7-07: [50256]
  const std::vector<std::vector<int64_t>> toy = {{0, 1, 2, 3, 4}, {5, 6}, {7, 8, 9}};
  print_tensor(llmfs::custom_collate_draft_1(toy));  // C7-08
  fmt::print("\n");
  const auto draft2 = llmfs::custom_collate_draft_2(toy);  // C7-09
  print_tensor(draft2.input);
  print_tensor(draft2.target);
  fmt::print("\n");
  const auto final_batch = llmfs::instruction_collate(toy);  // C7-10
  print_tensor(final_batch.input);
  print_tensor(final_batch.target);
  fmt::print("\n");
  // C7-11 … C7-13: the book's logits; -100 targets add nothing.
  const auto logits_1 = torch::tensor({{-1.0, 1.0}, {-0.5, 1.5}});
  const auto targets_1 = torch::tensor({0, 1}, torch::kLong);
  const auto loss_1 = llmfs::lm_loss(logits_1, targets_1);
  print_tensor(loss_1);
  const auto logits_2 = torch::tensor({{-1.0, 1.0}, {-0.5, 1.5}, {-0.5, 1.5}});
  print_tensor(llmfs::lm_loss(logits_2, torch::tensor({0, 1, 1}, torch::kLong)));
  const auto loss_3 = llmfs::lm_loss(logits_2, torch::tensor({0, 1, -100}, torch::kLong));
  print_tensor(loss_3);
  fmt::print("loss_1 == loss_3: {}\n", py_repr(loss_1 == loss_3));
}

void section_7_4(Narration& n) {
  const auto& loaders = n.loaders();
  fmt::print("Train loader:\n");  // C7-14
  torch::Tensor input, target;
  for (const auto& batch : loaders.train) {
    fmt::print("{} {}\n", py_repr(batch.input.sizes()), py_repr(batch.target.sizes()));
    input = batch.input, target = batch.target;
  }
  fmt::print("\n");
  print_tensor(input[0]);  // C7-15
  fmt::print("\n");
  print_tensor(target[0]);  // C7-16
}

void section_7_5(Narration& n) {
  const auto& val0 = n.splits().validation.front();
  const auto prompt = llmfs::format_input(val0, n.cfg.data.prompt_style);
  fmt::print("{}\n\n", prompt);  // C7-17
  auto* model = n.model();
  if (model == nullptr) return n.say_no_model();
  llmfs::GenerationConfig greedy;
  greedy.max_new_tokens = 35;
  greedy.stop_at_eos = true;
  const auto generated = llmfs::generate_text(*model, n.tokenizer, prompt, greedy, "gpt2:355M");
  const auto rest = llmfs::utf8_slice(generated.text, llmfs::utf8_length(prompt),
                                      llmfs::utf8_length(generated.text));
  fmt::print("{}\n", llmfs::py_strip(rest));  // C7-18
}

void section_7_6(Narration& n) {
  if (auto* model = n.model()) {
    auto& m = *model;
    const auto train = llmfs::batch_source(n.loaders().train);
    const auto val = llmfs::batch_source(n.loaders().validation);
    const llmfs::LossFn<llmfs::Batch> loss = [&](const llmfs::Batch& b) {
      return llmfs::calc_loss_batch(b.input, b.target, m, torch::kCPU);
    };
    torch::manual_seed(static_cast<uint64_t>(n.cfg.seed));  // C7-19
    torch::NoGradGuard no_grad;
    fmt::print("Training loss: {}\n", llmfs::py_float(llmfs::calc_loss_loader(*train, loss, 5)));
    fmt::print("Validation loss: {}\n\n", llmfs::py_float(llmfs::calc_loss_loader(*val, loss, 5)));
  } else {
    n.say_no_model();
    fmt::print("\n");
  }
  const auto& t = n.cfg.train;
  fmt::print(
      "Finetuning is its own command: the book's train_model_simple, {} epochs, batch size {},\n"
      "AdamW lr {:g} and weight decay {:g}, evaluation every {} steps over {} batches, every\n"
      "parameter trainable, a greedy sample of validation entry 0 after each epoch.\n"
      "\n"
      "  ch07 finetune                                the book's run into {}/\n"
      "  ch07 finetune --config configs/ch07/lora.yaml  LoRA adapters (exercise 7.4)\n",
      t.num_epochs, t.batch_size, t.learning_rate, t.weight_decay, t.eval_freq, t.eval_iter,
      t.output_dir);
  const auto metrics = fs::path(t.output_dir) / "metrics.jsonl";
  if (!fs::exists(metrics)) return;
  fmt::print("\nThe log of {}:\n", t.output_dir);
  for (const auto& point : llmfs::read_metrics_jsonl(metrics)) {
    fmt::print("{}\n", llmfs::format_eval_line(point));
  }
}

void print_response(const llmfs::InstructionEntry& entry, const std::string& response,
                    llmfs::PromptStyle style) {
  // The book's loop over test_data[:3] (C7-21).
  fmt::print("{}\n\nCorrect response:\n>> {}\n\nModel response:\n>> {}\n{}\n",
             llmfs::format_input(entry, style), entry.output, response, std::string(37, '-'));
}

void section_7_7(Narration& n) {
  const auto file = llmfs::responses_path(n.cfg);
  if (!fs::exists(file)) {
    fmt::print(
        "(no responses in {}: run `ch07 finetune`, then `ch07 respond`, which answers the {} test\n"
        "entries greedily, up to 256 new tokens, stopping at <|endoftext|>)\n",
        file.string(), n.splits().test.size());
    return;
  }
  const auto responses = llmfs::read_responses(file, n.cfg.data);
  for (size_t i = 0; i < std::min<size_t>(3, responses.size()); ++i) {
    print_response(responses[i].entry, responses[i].response, n.cfg.data.prompt_style);
  }
  if (!responses.empty()) {  // C7-22
    auto entry = responses[0].entry;
    fmt::print("\n{}\n", llmfs::py_repr(entry, n.cfg.data));
  }
}

void print_metrics(const llmfs::TextMetrics& m) {
  fmt::print("Exact match: {:.2f}%\nWord F1: {:.2f}%\nROUGE-L: {:.2f}%\n", m.exact_match * 100,
             m.token_f1 * 100, m.rouge_l * 100);
}

void section_7_8(Narration& n) {
  const auto file = llmfs::responses_path(n.cfg);
  if (!fs::exists(file)) {
    fmt::print("(no responses in {} yet: `ch07 respond` writes them)\n\n", file.string());
  } else {
    const auto responses = llmfs::read_responses(file, n.cfg.data);
    fmt::print("Offline metrics of {} responses against the references:\n", responses.size());
    print_metrics(llmfs::response_metrics(responses));
    fmt::print("\n");
  }
  fmt::print(
      "The book's judge is Llama 3 served by Ollama ({}). With a server running:\n"
      "  ch07 evaluate --judge                                 Ollama's /api/chat\n"
      "  ch07 evaluate --judge-api openai --judge-model gpt-4o-mini   (key in $OPENAI_API_KEY)\n",
      n.cfg.judge.endpoint());
}

// The DPO notebook's walk through its data and loss (BOOK.md §9.3, §9.4), weight-independent.
void section_dpo(Narration& n) {
  auto config = llmfs::default_preference_data_config();
  const auto entries = llmfs::read_instruction_entries(config.data);
  fmt::print("Number of entries: {}\n\n", entries.size());  // CP-01
  const auto splits = llmfs::prepare_preference_data(config);
  fmt::print("Training set length: {}\nValidation set length: {}\nTest set length: {}\n\n",
             splits.train.size(), splits.validation.size(), splits.test.size());  // CP-07
  // The example batch: entries 0 and 1 (CP-08 … CP-18).
  const auto pairs = llmfs::preference_pairs({entries.at(0), entries.at(1)}, config);
  const llmfs::PreferenceDataset dataset(pairs, n.tokenizer);
  const auto batch = llmfs::preference_collate(dataset.examples(), {.allowed_max_length = 1024});
  fmt::print("batch.keys: dict_keys(['prompt', 'chosen', 'rejected', 'rejected_mask', "
             "'chosen_mask'])\n\n");  // CP-09
  for (const auto& p : batch.prompt) print_tensor(p);  // CP-10
  fmt::print("\n");
  print_tensor(batch.chosen);  // CP-11
  fmt::print("\n");
  const auto decode = [&](const torch::Tensor& ids) {
    const auto flat = ids.contiguous();
    return n.tokenizer.decode(
        std::span<const int64_t>(flat.data_ptr<int64_t>(), static_cast<size_t>(flat.numel())));
  };
  fmt::print("{}\n\n{}\n\n{}\n\n", decode(batch.prompt[0]), decode(batch.chosen[0]),
             decode(batch.rejected[0]));  // CP-12, CP-13, CP-14
  fmt::print("chosen inputs: {}\nchosen mask:   {}\n\n", py_repr(batch.chosen[0].sizes()),
             py_repr(batch.chosen_mask[0].sizes()));  // CP-15
  print_tensor(batch.chosen_mask[0]);  // CP-16
  fmt::print("\n{}\n\n{}\n\n",  // CP-17, CP-18
             decode(batch.chosen[0].masked_select(batch.chosen_mask[0])),
             decode(batch.rejected[0].masked_select(batch.rejected_mask[0])));
  // CP-22, CP-23: the gather behind the log-probabilities equals cross entropy.
  const auto logits = torch::tensor({{2.0f, 1.0f, 0.1f}, {0.5f, 2.5f, 0.3f}});
  const auto targets = torch::tensor({0L, 2L});
  const auto gathered = -torch::log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).mean();
  fmt::print("{} {}\n", py_repr(gathered),
             py_repr(torch::nn::functional::cross_entropy(logits, targets)));
  print_tensor(torch::tensor({{1.0f, 2.0f}, {3.0f, 4.0f}})
                   .gather(-1, torch::tensor({{1L, 1L}, {0L, 1L}})));
  // CP-24: a model against itself scores ln 2 and no reward, whatever its weights.
  auto shape = llmfs::gpt2_config("124M");
  shape.emb_dim = 64, shape.n_heads = 4, shape.n_layers = 2, shape.drop_rate = 0.0;
  torch::manual_seed(static_cast<uint64_t>(n.cfg.seed));
  llmfs::GPTModel model(shape);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto out = llmfs::dpo_batch_loss(model, {model, model}, batch, 0.1);
  fmt::print("\n({}, {}, {})\n", py_repr(out.loss), py_repr(out.metrics.at("chosen_reward")),
             py_repr(out.metrics.at("rejected_reward")));
}

// Building a conversational AI on the finetuned model: how a multi-turn history becomes the
// prompt (ch07 chat and ch07 serve render it this way), and what is left out when it no
// longer fits the context.
void section_chat(Narration& n) {
  const std::vector<llmfs::ChatMessage> history = {
      {"user", "Rewrite the sentence using a simile.\n\nThe car is very fast."},
      {"assistant", "The car is as fast as lightning."},
      {"user", "What type of cloud is typically associated with thunderstorms?"}};
  for (const auto format : {llmfs::ChatFormat::kAlpaca, llmfs::ChatFormat::kPhi3}) {
    const auto prompt = llmfs::render_chat(history, format);
    fmt::print("A conversation of {} messages in the {} format ({} tokens); the model answers "
               "after the last line, and its answer ends at any of {}:\n\n{}\n{}\n\n",
               history.size(), llmfs::chat_format_name(format),
               n.tokenizer.encode(prompt).size(), py_repr(llmfs::turn_markers(format)), prompt,
               std::string(70, '-'));
  }
  // A model that reads 96 tokens, asked for 40 new ones: the first turn has to go.
  auto shape = llmfs::gpt2_config("124M");
  shape.context_length = 96, shape.emb_dim = 64, shape.n_heads = 4, shape.n_layers = 2;
  torch::manual_seed(static_cast<uint64_t>(n.cfg.seed));
  llmfs::InstructModel small;
  small.model = llmfs::GPTModel(shape);
  small.tokenizer = std::make_shared<llmfs::BPETokenizer>(n.tokenizer);
  small.finetuned = true;
  llmfs::ChatEngine engine(std::move(small), llmfs::ChatFormat::kAlpaca);
  const auto fitted = engine.chat_prompt(history, 40);
  fmt::print("With a context of {} tokens and 40 new tokens to generate, {} messages are left "
             "out (oldest first); the prompt keeps {} tokens:\n\n{}\n",
             shape.context_length, fitted.dropped_messages, fitted.ids.size(), fitted.text);
}

int narrate(Narration& n, const std::string& only) {
  return llmfs::run_sections(
      {{"7.2", "Preparing a dataset for supervised instruction finetuning", [&] { section_7_2(n); }},
       {"7.3", "Organizing data into training batches", [&] { section_7_3(n); }},
       {"7.4", "Creating data loaders for an instruction dataset", [&] { section_7_4(n); }},
       {"7.5", "Loading a pretrained LLM", [&] { section_7_5(n); }},
       {"7.6", "Finetuning the LLM on instruction data", [&] { section_7_6(n); }},
       {"7.7", "Extracting and saving responses", [&] { section_7_7(n); }},
       {"7.8", "Evaluating the finetuned LLM", [&] { section_7_8(n); }},
       {"DPO", "Bonus: preference tuning with DPO (the example batch and the loss)",
        [&] { section_dpo(n); }},
       {"chat", "Bonus: a conversation as the model's prompt (ch07 chat, ch07 serve)",
        [&] { section_chat(n); }}},
      only);
}

// --- Subcommands ------------------------------------------------------------------------------

int run_prepare(const llmfs::InstructRunConfig& cfg, const std::string& output) {
  const auto splits = llmfs::prepare_instruction_data(cfg.data);
  const fs::path dir = output.empty() ? fs::path(cfg.train.output_dir) : fs::path(output);
  fs::create_directories(dir);
  llmfs::write_instruction_entries(dir / "train.json", splits.train, cfg.data);
  llmfs::write_instruction_entries(dir / "validation.json", splits.validation, cfg.data);
  llmfs::write_instruction_entries(dir / "test.json", splits.test, cfg.data);
  fmt::print("{}: train.json ({} entries), validation.json ({}), test.json ({})\n", dir.string(),
             splits.train.size(), splits.validation.size(), splits.test.size());
  return 0;
}

int run_finetune(const llmfs::InstructRunConfig& cfg, const std::string& resume, bool overwrite,
                 const std::string& resolved_yaml) {
  llmfs::InstructCallbacks print;
  print.on_info = [](const std::string& m) { spdlog::info("{}", m); };
  print.on_initial_loss = [](double train, double val) {  // C7-19
    fmt::print("Training loss: {}\nValidation loss: {}\n", llmfs::py_float(train),
               llmfs::py_float(val));
    std::fflush(stdout);
  };
  print.on_eval = [](const llmfs::EvalPoint& p) {
    fmt::print("{}\n", llmfs::format_eval_line(p));
    std::fflush(stdout);
  };
  print.on_sample = [](int64_t, const std::string& text) {
    fmt::print("{}\n", text);
    std::fflush(stdout);
  };
  const auto result = llmfs::finetune_instruct(
      cfg, {.resume = resume, .overwrite = overwrite, .config_yaml = resolved_yaml}, print);
  if (llmfs::report_interrupted(result.train, "ch07 finetune --resume latest")) return 130;
  fmt::print("Training completed in {:.2f} minutes.\n", result.seconds / 60.0);
  llmfs::report_run_outputs(result.train, result.run_dir);
  return 0;
}

int run_respond(const llmfs::InstructRunConfig& cfg, const std::string& checkpoint,
                const std::string& output, bool restart) {
  auto model = llmfs::load_instruct_model(checkpoint, cfg.train.output_dir);
  const auto splits = llmfs::prepare_instruction_data(cfg.data);
  auto entries = llmfs::select_split(splits, cfg.responses.split);
  const fs::path file = output.empty() ? llmfs::responses_path(cfg) : fs::path(output);
  spdlog::info("{}: answering {} {} entries into {}", model.source, entries.size(),
               cfg.responses.split, file.string());
  const auto result = llmfs::generate_responses(
      model, std::move(entries), cfg.generate, {.file = file, .data = cfg.data, .resume = !restart},
      [&](size_t i, const llmfs::InstructionEntry& entry, bool generated) {
        if (i < 3 && generated) {
          print_response(entry, *llmfs::extra_string(entry, llmfs::kModelResponseKey),
                         model.style);
        }
      });
  if (result.kept > 0) spdlog::info("{} responses were already in {}", result.kept, file.string());
  fmt::print("{} responses written to {} ({} generated, {:.1f} s, {:.1f} tokens/s)\n",
             result.entries.size(), file.string(), result.generated, result.seconds,
             result.seconds > 0 ? static_cast<double>(result.new_tokens) / result.seconds : 0.0);
  return 0;
}

struct JudgeFlags {
  bool judge = false;
  std::string url, model, api;
};

int run_evaluate(llmfs::InstructRunConfig cfg, const std::string& responses_arg,
                 const std::string& checkpoint, JudgeFlags flags) {
  const fs::path file = responses_arg.empty() ? llmfs::responses_path(cfg) : fs::path(responses_arg);
  if (!fs::exists(file)) {
    llmfs::fail("--responses: {}: no such file (`ch07 respond` writes it)", file.string());
  }
  const auto responses = llmfs::read_responses(file, cfg.data);
  llmfs::ResponseEvaluation evaluation;
  evaluation.metrics = llmfs::response_metrics(responses);
  fmt::print("{}: {} responses\n", file.string(), responses.size());
  print_metrics(evaluation.metrics);

  // The references' loss under the model, when there is one (named, or the run's).
  auto style = cfg.data.prompt_style;
  const bool have_run = !checkpoint.empty() || llmfs::latest_run_checkpoint(cfg.train.output_dir);
  if (have_run) {
    auto model = llmfs::load_instruct_model(checkpoint, cfg.train.output_dir);
    style = model.style;
    std::vector<llmfs::InstructionEntry> entries;
    for (const auto& r : responses) entries.push_back(r.entry);
    evaluation.reference =
        llmfs::reference_loss(model, entries, cfg.train.batch_size, cfg.generate.device);
    fmt::print("Reference loss: {:.4f} (perplexity {:.2f}) over {} response tokens of {}\n",
               evaluation.reference->loss, evaluation.reference->perplexity(),
               evaluation.reference->tokens, model.source);
  }

  // The book's judge (7.8).
  if (!flags.url.empty()) cfg.judge.url = flags.url;
  if (!flags.model.empty()) cfg.judge.model = flags.model;
  if (!flags.api.empty()) cfg.judge.api = flags.api;
  if (flags.judge || !flags.url.empty() || !flags.model.empty() || !flags.api.empty()) {
    const llmfs::Judge judge(cfg.judge);
    spdlog::info("judge: {} at {}", cfg.judge.model, cfg.judge.endpoint());
    const auto scores = llmfs::judge_responses(
        judge, llmfs::judge_items(responses, style),
        [](size_t, const std::string& reply, const std::optional<int64_t>& score) {
          if (!score) fmt::print("Could not convert score: {}\n", reply);
        });
    fmt::print("Number of scores: {} of {}\n", scores.parsed, responses.size());
    if (scores.parsed > 0) fmt::print("Average score: {:.2f}\n", scores.average);
    evaluation.judge = scores;
    evaluation.judge_model = cfg.judge.model;
    evaluation.judge_url = cfg.judge.endpoint();
  }
  const auto out = file.parent_path() / "evaluation.json";
  llmfs::write_file_atomic(out, llmfs::evaluation_json(evaluation, responses.size()));
  fmt::print("Written: {}\n", out.string());
  return 0;
}

int run_generate(const llmfs::InstructRunConfig& cfg, const std::string& checkpoint,
                 const std::string& instruction, const std::string& input,
                 const llmfs::GenerationFlags& flags) {
  auto model = llmfs::load_instruct_model(checkpoint, cfg.train.output_dir);
  llmfs::InstructionEntry entry;
  entry.instruction = instruction;
  entry.input = input;
  const auto config = llmfs::apply_generation_flags(cfg.generate, flags);
  fmt::print("{}\n", llmfs::generate_response(model, entry, config).response);
  return 0;
}

// The model ch07 chat and ch07 serve talk to, in the run's chat format, on generation's device
// and in its precision.
llmfs::ChatEngine chat_engine(const Ch07Config& cfg, const llmfs::GenerationConfig& generation,
                              const std::string& checkpoint, const std::string& system) {
  auto model = llmfs::load_instruct_model(checkpoint, cfg.train.output_dir);
  llmfs::prepare_for_generation(model.model, generation);
  const auto format = llmfs::resolve_chat_format(cfg.chat, model);
  return llmfs::ChatEngine(std::move(model), format, system.empty() ? cfg.chat.system : system);
}

int run_chat(const Ch07Config& cfg, const std::string& checkpoint,
             const std::string& system, const llmfs::GenerationFlags& flags) {
  const auto generation = llmfs::apply_generation_flags(cfg.generate, flags);
  auto engine = chat_engine(cfg, generation, checkpoint, system);
  return llmfs::run_terminal_chat(engine, generation, std::cin, std::cout, isatty(0) && isatty(1));
}

int run_serve(Ch07Config cfg, const std::string& checkpoint,
              const std::string& system, const std::string& host, int64_t port) {
  if (!host.empty()) cfg.serve.host = host;
  if (port >= 0) cfg.serve.port = port;
  auto engine = chat_engine(cfg, cfg.generate, checkpoint, system);
  llmfs::serve(engine, cfg.generate, cfg.serve,
               {.on_listening =
                    [&](const std::string& url) {
                      fmt::print("Listening on {} (model {}, {} format, from {})\n", url,
                                 cfg.serve.model_name, llmfs::chat_format_name(engine.format()),
                                 engine.model().source);
                      std::fflush(stdout);
                    },
                .on_request = [](const std::string& line) { spdlog::info("{}", line); }});
  fmt::print("Server stopped.\n");
  return 0;
}

int run_export(const llmfs::InstructRunConfig& cfg, const std::string& checkpoint,
               const std::string& output) {
  const auto model = llmfs::load_instruct_model(checkpoint, cfg.train.output_dir);
  const fs::path file = output.empty()
                            ? fs::path(cfg.train.output_dir) / llmfs::sft_file_name(cfg.base_model)
                            : fs::path(output);
  llmfs::export_weights(model, file);
  fmt::print("Model saved as {}\n", file.string());  // C7-23
  return 0;
}

llmfs::DPORunConfig parse_dpo_config(llmfs::ConfigNode node) {
  return llmfs::parse_dpo_run_config(node, llmfs::default_dpo_run_config());
}

int run_dpo(llmfs::DPORunConfig cfg, const std::string& policy, const std::string& reference,
            const std::string& resume, bool overwrite, const std::string& resolved_yaml) {
  if (!policy.empty()) cfg.policy = policy;
  if (!reference.empty()) cfg.reference = reference;
  llmfs::DPOCallbacks print;
  print.on_info = [](const std::string& m) { spdlog::info("{}", m); };
  print.on_eval = [](const llmfs::EvalPoint& p) {
    fmt::print("{}\n", llmfs::format_dpo_eval_line(p));
    std::fflush(stdout);
  };
  print.on_sample = [](int64_t, const std::string& text) {
    fmt::print("{}\n", text);
    std::fflush(stdout);
  };
  print.on_compare = [&](const llmfs::InstructionEntry& entry, const std::string& before,
                         const std::string& after) {
    fmt::print("\n{}\n\nCorrect response:\n>> {}\n\nReference model response:\n>> {}\n\n"
               "Policy model response:\n>> {}\n\n{}\n",
               llmfs::format_input(entry, cfg.data.data.prompt_style), entry.output, before, after,
               std::string(70, '-'));
  };
  const auto result = llmfs::train_dpo(
      cfg, {.resume = resume, .overwrite = overwrite, .config_yaml = resolved_yaml}, print);
  if (llmfs::report_interrupted(result.train, "ch07 dpo --resume latest")) return 130;
  fmt::print("Training completed in {:.2f} minutes.\n", result.seconds / 60.0);
  llmfs::report_run_outputs(result.train, result.run_dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Chapter 7: Finetuning to follow instructions"};
  llmfs::CommonOptions common;
  llmfs::add_common_options(app, common);
  std::string only_section, weights;
  app.add_option("--section", only_section, "Run one section, e.g. 7.3");
  app.add_option("--weights", weights, "GPT-2 355M weights for 7.5-7.6 (.safetensors or HF folder)");

  auto* prepare = app.add_subcommand("prepare", "Write the train/validation/test JSON files");
  std::string prepare_output;
  prepare->add_option("--output", prepare_output, "Folder (default: train.output_dir)");
  llmfs::add_common_options(*prepare, common);

  auto* finetune = app.add_subcommand("finetune", "Instruction finetuning (7.6; runs/ch07)");
  std::string resume;
  bool overwrite = false;
  finetune->add_option("--resume", resume, "Continue a run: latest (also without a value) or a checkpoint")
      ->expected(0, 1)
      ->default_str("latest");
  finetune->add_flag("--overwrite", overwrite, "Start over in a folder that holds another run");
  llmfs::add_common_options(*finetune, common);

  const std::string run_help =
      "A ch07 run folder or checkpoint, or base weights (default: train.output_dir)";
  std::string checkpoint;
  auto* respond = app.add_subcommand("respond", "Answer the test entries (7.7)");
  std::string respond_output;
  bool restart = false;
  respond->add_option("--checkpoint", checkpoint, run_help);
  respond->add_option("--output", respond_output, "The responses file (default: responses.file)");
  respond->add_flag("--restart", restart, "Answer every entry again instead of continuing");
  llmfs::add_common_options(*respond, common);

  auto* evaluate = app.add_subcommand("evaluate", "Metrics, reference loss and the LLM judge (7.8)");
  std::string responses;
  JudgeFlags judge;
  evaluate->add_option("--responses", responses, "A responses file (default: responses.file)");
  evaluate->add_option("--checkpoint", checkpoint, "The model for the reference loss");
  evaluate->add_flag("--judge", judge.judge, "Score the responses with the judge: section's LLM");
  evaluate->add_option("--judge-url", judge.url, "The judge's endpoint (implies --judge)");
  evaluate->add_option("--judge-model", judge.model, "The judge's model (implies --judge)");
  evaluate->add_option("--judge-api", judge.api, "ollama or openai (implies --judge)")
      ->check(CLI::IsMember({"ollama", "openai"}));
  llmfs::add_common_options(*evaluate, common);

  auto* generate = app.add_subcommand("generate", "Answer one instruction");
  std::string instruction, input;
  llmfs::GenerationFlags generation;
  generate->add_option("--checkpoint", checkpoint, run_help);
  generate->add_option("--instruction,--prompt", instruction, "The instruction")->required();
  generate->add_option("--input", input, "Its input (optional)");
  llmfs::add_generation_flags(*generate, generation, {.prompt = false});
  llmfs::add_common_options(*generate, common);

  auto* export_cmd = app.add_subcommand(
      "export", "The finetuned weights as the book saves them (torch.save state dict, .pth)");
  std::string export_output;
  export_cmd->add_option("--checkpoint", checkpoint, run_help);
  export_cmd->add_option("--output", export_output,
                         "A .pth or .safetensors file (default: <train.output_dir>/"
                         "gpt2-medium355M-sft.pth for the book's base)");
  llmfs::add_common_options(*export_cmd, common);

  auto* dpo = app.add_subcommand(
      "dpo", "Align an instruction model with preference pairs (DPO; runs/ch07-dpo)");
  std::string policy, reference;
  dpo->add_option("--policy", policy, "The model to align (default: policy:, runs/ch07)");
  dpo->add_option("--reference", reference, "The frozen reference (default: the policy's start)");
  dpo->add_option("--resume", resume, "Continue a run: latest (also without a value) or a checkpoint")
      ->expected(0, 1)
      ->default_str("latest");
  dpo->add_flag("--overwrite", overwrite, "Start over in a folder that holds another run");
  llmfs::add_common_options(*dpo, common);

  auto* chat = app.add_subcommand("chat", "Talk to the model in the terminal (or through a pipe)");
  std::string system;
  llmfs::GenerationFlags chat_generation;
  chat->add_option("--checkpoint", checkpoint, run_help);
  chat->add_option("--system", system, "The system prompt (default: chat.system)");
  // What a chat reads comes from the terminal; it keeps its KV cache and ends turns at
  // <|endoftext|> always.
  llmfs::add_generation_flags(*chat, chat_generation,
                              {.prompt = false, .kv_cache = false, .stop_at_eos = false});
  llmfs::add_common_options(*chat, common);

  auto* serve = app.add_subcommand(
      "serve", "Ollama and OpenAI compatible HTTP server with a chat page (serve: section)");
  std::string host;
  int64_t port = -1;
  serve->add_option("--checkpoint", checkpoint, run_help);
  serve->add_option("--system", system, "The default system prompt (default: chat.system)");
  serve->add_option("--host", host, "Address to listen on (default: serve.host, 127.0.0.1)");
  serve->add_option("--port", port, "Port (default: serve.port, 11434; 0: a free one)")
      ->check(CLI::Range(int64_t{0}, int64_t{65535}));
  llmfs::add_common_options(*serve, common);

  if (const auto code = llmfs::parse_command_line(app, argc, argv)) return *code;

  return llmfs::run_main([&] {
    if (dpo->parsed()) {
      const auto dpo_cfg = llmfs::load_config<llmfs::DPORunConfig>(common, parse_dpo_config);
      return run_dpo(dpo_cfg, policy, reference, resume, overwrite, common.resolved_yaml);
    }
    const auto cfg = llmfs::load_config<Ch07Config>(common, parse_ch07_config);
    if (prepare->parsed()) return run_prepare(cfg, prepare_output);
    if (finetune->parsed()) return run_finetune(cfg, resume, overwrite, common.resolved_yaml);
    if (respond->parsed()) return run_respond(cfg, checkpoint, respond_output, restart);
    if (evaluate->parsed()) return run_evaluate(cfg, responses, checkpoint, judge);
    if (generate->parsed()) return run_generate(cfg, checkpoint, instruction, input, generation);
    if (export_cmd->parsed()) return run_export(cfg, checkpoint, export_output);
    if (chat->parsed()) return run_chat(cfg, checkpoint, system, chat_generation);
    if (serve->parsed()) return run_serve(cfg, checkpoint, system, host, port);
    Narration narration(cfg, weights);
    return narrate(narration, only_section);
  });
}
