// Chapter 6: Finetuning for classification, with appendix E (LoRA).
//
// Narrates the chapter with the book's numbers (BOOK.md §7, §12): the SMS data and its balanced
// split (6.2), the loaders (6.3), the pretrained model (6.4, with OpenAI's weights), the new
// head (6.5), loss and accuracy (6.6), finetuning (6.7, the `train` subcommand) and the spam
// classifier (6.8), and appendix E's parameter counts. The subcommands are the chapter's tools:
//
//   ch06                                   narrate every section (--section 6.2: one)
//   ch06 --weights DIR                     6.4-6.6 with these GPT-2 weights (default: the
//                                          download cache ~/.cache/llmfs/gpt2/124M, if present)
//   ch06 prepare [--output DIR]            the balanced train/validation/test CSVs
//   ch06 train --config configs/ch06/<strategy>.yaml [--resume] [--overwrite] [key=value ...]
//   ch06 classify [--checkpoint RUN] (--text TEXT ... | --input FILE)
//   ch06 evaluate [--checkpoint RUN] [--split test]   accuracy, confusion matrix, P/R/F1
//   ch06 export [--checkpoint RUN] (--adapter DIR | --merged DIR)
//   ch06 compare --configs a.yaml b.yaml ... [--output DIR] [key=value ...]
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "llmfs/checkpoint/model_loader.h"
#include "llmfs/config/cli.h"
#include "llmfs/core/build_info.h"
#include "llmfs/core/data_files.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/repr.h"
#include "llmfs/core/sections.h"
#include "llmfs/core/utf8.h"
#include "llmfs/data/classification_data.h"
#include "llmfs/data/text_table.h"
#include "llmfs/finetune/classifier.h"
#include "llmfs/finetune/classifier_run.h"
#include "llmfs/finetune/compare.h"
#include "llmfs/finetune/lora.h"
#include "llmfs/generate/generate.h"
#include "llmfs/generate/text_ids.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/train/metrics.h"
#include "llmfs/train/plot.h"

namespace {

namespace fs = std::filesystem;
using llmfs::py_repr;

llmfs::ClassifierRunConfig parse_ch06_config(llmfs::ConfigNode node) {
  return llmfs::parse_classifier_run_config(node, llmfs::default_classifier_run_config());
}

// --- Narration helpers --------------------------------------------------------------------------

// pandas' repr of a Label/Text frame: head and tail rows, texts cut to 50 characters.
std::string cell(const std::string& text) {
  if (llmfs::utf8_length(text) <= 50) return text;
  return std::string(llmfs::utf8_slice(text, 0, 46)) + "...";
}

void print_frame(const std::vector<int64_t>& index, const std::vector<std::string>& labels,
                 const std::vector<std::string>& texts) {
  const size_t n = index.size();
  std::vector<size_t> rows;
  for (size_t i = 0; i < n; ++i) {
    if (i < 5 || i + 5 >= n) rows.push_back(i);
  }
  size_t wi = 0, wl = 5, wt = 4;
  for (const auto r : rows) {
    wi = std::max(wi, std::to_string(index[r]).size());
    wl = std::max(wl, labels[r].size());
    wt = std::max(wt, static_cast<size_t>(llmfs::utf8_length(cell(texts[r]))));
  }
  wi = std::max<size_t>(wi, 3);
  const auto pad = [](const std::string& s, size_t w) {
    const auto len = static_cast<size_t>(llmfs::utf8_length(s));
    return std::string(w > len ? w - len : 0, ' ') + s;
  };
  fmt::print("{} {} {}\n", std::string(wi, ' '), pad("Label", wl + 1), pad("Text", wt + 1));
  for (size_t k = 0; k < rows.size(); ++k) {
    const auto r = rows[k];
    if (k == 5 && n > 10) {
      fmt::print("{} {} {}\n", pad("...", wi), pad("...", wl + 1), pad("...", wt + 1));
    }
    fmt::print("{} {} {}\n", pad(std::to_string(index[r]), wi), pad(labels[r], wl + 1),
               pad(cell(texts[r]), wt + 1));
  }
  fmt::print("\n[{} rows x 2 columns]\n", n);
}

void print_counts(const std::vector<std::string>& classes, const std::vector<int64_t>& counts) {
  // pandas' value_counts(): names left-aligned, four spaces, counts right-aligned.
  size_t wn = 0, wc = 0;
  for (size_t c = 0; c < classes.size(); ++c) {
    wn = std::max(wn, classes[c].size());
    wc = std::max(wc, std::to_string(counts[c]).size());
  }
  fmt::print("Label\n");
  for (size_t c = 0; c < classes.size(); ++c) {
    fmt::print("{:<{}}    {:>{}}\n", classes[c], wn, counts[c], wc);
  }
  fmt::print("Name: count, dtype: int64\n");
}

std::vector<int64_t> class_counts(const std::vector<llmfs::LabeledText>& texts, size_t classes) {
  std::vector<int64_t> counts(classes, 0);
  for (const auto& t : texts) ++counts.at(static_cast<size_t>(t.label));
  return counts;
}

// What the sections share: the config, the tokenizer, the data and the model of 6.4-6.6.
class Narration {
 public:
  Narration(llmfs::ClassifierRunConfig config, std::string weights)
      : cfg(std::move(config)), weights_(std::move(weights)) {}

  const llmfs::ClassificationSplits& splits() {
    if (!splits_) splits_ = llmfs::prepare_classification_data(cfg.data);
    return *splits_;
  }

  /// The loaders of 6.3 (seed 123 first, as the book).
  const llmfs::ClassificationLoaders& loaders() {
    if (!loaders_) {
      loaders_.emplace(llmfs::make_classification_loaders(splits(), tokenizer, cfg.data,
                                                          cfg.train.batch_size, cfg.seed, 1024));
    }
    return *loaders_;
  }

  /// GPT-2 124M with OpenAI's weights when they are at hand (6.4), else nothing.
  std::optional<fs::path> weights() {
    return llmfs::find_gpt2_weights(weights_.empty() ? std::string() : weights_);
  }

  /// The model of 6.4-6.6: OpenAI's GPT-2 when at hand, else a small random GPT (the same
  /// steps on noise). Built once.
  llmfs::GPTModel& model() {
    if (model_.is_empty()) {
      if (const auto path = weights()) {
        model_ = llmfs::load_model(path->string(), {.what = "--weights"}).model;
        pretrained = true;
      } else {
        auto demo = llmfs::gpt2_config("124M");
        demo.emb_dim = 64, demo.n_heads = 4, demo.n_layers = 2, demo.qkv_bias = true;
        demo.drop_rate = 0.0;
        torch::manual_seed(static_cast<uint64_t>(cfg.seed));
        model_ = llmfs::GPTModel(demo);
      }
      model_->eval();
    }
    return model_;
  }

  void say_model() {
    model();
    if (pretrained) return;
    fmt::print(
        "(No GPT-2 weights found: get them with `scripts/download_gpt2.sh 124M`, or pass\n"
        "--weights PATH. These steps run on a small random GPT (emb_dim 64, 2 layers), so the\n"
        "numbers below are not the book's.)\n\n");
  }

  llmfs::ClassifierRunConfig cfg;
  llmfs::BPETokenizer tokenizer = llmfs::BPETokenizer::gpt2();
  bool pretrained = false;
  bool has_head = false;

 private:
  std::string weights_;
  std::optional<llmfs::ClassificationSplits> splits_;
  std::optional<llmfs::ClassificationLoaders> loaders_;
  llmfs::GPTModel model_{nullptr};
};

void section_6_2(Narration& n) {
  const auto table = llmfs::read_sms_collection(llmfs::input_file(n.cfg.data.file),
                                                n.cfg.data.read_mode);
  const auto label = table.column("Label"), text = table.column("Text");
  std::vector<int64_t> index;
  std::vector<std::string> labels, texts;
  for (size_t i = 0; i < table.rows.size(); ++i) {
    index.push_back(static_cast<int64_t>(i));
    labels.push_back(table.rows[i][label]);
    texts.push_back(table.rows[i][text]);
  }
  print_frame(index, labels, texts);  // C6-01
  fmt::print("\n");
  const auto all = llmfs::read_labeled_texts(n.cfg.data);
  const auto& classes = n.cfg.data.classes;
  print_counts(classes, class_counts(all, classes.size()));  // C6-02
  fmt::print("\n");
  const auto balanced = llmfs::balance_classes(all, static_cast<int64_t>(classes.size()),
                                               n.cfg.data.seed);
  print_counts(classes, class_counts(balanced, classes.size()));  // C6-03
  fmt::print("\n");
  index.clear(), labels.clear(), texts.clear();
  for (const auto& t : balanced) {
    index.push_back(t.row);
    labels.push_back(std::to_string(t.label));
    texts.push_back(t.text);
  }
  print_frame(index, labels, texts);  // C6-04: labels mapped to 0 / 1
  const auto& s = n.splits();
  fmt::print("\nSplit 70/10/20: {} training, {} validation, {} test rows ({})\n", s.train.size(),
             s.validation.size(), s.test.size(), "`ch06 prepare` writes them as CSV files");
}

void section_6_3(Narration& n) {
  const auto eot = n.tokenizer.encode("<|endoftext|>", {.allowed_special = {"<|endoftext|>"}});
  fmt::print("{}\n\n", py_repr(torch::tensor(eot)).substr(7, 7));  // C6-05: [50256]
  const auto& loaders = n.loaders();
  fmt::print("{}\n\n", loaders.max_length);  // C6-06
  torch::Tensor input, target;
  for (const auto& batch : loaders.train) input = batch.input, target = batch.target;
  fmt::print("Train loader:\nInput batch dimensions: {}\nLabel batch dimensions {}\n\n",
             py_repr(input.sizes()), py_repr(target.sizes()));  // C6-07
  fmt::print("{} training batches\n{} validation batches\n{} test batches\n",  // C6-08
             loaders.train.size(), loaders.validation.size(), loaders.test.size());
}

void section_6_4(Narration& n) {
  n.say_model();
  auto& model = n.model();
  const auto greedy = [&](const std::string& prompt, int64_t tokens) {
    const auto ids = llmfs::generate_text_simple(model, llmfs::text_to_token_ids(prompt, n.tokenizer),
                                                 tokens, model->config().context_length);
    return llmfs::token_ids_to_text(ids, n.tokenizer);
  };
  fmt::print("{}\n\n", greedy("Every effort moves you", 15));  // C6-09
  fmt::print("{}\n", greedy("Is the following text 'spam'? Answer with 'yes' or 'no': 'You are a "
                            "winner you have been specially selected to receive $1000 cash or a "
                            "$2000 award.'",
                            23));  // C6-10
}

void ensure_head(Narration& n) {
  if (n.has_head) return;
  auto& model = n.model();
  // §6.5: freeze, seed 123, a 2-class head, then the last block and final norm trainable.
  llmfs::replace_output_head(*model, static_cast<int64_t>(n.cfg.data.classes.size()), n.cfg.seed);
  llmfs::set_trainable(*model, "last_block");
  model->eval();
  n.has_head = true;
}

void section_6_5(Narration& n) {
  n.say_model();
  auto& model = n.model();
  fmt::print("Trainable parameters before: {}\n",
             llmfs::group_thousands(llmfs::count_trainable_parameters(*model)));
  ensure_head(n);
  fmt::print("Trainable parameters with the new head (last block, final norm, head): {}\n\n",
             llmfs::group_thousands(llmfs::count_trainable_parameters(*model)));
  const auto inputs = torch::tensor(n.tokenizer.encode("Do you have time")).unsqueeze(0);
  fmt::print("Inputs: {}\nInputs dimensions: {}\n\n", py_repr(inputs),
             py_repr(inputs.sizes()));  // C6-11
  torch::NoGradGuard no_grad;
  const auto outputs = model->forward(inputs);
  fmt::print("Outputs:\n {}\nOutputs dimensions: {}\n\n", py_repr(outputs),
             py_repr(outputs.sizes()));  // C6-12
  fmt::print("Last output token: {}\n", py_repr(outputs.select(1, -1)));  // C6-13
}

void section_6_6(Narration& n) {
  n.say_model();
  ensure_head(n);
  auto& model = n.model();
  torch::NoGradGuard no_grad;
  const auto inputs = torch::tensor(n.tokenizer.encode("Do you have time")).unsqueeze(0);
  const auto probas = torch::softmax(model->forward(inputs).select(1, -1), -1);
  fmt::print("Class label: {}\n\n", torch::argmax(probas).item<int64_t>());  // C6-14

  const auto& loaders = n.loaders();
  const llmfs::ClassifierHead head{"last", n.cfg.data.pad_token_id, torch::kCPU};
  const auto train = llmfs::batch_source(loaders.train);
  const auto val = llmfs::batch_source(loaders.validation);
  const auto test = llmfs::batch_source(loaders.test);
  torch::manual_seed(static_cast<uint64_t>(n.cfg.seed));  // C6-15: 10 batches per split
  const auto pct = [](const llmfs::AccuracyCount& a) { return a.accuracy() * 100; };
  fmt::print("Training accuracy: {:.2f}%\n", pct(llmfs::calc_accuracy_loader(*train, model, head, 10)));
  fmt::print("Validation accuracy: {:.2f}%\n", pct(llmfs::calc_accuracy_loader(*val, model, head, 10)));
  fmt::print("Test accuracy: {:.2f}%\n\n", pct(llmfs::calc_accuracy_loader(*test, model, head, 10)));
  const llmfs::LossFn<llmfs::Batch> loss = [&](const llmfs::Batch& b) {  // C6-16: no reseed
    return llmfs::calc_classification_loss_batch(model, b, head).loss;
  };
  fmt::print("Training loss: {:.3f}\n", llmfs::calc_loss_loader(*train, loss, 5));
  fmt::print("Validation loss: {:.3f}\n", llmfs::calc_loss_loader(*val, loss, 5));
  fmt::print("Test loss: {:.3f}\n", llmfs::calc_loss_loader(*test, loss, 5));
}

void section_6_7(Narration& n) {
  const auto& t = n.cfg.train;
  fmt::print(
      "Finetuning is its own command: the book's train_classifier_simple, {} epochs, batch size\n"
      "{}, AdamW lr {:g} and weight decay {:g}, evaluation every {} steps over {} batches, the\n"
      "last block, final norm and the new head trainable.\n"
      "\n"
      "  ch06 train                                 the book's run into {}/\n"
      "  ch06 train --config configs/ch06/lora.yaml appendix E (LoRA rank 16, alpha 16)\n"
      "  ch06 compare --configs configs/ch06/*.yaml every strategy, one table\n",
      t.num_epochs, t.batch_size, t.learning_rate, t.weight_decay, t.eval_freq, t.eval_iter,
      t.output_dir);
  const auto metrics = fs::path(t.output_dir) / "metrics.jsonl";
  if (!fs::exists(metrics)) return;
  fmt::print("\nThe log of {}:\n", t.output_dir);
  for (const auto& point : llmfs::read_metrics_jsonl(metrics)) {
    fmt::print("{}\n", llmfs::format_eval_line(point));
  }
}

void section_6_8(Narration& n) {
  const auto& run = n.cfg.train.output_dir;
  if (!llmfs::latest_run_checkpoint(run)) {
    fmt::print("(no finetuned classifier in {}: run `ch06 train` first)\n", run);
    return;
  }
  auto classifier = llmfs::load_classifier(run);
  const std::vector<std::string> texts = {
      "You are a winner you have been specially selected to receive $1000 cash or a $2000 award.",
      "Hey, just wanted to check if we're still on for dinner tonight? Let me know!"};
  const auto results = llmfs::classify_texts(classifier, texts);
  for (size_t i = 0; i < texts.size(); ++i) {
    // The book's classify_review: class 1 is "spam", otherwise "not spam" (C6-19, C6-20).
    fmt::print("{}\n", results[i].class_id == 1 ? "spam" : "not spam");
  }
}

void section_e(Narration& n) {
  // CE-05, CE-06: GPT-2 124M with qkv biases and the 2-class head, then LoRA r16 a16.
  auto config = llmfs::gpt2_config("124M");
  config.qkv_bias = true, config.drop_rate = 0.0;
  torch::manual_seed(static_cast<uint64_t>(n.cfg.seed));
  llmfs::GPTModel model(config);
  llmfs::replace_output_head(*model, 2, n.cfg.seed);
  llmfs::set_trainable(*model, "all");
  fmt::print("Total trainable parameters before: {}\n",
             llmfs::group_thousands(llmfs::count_trainable_parameters(*model)));
  llmfs::freeze_all(*model);
  fmt::print("Total trainable parameters after: {}\n",
             llmfs::group_thousands(llmfs::count_trainable_parameters(*model)));
  llmfs::LoRAConfig lora;  // rank 16, alpha 16, every linear layer
  const auto layers = llmfs::apply_lora(*model, lora);
  fmt::print("Total trainable LoRA parameters: {}\n",
             llmfs::group_thousands(llmfs::count_trainable_parameters(*model)));
  fmt::print("({} linear layers with adapters; B starts at zero, so the outputs are unchanged)\n",
             layers);
}

int narrate(Narration& n, const std::string& only) {
  return llmfs::run_sections(
      {{"6.2", "Preparing the dataset", [&] { section_6_2(n); }},
       {"6.3", "Creating data loaders", [&] { section_6_3(n); }},
       {"6.4", "Initializing a model with pretrained weights", [&] { section_6_4(n); }},
       {"6.5", "Adding a classification head", [&] { section_6_5(n); }},
       {"6.6", "Calculating the classification loss and accuracy", [&] { section_6_6(n); }},
       {"6.7", "Fine-tuning the model on supervised data", [&] { section_6_7(n); }},
       {"6.8", "Using the LLM as a spam classifier", [&] { section_6_8(n); }},
       {"E", "Appendix E: Parameter-efficient fine-tuning with LoRA", [&] { section_e(n); }}},
      only);
}

// --- Subcommands ------------------------------------------------------------------------------

int run_prepare(const llmfs::ClassifierRunConfig& cfg, const std::string& output) {
  const auto splits = llmfs::prepare_classification_data(cfg.data);
  const fs::path dir = output.empty() ? fs::path(cfg.train.output_dir) : fs::path(output);
  fs::create_directories(dir);
  llmfs::write_split_csvs(dir, splits);
  fmt::print("{}: train.csv ({} rows), validation.csv ({}), test.csv ({})\n", dir.string(),
             splits.train.size(), splits.validation.size(), splits.test.size());
  return 0;
}

llmfs::ClassifierCallbacks printing_callbacks() {
  llmfs::ClassifierCallbacks print;
  print.on_info = [](const std::string& m) { spdlog::info("{}", m); };
  print.on_initial_accuracy = [](const auto& tr, const auto& va, const auto& te) {
    spdlog::info("accuracy before finetuning: train {:.2f}%, validation {:.2f}%, test {:.2f}%",
                 tr.accuracy() * 100, va.accuracy() * 100, te.accuracy() * 100);
  };
  print.on_eval = [](const llmfs::EvalPoint& p) {
    fmt::print("{}\n", llmfs::format_eval_line(p));
    std::fflush(stdout);
  };
  print.on_epoch = [](int64_t, double tr, double va) {
    fmt::print("Training accuracy: {:.2f}% | Validation accuracy: {:.2f}%\n", tr * 100, va * 100);
    std::fflush(stdout);
  };
  return print;
}

int run_train(const llmfs::ClassifierRunConfig& cfg, const std::string& resume, bool overwrite,
              const std::string& resolved_yaml) {
  const auto result = llmfs::finetune_classifier(
      cfg, {.resume = resume, .overwrite = overwrite, .config_yaml = resolved_yaml},
      printing_callbacks());
  if (llmfs::report_interrupted(result.train, "ch06 train --resume latest")) return 130;
  fmt::print("Training completed in {:.2f} minutes.\n", result.seconds / 60.0);
  if (cfg.final_eval) {
    fmt::print("\nTraining accuracy: {:.2f}%\nValidation accuracy: {:.2f}%\nTest accuracy: {:.2f}%\n",
               result.train_accuracy.accuracy() * 100, result.val_accuracy.accuracy() * 100,
               result.test_accuracy.accuracy() * 100);  // C6-18
  }
  if (!result.train.history.val_losses().empty()) llmfs::plot_run_metrics(result.run_dir);
  return 0;
}

std::vector<std::string> read_lines(const std::string& path) {
  const auto text = llmfs::read_file(llmfs::input_file(path));
  llmfs::require_valid_utf8(text, path);
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

int run_classify(const std::string& checkpoint, const std::vector<std::string>& texts_arg,
                 const std::string& input) {
  auto texts = texts_arg;
  if (!input.empty()) {
    const auto lines = read_lines(input);
    texts.insert(texts.end(), lines.begin(), lines.end());
  }
  if (texts.empty()) llmfs::fail("classify: give --text TEXT or --input FILE");
  auto classifier = llmfs::load_classifier(checkpoint);
  constexpr size_t kBatch = 16;
  for (size_t i = 0; i < texts.size(); i += kBatch) {
    const std::vector<std::string> part(texts.begin() + i,
                                        texts.begin() + std::min(texts.size(), i + kBatch));
    for (const auto& r : llmfs::classify_texts(classifier, part)) {
      fmt::print("{}\t{:.4f}\n", r.label, r.probability);
    }
  }
  return 0;
}

int run_evaluate(const std::string& checkpoint, const std::string& split) {
  auto classifier = llmfs::load_classifier(checkpoint);
  const auto splits = llmfs::prepare_classification_data(classifier.data);
  const std::vector<std::pair<std::string, const std::vector<llmfs::LabeledText>*>> all = {
      {"train", &splits.train}, {"validation", &splits.validation}, {"test", &splits.test}};
  fmt::print("Classifier: {}\n", classifier.source);
  for (const auto& [name, texts] : all) {
    if (split != "all" && split != name) continue;
    auto dataset = std::make_shared<llmfs::ClassificationDataset>(
        *texts, *classifier.tokenizer, classifier.max_length, classifier.head.pad_token_id,
        classifier.model->config().context_length);
    const llmfs::DataLoader<> loader(dataset, llmfs::DataLoaderOptions(8));
    torch::NoGradGuard no_grad;
    const auto predictions =
        llmfs::collect_predictions(*llmfs::batch_source(loader), classifier.model, classifier.head);
    fmt::print("\n{} split ({} examples)\n", name, texts->size());
    fmt::print("{}", llmfs::format_classification_report(
                         llmfs::classification_report(predictions, classifier.classes)));
  }
  return 0;
}

int run_export(const std::string& checkpoint, const std::string& adapter,
               const std::string& merged) {
  auto classifier = llmfs::load_classifier(checkpoint);
  const fs::path from = classifier.source;
  if (!adapter.empty()) {
    const auto n = llmfs::export_adapter(classifier, from, adapter);
    fmt::print("{}: {} tensors ({} LoRA layers) and config.yaml\n", adapter, n,
               llmfs::count_lora_layers(*classifier.model));
  }
  if (!merged.empty()) {
    const auto layers = llmfs::count_lora_layers(*classifier.model);
    llmfs::export_merged(std::move(classifier), from, merged);
    fmt::print("{}: merged {} LoRA layers into the weights\n", merged, layers);
  }
  return 0;
}

int run_compare(const std::vector<std::string>& configs, const std::string& output,
                const llmfs::CommonOptions& common) {
  // compare runs several configs: --configs names them, overrides apply to each.
  llmfs::take_no_config(common, "compare",
                        "name the runs' configs with --configs A.yaml B.yaml ... (one run's: "
                        "`ch06 train --config FILE --print-config`)",
                        /*overrides=*/true);
  llmfs::CompareOptions options;
  options.output_dir = output;
  options.overrides = common.overrides;
  options.callbacks = printing_callbacks();
  const auto rows = llmfs::compare_strategies(configs, options, parse_ch06_config);
  fmt::print("\n{}", llmfs::format_compare_table(rows));
  fmt::print("\nWritten: {0}/compare.csv, {0}/compare.md\n", output);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Chapter 6: Finetuning for classification (and appendix E, LoRA)"};
  llmfs::CommonOptions common;
  llmfs::add_common_options(app, common);
  std::string only_section, weights;
  app.add_option("--section", only_section, "Run one section, e.g. 6.3 (E: appendix E)");
  app.add_option("--weights", weights, "GPT-2 weights for 6.4-6.6 (.safetensors or HF folder)");

  auto* prepare = app.add_subcommand("prepare", "Write the train/validation/test CSV files");
  std::string prepare_output;
  prepare->add_option("--output", prepare_output, "Folder (default: train.output_dir)");
  llmfs::add_common_options(*prepare, common);

  auto* train = app.add_subcommand("train", "Finetune a classifier (6.7; runs/ch06 by default)");
  std::string resume;
  bool overwrite = false;
  train->add_option("--resume", resume, "Continue a run: latest (also without a value) or a checkpoint")
      ->expected(0, 1)
      ->default_str("latest");
  train->add_flag("--overwrite", overwrite, "Start over in a folder that holds another run");
  llmfs::add_common_options(*train, common);

  const std::string run_help = "A run folder, checkpoint or adapter folder (default: train.output_dir)";
  auto* classify = app.add_subcommand("classify", "Label texts with a finetuned classifier (6.8)");
  std::string checkpoint;
  std::vector<std::string> texts;
  std::string input;
  classify->add_option("--checkpoint", checkpoint, run_help);
  classify->add_option("--text", texts, "A text to classify (repeatable)");
  classify->add_option("--input", input, "A UTF-8 file, one text per line");
  llmfs::add_common_options(*classify, common);

  auto* evaluate = app.add_subcommand("evaluate", "Accuracy, confusion matrix, precision/recall/F1");
  std::string split = "test";
  evaluate->add_option("--checkpoint", checkpoint, run_help);
  evaluate->add_option("--split", split, "train, validation, test or all")
      ->check(CLI::IsMember({"train", "validation", "test", "all"}));
  llmfs::add_common_options(*evaluate, common);

  auto* export_cmd = app.add_subcommand("export", "Adapter-only or merged checkpoint of a LoRA run");
  std::string adapter_dir, merged_dir;
  export_cmd->add_option("--checkpoint", checkpoint, run_help);
  export_cmd->add_option("--adapter", adapter_dir, "Write adapter.safetensors + config.yaml here");
  export_cmd->add_option("--merged", merged_dir, "Write a checkpoint with LoRA merged here");
  llmfs::add_common_options(*export_cmd, common);

  auto* compare = app.add_subcommand("compare", "Run several strategies and tabulate them");
  std::vector<std::string> configs;
  std::string compare_output = "runs/ch06-compare";
  compare->add_option("--configs", configs, "Config files, one run each")->required();
  compare->add_option("--output", compare_output, "Folder of the runs and the tables");
  llmfs::add_common_options(*compare, common);

  if (const auto code = llmfs::parse_command_line(app, argc, argv)) return *code;

  return llmfs::run_main([&] {
    if (compare->parsed()) return run_compare(configs, compare_output, common);
    const auto cfg = llmfs::load_config<llmfs::ClassifierRunConfig>(common, parse_ch06_config);
    const auto run = checkpoint.empty() ? cfg.train.output_dir : checkpoint;
    if (prepare->parsed()) return run_prepare(cfg, prepare_output);
    if (train->parsed()) return run_train(cfg, resume, overwrite, common.resolved_yaml);
    if (classify->parsed()) return run_classify(run, texts, input);
    if (evaluate->parsed()) return run_evaluate(run, split);
    if (export_cmd->parsed()) {
      if (adapter_dir.empty() && merged_dir.empty()) llmfs::fail("export: give --adapter DIR or --merged DIR");
      return run_export(run, adapter_dir, merged_dir);
    }
    Narration narration(cfg, weights);
    return narrate(narration, only_section);
  });
}
