// Direct preference optimization (the book's bonus notebook, BOOK.md §9): sequence
// log-probabilities, the DPO loss and rewards, the training hooks and the run on llmfs::Trainer.
#include "llmfs/finetune/dpo.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <numeric>

#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/checkpoint/model_loader.h"
#include "llmfs/core/device.h"
#include "llmfs/core/error.h"
#include "llmfs/finetune/base_model.h"
#include "llmfs/finetune/classifier.h"
#include "llmfs/finetune/lora.h"
#include "llmfs/finetune/responses.h"
#include "llmfs/model/parameter_count.h"
#include "llmfs/ops/lora.h"
#include "llmfs/train/pretrain.h"

namespace llmfs {

namespace fs = std::filesystem;

torch::Tensor sequence_logprobs(const torch::Tensor& logits, const torch::Tensor& labels,
                                const std::optional<torch::Tensor>& mask) {
  TORCH_CHECK(logits.dim() == 3 && labels.dim() == 2 && logits.size(0) == labels.size(0) &&
                  logits.size(1) == labels.size(1),
              "sequence_logprobs: logits ", logits.sizes(), " do not match labels ",
              labels.sizes());
  const auto targets = labels.slice(1, 1);
  const auto log_probs = torch::log_softmax(logits.slice(1, 0, -1), -1);
  const auto selected = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  if (!mask) return selected.mean(-1);
  const auto m = mask->slice(1, 1).to(selected.dtype());
  return (selected * m).sum(-1) / m.sum(-1);
}

DPOLoss dpo_loss(const torch::Tensor& policy_chosen, const torch::Tensor& policy_rejected,
                 const torch::Tensor& reference_chosen, const torch::Tensor& reference_rejected,
                 double beta) {
  const auto z = (policy_chosen - policy_rejected) - (reference_chosen - reference_rejected);
  DPOLoss out;
  out.loss = (-torch::nn::functional::logsigmoid(beta * z)).mean();
  out.chosen_reward = (policy_chosen - reference_chosen).detach().mean();
  out.rejected_reward = (policy_rejected - reference_rejected).detach().mean();
  return out;
}

LossOutput dpo_batch_loss(GPTModel& policy, const DPOReference& reference,
                          const PreferenceBatch& batch, double beta) {
  const auto device = policy->tok_emb->weight.device();
  const auto chosen = batch.chosen.to(device), rejected = batch.rejected.to(device);
  const auto chosen_mask = batch.chosen_mask.to(device);
  const auto rejected_mask = batch.rejected_mask.to(device);
  const auto pc = sequence_logprobs(policy->forward(chosen), chosen, chosen_mask);
  const auto pr = sequence_logprobs(policy->forward(rejected), rejected, rejected_mask);
  torch::Tensor rc, rr;
  {
    torch::NoGradGuard no_grad;
    if (!reference.model.is_empty()) {
      auto ref = reference.model;
      rc = sequence_logprobs(ref->forward(chosen), chosen, chosen_mask);
      rr = sequence_logprobs(ref->forward(rejected), rejected, rejected_mask);
    } else {  // the policy's base: its adapters off
      const LoRADisabled base_only;
      auto base = reference.policy;
      rc = sequence_logprobs(base->forward(chosen), chosen, chosen_mask);
      rr = sequence_logprobs(base->forward(rejected), rejected, rejected_mask);
    }
  }
  auto d = dpo_loss(pc, pr, rc, rr, beta);
  auto margin = d.chosen_reward - d.rejected_reward;
  return LossOutput(std::move(d.loss), {{"chosen_reward", std::move(d.chosen_reward)},
                                        {"rejected_reward", std::move(d.rejected_reward)},
                                        {"reward_margin", std::move(margin)}});
}

TrainHooks<PreferenceBatch> dpo_train_hooks(
    GPTModel policy, DPOReference reference, double beta,
    std::shared_ptr<const Tokenizer> tokenizer, std::string sample_prompt, int64_t sample_tokens,
    std::function<void(int64_t epoch, const std::string& text)> on_sample) {
  TrainHooks<PreferenceBatch> hooks;
  hooks.loss = [policy, reference, beta](const PreferenceBatch& b) mutable {
    return dpo_batch_loss(policy, reference, b, beta);
  };
  hooks.count_tokens = [](const PreferenceBatch& b) { return b.chosen.numel(); };
  if (on_sample && sample_tokens > 0) {
    hooks.on_epoch_end = [=](int64_t epoch) -> std::map<std::string, double> {
      on_sample(epoch, generate_sample(policy, *tokenizer, sample_prompt, sample_tokens));
      return {};
    };
  }
  return hooks;
}

std::string format_dpo_eval_line(const EvalPoint& p) {
  const auto get = [&](const char* key) {
    const auto it = p.extra.find(key);
    return it == p.extra.end() ? 0.0 : it->second;
  };
  return fmt::format(
      "Ep {} (Step {:06d}): Train loss {:.3f}, Val loss {:.3f}, Train reward margins {:.3f}, Val "
      "reward margins {:.3f}",
      p.epoch, p.step, p.train_loss, p.val_loss, get("train_reward_margin"),
      get("val_reward_margin"));
}

DPORunConfig default_dpo_run_config() {
  DPORunConfig c;
  c.model = gpt2_config("355M");
  c.model.drop_rate = 0.0;
  c.model.qkv_bias = true;
  c.data = default_preference_data_config();
  c.train.num_epochs = 1;
  c.train.batch_size = 8;
  c.train.learning_rate = 5e-6;
  c.train.weight_decay = 0.01;
  c.train.eval_freq = 5;
  c.train.eval_iter = 5;
  c.train.output_dir = "runs/ch07-dpo";
  c.generate.max_new_tokens = 256;
  c.generate.stop_at_eos = true;
  c.generate.device = "auto";
  return c;
}

DPORunConfig parse_dpo_run_config(ConfigNode root, const DPORunConfig& defaults) {
  DPORunConfig c = defaults;
  root.read("policy", c.policy);
  root.read("reference", c.reference);
  c.model = parse_gpt_config(root.child("model"), c.model);
  c.tokenizer = parse_tokenizer_config(root.child("tokenizer"));
  c.data = parse_preference_data_config(root.child("data"), c.data);
  c.finetune = parse_finetune_config(root.child("finetune"), c.finetune);
  root.read("beta", c.beta, greater_than(0.0));
  c.train = parse_train_config(root.child("train"), c.train);
  c.seed = c.train.seed;
  root.read("sample_tokens", c.sample_tokens, at_least(int64_t{0}));
  root.read("compare_entries", c.compare_entries, at_least(int64_t{0}));
  c.generate = parse_generation_config(root.child("generate"), c.generate);
  root.check(c.policy != "random" || c.reference.empty(), "reference",
             "a random policy is its own reference (leave reference empty)");
  return c;
}

namespace {

// The policy as the run starts it, with what describes it.
InstructModel load_policy(const DPORunConfig& config, std::string& tokenizer_yaml) {
  InstructModel policy;
  if (config.policy == "random") {
    torch::manual_seed(static_cast<uint64_t>(config.seed));
    policy.model = GPTModel(config.model);
    policy.tokenizer = make_tokenizer(config.tokenizer);
    policy.style = config.data.data.prompt_style;
    policy.source = "random";
    return policy;
  }
  policy = load_instruct_model(config.policy, "runs/ch07");
  const fs::path source(policy.source);
  tokenizer_yaml = is_checkpoint_dir(source)
                       ? run_tokenizer_yaml(source)
                       : folder_tokenizer_yaml(fs::is_directory(source) ? source : source.parent_path());
  if (tokenizer_yaml.empty()) tokenizer_yaml = "kind: gpt2\n";
  if (!policy.finetuned) {
    spdlog::warn("policy {}: not an instruction-finetuned run (the notebook aligns the chapter-7 "
                 "model; run `ch07 finetune` first)",
                 policy.source);
  }
  return policy;
}

bool same_shape(const GPTConfig& a, const GPTConfig& b) {
  return a.vocab_size == b.vocab_size && a.context_length == b.context_length &&
         a.emb_dim == b.emb_dim && a.n_heads == b.n_heads && a.n_layers == b.n_layers &&
         a.qkv_bias == b.qkv_bias && a.tie_weights == b.tie_weights;
}

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

}  // namespace

DPORunResult train_dpo(const DPORunConfig& config, const InstructRunOptions& options,
                       const DPOCallbacks& callbacks) {
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
  else if (main_process) detail::prepare_output_dir(config.train, options.overwrite);

  // Data.
  auto data = config.data;
  std::string tokenizer_yaml;
  auto policy = load_policy(config, tokenizer_yaml);
  if (policy.finetuned && policy.style != data.data.prompt_style) {
    spdlog::info("policy {}: finetuned with {} prompts; using them", policy.source,
                 prompt_style_name(policy.style));
    data.data.prompt_style = policy.style;
  }
  const auto splits = prepare_preference_data(data);
  info(fmt::format("data: {} training, {} validation, {} test pairs", splits.train.size(),
                   splits.validation.size(), splits.test.size()));
  if (data.data.pad_token_id >= policy.model->config().vocab_size) {
    fail("data.pad_token_id: {} is outside the policy's vocabulary of {} tokens",
         data.data.pad_token_id, policy.model->config().vocab_size);
  }

  // The reference: a frozen copy of the policy's starting weights (the notebook), another model,
  // or (LoRA) the policy's own base.
  DPOReference reference;
  reference.policy = policy.model;
  if (!config.reference.empty()) {
    auto other = load_instruct_model(config.reference, "runs/ch07");
    if (!same_shape(other.model->config(), policy.model->config())) {
      const auto& a = other.model->config();
      const auto& b = policy.model->config();
      fail("reference {}: emb_dim {}, {} layers, vocabulary {}; the policy {} has emb_dim {}, {} "
           "layers, vocabulary {} (a reference of another model)",
           other.source, a.emb_dim, a.n_layers, a.vocab_size, policy.source, b.emb_dim,
           b.n_layers, b.vocab_size);
    }
    reference.model = other.model;
  } else if (config.finetune.trainable != "lora") {
    GPTModel copy(policy.model->config());
    load_model_state_dict(*copy, model_state_dict(*policy.model), policy.source);
    reference.model = copy;
  }
  if (!reference.model.is_empty()) {
    reference.model->eval();
    for (auto& p : reference.model->parameters()) p.set_requires_grad(false);
  }

  // Loaders (seeded), LoRA, the trainer (seeded).
  auto model = policy.model;
  const auto loaders = make_preference_loaders(splits, *policy.tokenizer, data,
                                               config.train.batch_size, config.seed,
                                               model->config().context_length);
  info(fmt::format("{} / {} / {} batches of {}", loaders.train.size(), loaders.validation.size(),
                   loaders.test.size(), config.train.batch_size));
  DPORunResult result;
  if (config.finetune.trainable == "lora") {
    freeze_all(*model);
    const auto layers = apply_lora(*model, config.finetune.lora);
    info(fmt::format("LoRA: {} layers; the reference is the policy without them", layers));
  } else {
    for (auto& p : model->parameters()) p.set_requires_grad(true);
  }
  const auto device = resolve_device(train.device);
  model->to(device);
  if (!reference.model.is_empty()) reference.model->to(device);
  model->train();
  result.trainable_parameters = count_trainable_parameters(*model);
  info(fmt::format("trainable parameters: {} ({}); beta {}", result.trainable_parameters,
                   config.finetune.trainable, config.beta));

  const auto sample_index = std::min<size_t>(2, splits.validation.size() - 1);
  const auto sample_prompt =
      format_input(splits.validation.at(sample_index).entry, data.data.prompt_style);
  auto hooks = dpo_train_hooks(model, reference, config.beta, policy.tokenizer, sample_prompt,
                               config.sample_tokens, callbacks.on_sample);
  hooks.on_eval = callbacks.on_eval;
  hooks.on_step = callbacks.on_step;
  const auto saved_yaml = with_model_sections(options.config_yaml, model->config(),
                                              config.policy == "random" ? "" : tokenizer_yaml);
  torch::manual_seed(static_cast<uint64_t>(config.seed));
  Trainer<PreferenceBatch> trainer(model.ptr(), train,
                                   batch_source(loaders.train, group.get(), train),
                                   batch_source(loaders.validation, group.get(), train), hooks,
                                   {.config_yaml = saved_yaml,
                                    .overwrite = options.overwrite,
                                    .process_group = group,
                                    .handle_signals = options.handle_signals,
                                    .interactive_progress = options.interactive_progress});
  if (resuming) trainer.resume(resume_from);
  const auto start = std::chrono::steady_clock::now();
  result.train = trainer.fit();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.run_dir = run_dir;
  const double step_seconds = sum(result.train.step_seconds);
  if (step_seconds > 0) {
    result.tokens_per_s = static_cast<double>(result.train.steps_tokens) / step_seconds;
  }
  if (result.train.interrupted || config.compare_entries == 0 || !callbacks.on_compare ||
      !main_process) {
    return result;
  }

  // The notebook's comparison: reference, then policy, on the first validation entries.
  model->eval();
  InstructModel policy_answers;
  policy_answers.model = model;
  policy_answers.tokenizer = policy.tokenizer;
  policy_answers.style = data.data.prompt_style;
  policy_answers.pad_token_id = data.data.pad_token_id;
  policy_answers.source = policy.source;
  policy_answers.finetuned = true;
  InstructModel reference_answers = policy_answers;
  if (!reference.model.is_empty()) reference_answers.model = reference.model;
  const auto n = std::min<size_t>(static_cast<size_t>(config.compare_entries),
                                  splits.validation.size());
  torch::manual_seed(static_cast<uint64_t>(config.seed));
  for (size_t i = 0; i < n; ++i) {
    const auto& entry = splits.validation[i].entry;
    std::string before;
    {
      std::optional<LoRADisabled> base_only;
      if (reference.model.is_empty()) base_only.emplace();
      before = generate_response(reference_answers, entry, config.generate).response;
    }
    const auto after = generate_response(policy_answers, entry, config.generate).response;
    callbacks.on_compare(entry, before, after);
  }
  return result;
}

}  // namespace llmfs
