// Chapter 6's finetuning run and the classifier's loading, export and use.
#include "llmfs/finetune/classifier_run.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <numeric>

#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/checkpoint/model_loader.h"
#include "llmfs/core/device.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/finetune/lora.h"
#include "llmfs/model/parameter_count.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"

namespace llmfs {

namespace fs = std::filesystem;

namespace {

// The top-level section finetune_classifier appends to the config it saves with a run: what the
// config alone does not say (the base model's shape, the padding length, its tokenizer).
constexpr const char* kEffective = "classifier_model";
constexpr const char* kAdapterFile = "adapter.safetensors";

// The run's config plus the classifier_model section.
std::string effective_yaml(const std::string& resolved, const GPTConfig& model,
                           int64_t max_length, const std::string& base_source,
                           const std::string& tokenizer_yaml) {
  std::string out = resolved;
  if (!out.empty() && out.back() != '\n') out += '\n';
  out += fmt::format("{}:  # written by the run: the model as trained\n", kEffective);
  out += "  model:\n" + gpt_config_yaml(model, "    ");
  out += fmt::format("  max_length: {}\n", max_length);
  out += fmt::format("  base_source: {}\n", YAML::Dump(YAML::Node(base_source)));
  if (!tokenizer_yaml.empty()) {
    out += "  tokenizer:\n";
    std::istringstream lines(tokenizer_yaml);
    for (std::string line; std::getline(lines, line);) out += "    " + line + "\n";
  }
  return out;
}

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

// What a saved run says about its classifier.
struct SavedClassifier {
  ClassifierRunConfig config;
  GPTConfig model;
  int64_t max_length = 0;
  std::shared_ptr<const Tokenizer> tokenizer;
};

SavedClassifier read_saved_classifier(const fs::path& dir) {
  const auto file = dir / "config.yaml";
  if (!fs::exists(file)) fail("{}: no config.yaml (not a classifier checkpoint)", dir.string());
  ConfigDocument document(file.string(), {});
  const auto root = document.root();
  if (!root.has(kEffective)) {
    fail("{}: not a classifier checkpoint (its config.yaml has no {} section; `ch06 train` "
         "writes them)",
         file.string(), kEffective);
  }
  SavedClassifier saved;
  saved.config = parse_classifier_run_config(root, default_classifier_run_config());
  auto eff = root.child(kEffective);
  saved.model = parse_gpt_config(eff.child("model"));
  eff.require("max_length", saved.max_length, at_least(int64_t{1}));
  std::string base_source;
  eff.read("base_source", base_source);
  if (eff.has("tokenizer")) {
    saved.tokenizer = make_tokenizer(parse_tokenizer_config(eff.child("tokenizer")));
  } else if (saved.config.base_model == "random") {
    saved.tokenizer = make_tokenizer(saved.config.tokenizer);
  } else {
    saved.tokenizer = std::make_shared<BPETokenizer>(BPETokenizer::gpt2());
  }
  return saved;
}

// A GPT of `saved.model` with the run's head and adapters (weights still random).
// The run's conversion (finetune_classifier): head; freezing and adapters; what trains.
void convert(GPTModelImpl& model, const ClassifierRunConfig& run) {
  replace_output_head(model, static_cast<int64_t>(run.data.classes.size()), run.seed);
  if (run.classifier.trainable == "lora") {
    freeze_all(model);
    apply_lora(model, run.classifier.lora);
  }
  set_trainable(model, run.classifier.trainable);
}

GPTModel build_classifier(const SavedClassifier& saved) {
  GPTModel model(saved.model);
  convert(*model, saved.config);
  return model;
}

ClassifierModel finish(GPTModel model, const SavedClassifier& saved, std::string source) {
  model->eval();
  ClassifierModel c;
  c.model = std::move(model);
  c.tokenizer = saved.tokenizer;
  c.classes = saved.config.data.classes;
  c.data = saved.config.data;
  c.head = ClassifierHead{saved.config.classifier.pooling, saved.config.data.pad_token_id,
                          torch::kCPU, saved.config.classifier.pooled_only};
  c.max_length = saved.max_length;
  c.source = std::move(source);
  return c;
}

}  // namespace

ClassifierRunConfig default_classifier_run_config() {
  ClassifierRunConfig c;
  c.model = gpt2_config("124M");
  c.model.drop_rate = 0.0;
  c.model.qkv_bias = true;
  c.train.num_epochs = 5;
  c.train.batch_size = 8;
  c.train.learning_rate = 5e-5;
  c.train.weight_decay = 0.1;
  c.train.eval_freq = 50;
  c.train.eval_iter = 5;
  c.train.output_dir = "runs/ch06";
  return c;
}

ClassifierRunConfig parse_classifier_run_config(ConfigNode root,
                                                const ClassifierRunConfig& defaults) {
  ClassifierRunConfig c = defaults;
  root.read("base_model", c.base_model);
  c.model = parse_gpt_config(root.child("model"), c.model);
  c.tokenizer = parse_tokenizer_config(root.child("tokenizer"));
  c.data = parse_classification_data_config(root.child("data"), c.data);
  c.classifier = parse_classifier_config(root.child("classifier"), c.classifier);
  c.train = parse_train_config(root.child("train"), c.train);
  c.seed = c.train.seed;
  root.read("initial_eval_batches", c.initial_eval_batches, at_least(int64_t{0}));
  root.read("final_eval", c.final_eval);
  if (c.data.max_length) {
    root.child("data").check(*c.data.max_length <= c.model.context_length || c.base_model != "random",
                             "max_length", "{} exceeds model.context_length ({})",
                             *c.data.max_length, c.model.context_length);
  }
  return c;
}

BaseModel load_base_model(const ClassifierRunConfig& config) {
  return load_base_model(config.base_model, config.model, config.tokenizer, config.seed);
}

ClassifierModel load_classifier(const std::string& name) {
  if (name.empty()) fail("--checkpoint: give a run folder, a checkpoint or an adapter folder");
  const fs::path path(name);
  if (!fs::exists(path)) fail("--checkpoint: {}: no such file or folder", name);
  if (fs::is_directory(path) && fs::exists(path / kAdapterFile)) {
    // Adapter only: the base model the config names, then the adapter's tensors over it.
    const auto saved = read_saved_classifier(path);
    auto run = saved.config;
    const auto base = load_base_model(run);
    if (base.model->config() != saved.model) {
      const auto& a = base.model->config();
      fail("{}: the adapter was trained on a model with emb_dim {} and {} layers, base_model {} "
           "has emb_dim {} and {} layers",
           path.string(), saved.model.emb_dim, saved.model.n_layers, base.source, a.emb_dim,
           a.n_layers);
    }
    auto model = base.model;
    convert(*model, run);
    auto state = model_state_dict(*model);
    const auto adapter_path = path / kAdapterFile;
    for (auto& [k, v] : read_tensor_file(adapter_path)) {
      if (!state.count(k)) {
        fail("{}: tensor '{}' is not part of this classifier (an adapter of another model?)",
             adapter_path.string(), k);
      }
      state[k] = v;
    }
    load_model_state_dict(*model, state, adapter_path.string());
    return finish(model, saved, path.string() + " (on " + base.source + ")");
  }
  fs::path checkpoint = path;
  if (!is_checkpoint_dir(path)) {
    const auto latest = latest_run_checkpoint(path);
    if (!latest) fail("--checkpoint: {}: no checkpoint there (run `ch06 train` first)", name);
    checkpoint = *latest;
  }
  const auto saved = read_saved_classifier(checkpoint);
  auto model = build_classifier(saved);
  const auto weights = checkpoint / kModelFile;
  load_model_state_dict(*model, read_tensor_file(weights), weights.string());
  return finish(model, saved, checkpoint.string());
}

int64_t export_adapter(const ClassifierModel& classifier, const fs::path& checkpoint,
                       const fs::path& dir) {
  auto tensors = adapter_state_dict(*classifier.model);
  // The head too, trained or not (a LoRA run freezes it under its own adapter): small, and the
  // adapter does not depend on redrawing it.
  for (const auto& p : classifier.model->out_head->named_parameters()) {
    tensors["out_head." + p.key()] = p.value().detach().to(torch::kCPU).clone();
  }
  if (tensors.empty()) fail("{}: nothing trainable to export", checkpoint.string());
  const fs::path tmp = dir.string() + ".tmp";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  write_tensor_file(tmp / kAdapterFile, tensors);
  write_file_atomic(tmp / "config.yaml", read_file(checkpoint / "config.yaml"));
  if (fs::exists(dir)) fs::remove_all(dir);
  fs::rename(tmp, dir);
  return static_cast<int64_t>(tensors.size());
}

void export_merged(ClassifierModel classifier, const fs::path& checkpoint, const fs::path& dir) {
  merge_lora(*classifier.model);
  // The saved config without adapters: the merged weights are a plain classifier.
  auto yaml = YAML::LoadFile((checkpoint / "config.yaml").string());
  yaml["classifier"]["trainable"] = "all";
  yaml["classifier"].remove("lora");
  const fs::path tmp = dir.string() + ".tmp";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  write_tensor_file(tmp / kModelFile, model_state_dict(*classifier.model));
  write_file_atomic(tmp / "config.yaml", YAML::Dump(yaml) + "\n");
  if (fs::exists(dir)) fs::remove_all(dir);
  fs::rename(tmp, dir);
}

std::vector<Classification> classify_texts(ClassifierModel& classifier,
                                           const std::vector<std::string>& texts) {
  std::vector<Classification> out;
  if (texts.empty()) return out;
  const int64_t context = classifier.model->config().context_length;
  const int64_t length = std::min(classifier.max_length, context);
  const int64_t pad = classifier.head.pad_token_id;
  std::vector<Example> examples;
  for (const auto& text : texts) {
    auto encoded = classifier.tokenizer->encode(text);  // the book's classify_review
    if (static_cast<int64_t>(encoded.size()) > length) encoded.resize(length);
    encoded.resize(length, pad);
    examples.push_back({torch::tensor(encoded, torch::kLong), torch::tensor(int64_t{0})});
  }
  // As the run's loaders batched: padded to max_length, or cut to the longest (trim_padding).
  const auto input = classifier.data.trim_padding
                         ? stack_trimmed(std::move(examples), pad).input
                         : stack_examples(std::move(examples)).input;
  torch::NoGradGuard no_grad;
  classifier.model->eval();
  torch::Tensor probs;
  const auto predicted = predict_classes(classifier.model, input, classifier.head, &probs);
  probs = probs.to(torch::kDouble).to(torch::kCPU).contiguous();
  for (int64_t i = 0; i < predicted.size(0); ++i) {
    Classification c;
    c.class_id = predicted[i].item<int64_t>();
    c.label = classifier.classes.at(c.class_id);
    const double* p = probs[i].data_ptr<double>();
    c.probabilities.assign(p, p + probs.size(1));
    c.probability = c.probabilities[c.class_id];
    out.push_back(std::move(c));
  }
  return out;
}

ClassifierRunResult finetune_classifier(const ClassifierRunConfig& config,
                                        const ClassifierRunOptions& options,
                                        const ClassifierCallbacks& callbacks) {
  const auto info = [&](const std::string& message) {
    if (callbacks.on_info) callbacks.on_info(message);
  };
  const bool resuming = !options.resume.empty();
  const fs::path run_dir(config.train.output_dir);
  TrainConfig train = config.train;  // under torchrun: this rank's device
  const auto group = join_data_parallel(train);
  const bool main_process = !group || group->is_main();
  fs::path resume_from;
  if (resuming) resume_from = resolve_checkpoint(options.resume, run_dir);
  else if (main_process) detail::prepare_output_dir(config.train, options.overwrite);  // refuse first

  // Data (the book's §6.2): read, balance, split; the CSVs beside the run.
  const auto splits = prepare_classification_data(config.data);
  info(fmt::format("data: {} training, {} validation, {} test examples; classes {}",
                   splits.train.size(), splits.validation.size(), splits.test.size(),
                   fmt::join(splits.classes, ", ")));

  // The base model (before the loaders, whose creation draws nothing), then the loaders.
  auto base = load_base_model(config);
  auto model = base.model;
  const auto device = resolve_device(train.device);
  const auto loaders =
      make_classification_loaders(splits, *base.tokenizer, config.data, config.train.batch_size,
                                  config.seed, model->config().context_length);
  info(fmt::format("padding length {}; {} / {} / {} batches of {}", loaders.max_length,
                   loaders.train.size(), loaders.validation.size(), loaders.test.size(),
                   config.train.batch_size));

  // The head (§6.5), the book's accuracy check (§6.6), then freezing or LoRA (appendix E).
  const auto num_classes = static_cast<int64_t>(splits.classes.size());
  replace_output_head(*model, num_classes, config.seed);
  model->to(device);
  const ClassifierHead head{config.classifier.pooling, config.data.pad_token_id, device,
                            config.classifier.pooled_only};
  const auto train_source = batch_source(loaders.train);
  const auto val_source = batch_source(loaders.validation);
  const auto test_source = batch_source(loaders.test);
  if (config.initial_eval_batches > 0 && !resuming) {
    torch::manual_seed(static_cast<uint64_t>(config.seed));
    torch::NoGradGuard no_grad;
    model->eval();
    const auto n = config.initial_eval_batches;
    const auto tr = calc_accuracy_loader(*train_source, model, head, n);
    const auto va = calc_accuracy_loader(*val_source, model, head, n);
    const auto te = calc_accuracy_loader(*test_source, model, head, n);
    if (callbacks.on_initial_accuracy) callbacks.on_initial_accuracy(tr, va, te);
  }
  ClassifierRunResult result;
  if (config.classifier.trainable == "lora") {
    freeze_all(*model);
    result.lora_layers = apply_lora(*model, config.classifier.lora);
  }
  set_trainable(*model, config.classifier.trainable);
  result.trainable_parameters = count_trainable_parameters(*model);
  result.total_parameters = count_parameters(*model);
  result.max_length = loaders.max_length;
  info(fmt::format("trainable parameters: {} of {} ({}{})", result.trainable_parameters,
                   result.total_parameters, config.classifier.trainable,
                   result.lora_layers > 0 ? fmt::format(", {} LoRA layers", result.lora_layers)
                                          : std::string()));

  // Training: the book's train_classifier_simple on the common trainer.
  const std::string saved_yaml = effective_yaml(options.config_yaml, model->config(),
                                                loaders.max_length, base.source,
                                                base.tokenizer_yaml);
  auto hooks = classifier_train_hooks(model, head, train_source, val_source,
                                      config.train.eval_iter, callbacks.on_epoch);
  hooks.on_eval = callbacks.on_eval;
  torch::manual_seed(static_cast<uint64_t>(config.seed));
  // Data parallel: each rank trains on its share; the accuracies above use whole splits.
  Trainer<> trainer(model.ptr(), train, batch_source(loaders.train, group.get(), train),
                    batch_source(loaders.validation, group.get(), train), hooks,
                    {.config_yaml = saved_yaml,
                     .overwrite = options.overwrite,
                     .process_group = group,
                     .handle_signals = options.handle_signals,
                     .interactive_progress = options.interactive_progress});
  if (resuming) trainer.resume(resume_from);
  if (main_process) {
    fs::create_directories(run_dir);
    write_split_csvs(run_dir, splits);
  }
  const auto start = std::chrono::steady_clock::now();
  result.train = trainer.fit();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.run_dir = run_dir;
  const double step_seconds = sum(result.train.step_seconds);
  if (step_seconds > 0) {
    result.examples_per_s = static_cast<double>(result.train.steps_tokens) / step_seconds;
    result.tokens_per_s = result.examples_per_s * static_cast<double>(loaders.max_length);
  }
  if (result.train.interrupted || !main_process) return result;  // rank 0 reports

  // The accuracies on whole splits (§6.7, C6-18).
  if (config.final_eval) {
    torch::NoGradGuard no_grad;
    model->eval();
    result.train_accuracy = calc_accuracy_loader(*train_source, model, head);
    result.val_accuracy = calc_accuracy_loader(*val_source, model, head);
    result.test_accuracy = calc_accuracy_loader(*test_source, model, head);
  }
  write_file_atomic(run_dir / "results.json", classifier_results_json(config, result));
  return result;
}

std::string classifier_results_json(const ClassifierRunConfig& config,
                                    const ClassifierRunResult& result) {
  nlohmann::json j;
  j["trainable"] = config.classifier.trainable;
  j["pooling"] = config.classifier.pooling;
  j["base_model"] = config.base_model;
  j["trainable_parameters"] = result.trainable_parameters;
  j["total_parameters"] = result.total_parameters;
  j["lora_layers"] = result.lora_layers;
  j["max_length"] = result.max_length;
  j["batch_size"] = config.train.batch_size;
  // Whole-split accuracies only when measured (final_eval); absent otherwise, never a fake 0.
  if (config.final_eval) {
    const auto put = [&j](const std::string& split, const AccuracyCount& a) {
      j[split + "_accuracy"] = a.accuracy();
      j[split + "_correct"] = a.correct;
      j[split + "_total"] = a.total;
    };
    put("train", result.train_accuracy);
    put("val", result.val_accuracy);
    put("test", result.test_accuracy);
  }
  j["seconds"] = result.seconds;
  j["tokens_per_s"] = result.tokens_per_s;
  j["examples_per_s"] = result.examples_per_s;
  j["steps"] = result.train.global_step + 1;
  return j.dump(2) + "\n";
}

}  // namespace llmfs
