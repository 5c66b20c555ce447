// Chapter 7's instruction finetuning run and the loading of its models.
#include "llmfs/finetune/instruct_run.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <map>
#include <numeric>

#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/checkpoint/model_loader.h"
#include "llmfs/checkpoint/pth.h"
#include "llmfs/core/device.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/finetune/base_model.h"
#include "llmfs/finetune/classifier.h"
#include "llmfs/model/parameter_count.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/train/pretrain.h"

namespace llmfs {

namespace fs = std::filesystem;

namespace {

void check_pad_id(const InstructionDataConfig& data, const Tokenizer& tokenizer,
                  const GPTConfig& model) {
  if (data.pad_token_id < model.vocab_size) return;
  const auto eot = tokenizer.special_token_id(kEndOfText);
  fail("data.pad_token_id: {} is outside the model's vocabulary of {} tokens ({}){}",
       data.pad_token_id, model.vocab_size, tokenizer.name(),
       eot ? fmt::format("; its end-of-text id is {}", *eot) : std::string());
}

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

}  // namespace

InstructRunConfig default_instruct_run_config() {
  InstructRunConfig c;
  c.model = gpt2_config("355M");
  c.model.drop_rate = 0.0;
  c.model.qkv_bias = true;
  c.train.num_epochs = 2;
  c.train.batch_size = 8;
  c.train.learning_rate = 5e-5;
  c.train.weight_decay = 0.1;
  c.train.eval_freq = 5;
  c.train.eval_iter = 5;
  c.train.output_dir = "runs/ch07";
  c.generate.max_new_tokens = 256;
  c.generate.stop_at_eos = true;
  c.generate.device = "auto";
  return c;
}

InstructRunConfig parse_instruct_run_config(ConfigNode root, const InstructRunConfig& defaults) {
  InstructRunConfig c = defaults;
  root.read("base_model", c.base_model);
  c.model = parse_gpt_config(root.child("model"), c.model);
  c.tokenizer = parse_tokenizer_config(root.child("tokenizer"));
  c.data = parse_instruction_data_config(root.child("data"), c.data);
  c.finetune = parse_finetune_config(root.child("finetune"), c.finetune);
  c.train = parse_train_config(root.child("train"), c.train);
  c.seed = c.train.seed;
  root.read("initial_eval", c.initial_eval);
  root.read("sample_tokens", c.sample_tokens, at_least(int64_t{0}));
  c.generate = parse_generation_config(root.child("generate"), c.generate);
  auto responses = root.child("responses");
  responses.read<std::string>("split", c.responses.split,
                              one_of({"test", "validation", "train", "all"}));
  responses.read("file", c.responses.file);
  c.judge = parse_judge_config(root.child("judge"), c.judge);
  if (c.data.ignore_index != kIgnoreIndex) {
    root.child("data").check(false, "ignore_index",
                             "{}: the loss skips {} only (PyTorch's default)", c.data.ignore_index,
                             kIgnoreIndex);
  }
  return c;
}

std::vector<InstructionEntry> select_split(const InstructionSplits& splits,
                                           const std::string& split) {
  if (split == "train") return splits.train;
  if (split == "validation") return splits.validation;
  if (split == "test") return splits.test;
  if (split == "all") {
    auto all = splits.train;
    all.insert(all.end(), splits.test.begin(), splits.test.end());
    all.insert(all.end(), splits.validation.begin(), splits.validation.end());
    std::sort(all.begin(), all.end(),
              [](const auto& a, const auto& b) { return a.index < b.index; });
    return all;
  }
  fail("split '{}': expected train, validation, test or all", split);
}

InstructFinetuneConfig parse_finetune_config(ConfigNode node,
                                             const InstructFinetuneConfig& defaults) {
  InstructFinetuneConfig c = defaults;
  node.read<std::string>("trainable", c.trainable, one_of({"all", "lora"}));
  c.lora = parse_lora_config(node.child("lora"), c.lora);
  return c;
}

fs::path responses_path(const InstructRunConfig& config) {
  return config.responses.file.empty()
             ? fs::path(config.train.output_dir) / "instruction-data-with-response.json"
             : fs::path(config.responses.file);
}

std::string sft_file_name(const std::string& base_model) {
  static const std::map<std::string, std::string> names = {
      {"gpt2:124M", "gpt2-small124M"}, {"gpt2:355M", "gpt2-medium355M"},
      {"gpt2:774M", "gpt2-large774M"}, {"gpt2:1558M", "gpt2-xl1558M"}};
  const auto it = names.find(base_model);
  return (it != names.end() ? it->second : std::string("model")) + "-sft.pth";
}

void export_weights(const InstructModel& model, const fs::path& file) {
  const auto state = model_state_dict(*model.model);
  if (file.extension() == ".safetensors") {
    write_tensor_file(file, state);
  } else if (file.extension() == ".pth" || file.extension() == ".pt") {
    save_pth(file, state);
  } else {
    fail("{}: expected a .pth or .safetensors file", file.string());
  }
}

InstructModel load_instruct_model(const std::string& name, const fs::path& run_dir) {
  const ModelLoadOptions options{.run_dir = run_dir,
                                 .what = "--checkpoint",
                                 .train_hint = "run `ch07 finetune` first"};
  const fs::path path = resolve_model_path(name, options);
  InstructModel out;
  out.source = path.string();
  std::string trainable = "all";
  LoRAConfig lora;
  std::shared_ptr<const Tokenizer> tokenizer;
  if (is_checkpoint_dir(path)) {
    const auto file = path / "config.yaml";
    const auto document = ConfigDocument::from_string(read_file(file), file.string());
    const auto root = document.root();
    if (root.has("finetune")) {  // a ch07 run
      out.finetuned = true;
      auto ft = root.child("finetune");
      ft.read("trainable", trainable);
      lora = parse_lora_config(ft.child("lora"));
      if (root.child("data").has("prompt_style")) {
        std::string style;
        root.child("data").read("prompt_style", style);
        out.style = parse_prompt_style(style);
      }
      root.child("data").read("pad_token_id", out.pad_token_id);
      tokenizer = root.has("tokenizer")
                      ? std::shared_ptr<const Tokenizer>(
                            make_tokenizer(parse_tokenizer_config(root.child("tokenizer"))))
                      : std::make_shared<BPETokenizer>(BPETokenizer::gpt2());
    }
  }
  if (trainable == "lora") {
    // The adapters as trained, then folded into the weights: a plain GPT from here on.
    GPTModel model(checkpoint_model_config(path));
    apply_lora(*model, lora);
    const auto weights = path / kModelFile;
    load_model_state_dict(*model, read_tensor_file(weights), weights.string());
    merge_lora(*model);
    model->eval();
    out.model = model;
    out.tokenizer = tokenizer;
  } else {
    auto loaded = load_model(path.string(), options);
    out.model = loaded.model;
    out.tokenizer = loaded.tokenizer;
  }
  return out;
}

TrainHooks<Batch> instruct_train_hooks(
    GPTModel model, std::shared_ptr<const Tokenizer> tokenizer, std::string sample_prompt,
    int64_t sample_tokens, std::function<void(int64_t epoch, const std::string& text)> on_sample) {
  TrainHooks<Batch> hooks;
  hooks.loss = [model](const Batch& b) mutable {
    const auto device = model->tok_emb->weight.device();
    return calc_loss_batch(b.input, b.target, model, device);
  };
  if (on_sample && sample_tokens > 0) {
    hooks.on_epoch_end = [=](int64_t epoch) -> std::map<std::string, double> {
      on_sample(epoch, generate_sample(model, *tokenizer, sample_prompt, sample_tokens));
      return {};
    };
  }
  return hooks;
}

InstructRunResult finetune_instruct(const InstructRunConfig& config,
                                    const InstructRunOptions& options,
                                    const InstructCallbacks& callbacks) {
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

  // Data (§7.2): read, check and split in file order.
  const auto splits = prepare_instruction_data(config.data);
  info(fmt::format("data: {} training, {} validation, {} test entries ({} prompts)",
                   splits.train.size(), splits.validation.size(), splits.test.size(),
                   prompt_style_name(config.data.prompt_style)));

  // The base model (§7.5), then the loaders (§7.4: seeded, drawing nothing when made).
  auto base = load_base_model(config.base_model, config.model, config.tokenizer, config.seed);
  auto model = base.model;
  check_pad_id(config.data, *base.tokenizer, model->config());
  const auto loaders =
      make_instruction_loaders(splits, *base.tokenizer, config.data, config.train.batch_size,
                               config.seed, model->config().context_length);
  info(fmt::format("{} / {} / {} batches of {}", loaders.train.size(), loaders.validation.size(),
                   loaders.test.size(), config.train.batch_size));
  const auto device = resolve_device(train.device);
  model->to(device);
  const auto train_source = batch_source(loaders.train);
  const auto val_source = batch_source(loaders.validation);
  const std::string sample_prompt = format_input(splits.validation.front(), config.data.prompt_style);
  auto hooks = instruct_train_hooks(model, base.tokenizer, sample_prompt, config.sample_tokens,
                                    callbacks.on_sample);
  hooks.on_eval = callbacks.on_eval;
  hooks.on_step = callbacks.on_step;

  // The book's losses before finetuning (§7.6): seeded, eval mode, eval_iter batches each.
  if (config.initial_eval && !resuming) {
    torch::manual_seed(static_cast<uint64_t>(config.seed));
    torch::NoGradGuard no_grad;
    model->eval();
    const auto n = config.train.eval_iter;
    const LossFn<Batch> loss = [&hooks](const Batch& b) { return hooks.loss(b).loss; };
    const double tr = calc_loss_loader(*train_source, loss, n);
    const double va = calc_loss_loader(*val_source, loss, n);
    if (callbacks.on_initial_loss) callbacks.on_initial_loss(tr, va);
  }

  InstructRunResult result;
  if (config.finetune.trainable == "lora") {
    freeze_all(*model);
    result.lora_layers = apply_lora(*model, config.finetune.lora);
    model->to(device);
  }
  result.trainable_parameters = count_trainable_parameters(*model);
  result.total_parameters = count_parameters(*model);
  info(fmt::format("trainable parameters: {} of {} ({}{})", result.trainable_parameters,
                   result.total_parameters, config.finetune.trainable,
                   result.lora_layers > 0 ? fmt::format(", {} LoRA layers", result.lora_layers)
                                          : std::string()));

  // Training: the book's train_model_simple on the common trainer.
  std::string tokenizer_yaml = base.tokenizer_yaml;
  if (tokenizer_yaml.empty() && config.base_model != "random") tokenizer_yaml = "kind: gpt2\n";
  const auto saved_yaml = with_model_sections(options.config_yaml, model->config(), tokenizer_yaml);
  torch::manual_seed(static_cast<uint64_t>(config.seed));
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
    write_instruction_entries(run_dir / "train.json", splits.train, config.data);
    write_instruction_entries(run_dir / "validation.json", splits.validation, config.data);
    write_instruction_entries(run_dir / "test.json", splits.test, config.data);
  }
  const auto start = std::chrono::steady_clock::now();
  result.train = trainer.fit();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.run_dir = run_dir;
  const double step_seconds = sum(result.train.step_seconds);
  if (step_seconds > 0) {
    result.tokens_per_s = static_cast<double>(result.train.steps_tokens) / step_seconds;
  }
  return result;
}

}  // namespace llmfs
