// The training loop of book §5.2 (train_model_simple) with appendix D's schedule and clipping,
// gradient accumulation, autocast, checkpoints, resume and Ctrl-C handling.
#include "llmfs/train/trainer.h"

#include <ATen/autocast_mode.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cmath>

#include "llmfs/config/cli.h"
#include "llmfs/core/device.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/huge_pages.h"
#include "llmfs/core/repr.h"
#include "llmfs/train/grad_clip.h"
#include "llmfs/train/interrupt.h"
#include "llmfs/train/progress.h"

namespace fs = std::filesystem;

namespace llmfs {

// --- Config ---

TrainConfig parse_train_config(ConfigNode node) {
  TrainConfig c;
  node.read("seed", c.seed);
  node.read("num_epochs", c.num_epochs, at_least(int64_t{1}));
  node.read("batch_size", c.batch_size, at_least(int64_t{1}));
  node.read("learning_rate", c.learning_rate, at_least(0.0));
  node.read("weight_decay", c.weight_decay, at_least(0.0));
  node.read("betas", c.betas);
  node.check(
      c.betas.size() == 2 && c.betas[0] >= 0 && c.betas[0] < 1 && c.betas[1] >= 0 && c.betas[1] < 1,
      "betas", "expected two numbers in [0, 1), e.g. [0.9, 0.999]");
  node.read("eps", c.eps, at_least(0.0));
  node.read("eval_freq", c.eval_freq, at_least(int64_t{0}));
  node.read("eval_iter", c.eval_iter, at_least(int64_t{1}));
  node.read("lr_schedule", c.lr_schedule, one_of({"constant", "warmup_cosine"}));
  node.read("warmup_steps", c.warmup_steps, at_least(int64_t{0}));
  node.read<std::optional<double>>(
      "warmup_fraction", c.warmup_fraction,
      [](const std::optional<double>& f) -> std::optional<std::string> {
        if (f && !(*f >= 0.0 && *f < 1.0)) return fmt::format("must be in [0, 1), got {}", *f);
        return std::nullopt;
      });
  node.check(!(c.warmup_fraction && node.has("warmup_steps")), "warmup_fraction",
             "give warmup_steps or warmup_fraction, not both");
  node.read("initial_lr", c.initial_lr, at_least(0.0));
  node.read("min_lr", c.min_lr, at_least(0.0));
  node.read<std::optional<double>>(
      "grad_clip", c.grad_clip, [](const std::optional<double>& v) -> std::optional<std::string> {
        if (v && !(*v > 0.0)) return fmt::format("must be > 0 or null (no clipping), got {}", *v);
        return std::nullopt;
      });
  node.read("clip_after_warmup_erratum", c.clip_after_warmup_erratum);
  node.read("grad_accumulation_steps", c.grad_accumulation_steps, at_least(int64_t{1}));
  node.read<std::optional<int64_t>>(
      "max_steps", c.max_steps, [](const std::optional<int64_t>& v) -> std::optional<std::string> {
        if (v && *v < 1) return fmt::format("must be at least 1 or null (no limit), got {}", *v);
        return std::nullopt;
      });
  node.read<std::string>(
      "device", c.device, [](const std::string& d) -> std::optional<std::string> {
        const bool cuda_n = d.rfind("cuda:", 0) == 0 && d.size() > 5 &&
                            d.find_first_not_of("0123456789", 5) == std::string::npos;
        if (d == "auto" || d == "cpu" || d == "cuda" || d == "mps" || cuda_n) return std::nullopt;
        return fmt::format("unknown device '{}' (use auto, cpu, cuda, cuda:N or mps)", d);
      });
  node.read("precision", c.precision, one_of({"fp32", "bf16"}));
  node.read("fused_adamw", c.fused_adamw);
  node.read<std::string>("output_dir", c.output_dir,
                         [](const std::string& d) -> std::optional<std::string> {
                           if (d.empty()) return "must not be empty";
                           return std::nullopt;
                         });
  node.read("checkpoint_every", c.checkpoint_every, at_least(int64_t{0}));
  node.read("keep_checkpoints", c.keep_checkpoints, at_least(int64_t{0}));
  node.read("final_checkpoint", c.final_checkpoint);
  auto sample = node.child("sample");
  sample.read("start_context", c.sample.start_context);
  sample.read("max_new_tokens", c.sample.max_new_tokens, at_least(int64_t{0}));
  return c;
}

LrSchedule make_lr_schedule(const TrainConfig& c, int64_t total_steps) {
  if (c.lr_schedule == "constant") return LrSchedule::constant(c.learning_rate);
  const int64_t warmup = c.warmup_fraction
                             ? warmup_steps_from_fraction(*c.warmup_fraction, total_steps)
                             : c.warmup_steps;
  if (warmup >= total_steps) {
    fail(
        "train.warmup_steps: {} warmup steps leave no step for the decay (the run has {} optimizer "
        "steps)",
        warmup, total_steps);
  }
  return LrSchedule::warmup_cosine(c.initial_lr, c.learning_rate, c.min_lr, warmup, total_steps);
}

// --- Helpers ---

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// torch.autocast(device_type, dtype) as a scope: LibTorch has the state switches, not the guard.
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, c10::DeviceType device_type, at::ScalarType dtype)
      : active_(enabled), type_(device_type) {
    if (!active_) return;
    prev_enabled_ = at::autocast::is_autocast_enabled(type_);
    prev_dtype_ = at::autocast::get_autocast_dtype(type_);
    at::autocast::set_autocast_enabled(type_, true);
    at::autocast::set_autocast_dtype(type_, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!active_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(type_, prev_enabled_);
    at::autocast::set_autocast_dtype(type_, prev_dtype_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_;
  c10::DeviceType type_;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kFloat;
};

// Flattens a YAML document to dotted keys -> scalar text, to tell what a resumed run changed.
void flatten_yaml(const YAML::Node& node, const std::string& prefix,
                  std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      flatten_yaml(kv.second, prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar(),
                   out);
    }
  } else {
    YAML::Emitter e;
    e.SetSeqFormat(YAML::Flow);
    e << node;
    out[prefix] = e.c_str();
  }
}

std::vector<std::string> config_differences(const std::string& before, const std::string& now) {
  std::map<std::string, std::string> a, b;
  try {
    flatten_yaml(YAML::Load(before), "", a);
    flatten_yaml(YAML::Load(now), "", b);
  } catch (const YAML::Exception&) {
    return {"(the checkpoint's config could not be read)"};
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : b) {
    const auto it = a.find(k);
    if (it == a.end()) {
      out.push_back(fmt::format("{} (new: {})", k, v));
    } else if (it->second != v) {
      out.push_back(fmt::format("{} ({} -> {})", k, it->second, v));
    }
  }
  for (const auto& [k, v] : a) {
    if (!b.count(k)) out.push_back(fmt::format("{} (dropped: {})", k, v));
  }
  return out;
}

}  // namespace

// --- Trainer ---

template <typename BatchT>
Trainer<BatchT>::Trainer(std::shared_ptr<torch::nn::Module> model, TrainConfig config,
                         std::shared_ptr<const BatchSource<BatchT>> train_loader,
                         std::shared_ptr<const BatchSource<BatchT>> val_loader,
                         TrainHooks<BatchT> hooks)
    : model_(std::move(model)),
      config_(std::move(config)),
      train_(std::move(train_loader)),
      val_(std::move(val_loader)),
      hooks_(std::move(hooks)),
      device_(resolve_device(config_.device)),
      schedule_(LrSchedule::constant(config_.learning_rate)) {
  if (!model_) fail("Trainer: the model is null");
  if (!train_ || !val_) fail("Trainer: a loader is null");
  if (!hooks_.loss) fail("Trainer: no loss function given");
  if (train_->size() == 0) {
    fail(
        "the training loader has no batches (fewer examples than batch_size {} with drop_last): "
        "use more text, a smaller batch_size or a shorter max_length",
        config_.batch_size);
  }
  if (!hooks_.count_tokens) {
    if constexpr (std::is_same_v<BatchT, Batch>) {
      hooks_.count_tokens = [](const Batch& b) { return b.input.numel(); };
    } else {
      fail("Trainer: count_tokens is required for this batch type");
    }
  }
  model_->to(device_);
  if (device_.is_cpu()) keep_freed_memory_for_reuse();  // no page faults on every step's tensors
  NamedParameters params;
  if (hooks_.parameters) {
    params = *hooks_.parameters;
  } else {
    for (const auto& p : model_->named_parameters()) params.emplace_back(p.key(), p.value());
  }
  AdamWOptions opt;
  opt.lr = config_.learning_rate;
  opt.beta1 = config_.betas.at(0);
  opt.beta2 = config_.betas.at(1);
  opt.eps = config_.eps;
  opt.weight_decay = config_.weight_decay;
  opt.fused = config_.fused_adamw;
  optimizer_ = std::make_unique<AdamW>(params, opt);
  schedule_ = make_lr_schedule(config_, total_steps());
  spdlog::debug("trainer: device {}, {} steps/epoch, {} steps, schedule {}", device_.str(),
                steps_per_epoch(), total_steps(), schedule_.name());
}

template <typename BatchT>
Trainer<BatchT>::~Trainer() = default;

template <typename BatchT>
int64_t Trainer<BatchT>::steps_per_epoch() const {
  const int64_t k = config_.grad_accumulation_steps;
  return (train_->size() + k - 1) / k;
}

template <typename BatchT>
int64_t Trainer<BatchT>::total_steps() const {
  const int64_t all = steps_per_epoch() * config_.num_epochs;
  return config_.max_steps ? std::min(all, *config_.max_steps) : all;
}

template <typename BatchT>
torch::Tensor Trainer<BatchT>::batch_loss(const BatchT& batch) {
  AutocastGuard autocast(config_.precision == "bf16", device_.type(), at::kBFloat16);
  return hooks_.loss(batch);
}

template <typename BatchT>
std::pair<double, double> Trainer<BatchT>::evaluate_losses() {
  const bool was_training = model_->is_training();
  model_->eval();
  torch::NoGradGuard no_grad;
  const LossFn<BatchT> loss = [this](const BatchT& b) { return batch_loss(b); };
  const double train_loss = calc_loss_loader(*train_, loss, config_.eval_iter);
  const double val_loss = calc_loss_loader(*val_, loss, config_.eval_iter);
  model_->train(was_training);
  return {train_loss, val_loss};
}

template <typename BatchT>
fs::path Trainer<BatchT>::save_checkpoint() {
  TrainingCheckpoint c;
  c.model = model_state_dict(*model_);
  c.optimizer = optimizer_->state_dict();
  c.rng = get_rng_states(device_);
  c.state = state_;
  c.config_yaml = resolved_config_yaml();
  last_checkpoint_ = llmfs::save_checkpoint(fs::path(config_.output_dir) / "checkpoints", c,
                                            config_.keep_checkpoints);
  spdlog::info("checkpoint saved: {}", last_checkpoint_.string());
  return last_checkpoint_;
}

template <typename BatchT>
void Trainer<BatchT>::resume(const fs::path& dir) {
  const TrainingCheckpoint c = load_checkpoint(dir);
  load_model_state_dict(*model_, c.model, (dir / kModelFile).string());
  optimizer_->load_state_dict(c.optimizer, (dir / kOptimizerFile).string());
  if (!schedule_.writes_lr()) optimizer_->set_lr(config_.learning_rate);  // the config's rate
  const TrainerState& s = c.state;
  if (s.pass_started && s.position.batches_yielded > train_->size()) {
    fail(
        "{}: the checkpoint stands at batch {} of an epoch, but an epoch now has {} batches "
        "(resume with the run's data and batch settings)",
        dir.string(), s.position.batches_yielded, train_->size());
  }
  if (!resolved_config_yaml().empty() && !c.config_yaml.empty()) {
    for (const auto& d : config_differences(c.config_yaml, resolved_config_yaml())) {
      spdlog::warn("resuming with a changed setting: {}", d);
    }
  }
  state_ = s;
  // Training goes on when the config asks for more than the checkpoint did.
  if (state_.finished && state_.epoch < config_.num_epochs &&
      (!config_.max_steps || state_.global_step + 1 < *config_.max_steps)) {
    state_.finished = false;
  }
  // Last: nothing may draw from the generators between here and the first step.
  set_rng_states(c.rng, (dir / kRngFile).string());
  resumed_ = true;
  last_checkpoint_ = dir;
  if (state_.finished) {
    spdlog::info("{}: the run has finished ({} epochs, step {}, {} tokens seen); nothing to train "
                 "(raise train.num_epochs to train on)",
                 dir.string(), s.epoch, s.global_step, s.tokens_seen);
  } else {
    spdlog::info("resuming from {} (epoch {}, step {}, {} tokens seen)", dir.string(),
                 s.epoch + 1, s.global_step, s.tokens_seen);
  }
}

template <typename BatchT>
void Trainer<BatchT>::write_timing(const TrainResult& result) const {
  // Step times of this process, for scripts/bench_train.sh and anyone tuning a run.
  std::string json = "{\"step_seconds\": [";
  for (size_t i = 0; i < result.step_seconds.size(); ++i) {
    json += fmt::format("{}{:.6f}", i ? ", " : "", result.step_seconds[i]);
  }
  json += fmt::format("], \"tokens\": {}, \"device\": \"{}\", \"threads\": {}}}\n",
                      result.steps_tokens, device_.str(), at::get_num_threads());
  write_file_atomic(fs::path(config_.output_dir) / "timing.json", json);
  double total = 0;
  for (const double t : result.step_seconds) total += t;
  spdlog::info("{} optimizer steps in {:.1f} s of step time: {} tokens/s", result.step_seconds.size(),
               total, group_thousands(static_cast<int64_t>(std::llround(result.steps_tokens / total))));
}

template <typename BatchT>
TrainResult Trainer<BatchT>::fit() {
  const bool main = hooks_.is_main_process;
  std::unique_ptr<InterruptGuard> interrupt;
  if (hooks_.handle_signals) interrupt = std::make_unique<InterruptGuard>();
  std::unique_ptr<MetricsWriter> metrics;
  if (main) {
    fs::create_directories(config_.output_dir);
    if (!resolved_config_yaml().empty()) write_resolved_config(config_.output_dir);
    metrics = std::make_unique<MetricsWriter>(config_.output_dir);
    metrics->reset(state_.history.points);
  }
  const bool interactive =
      main && hooks_.interactive_progress.value_or(ProgressBar::stderr_is_terminal());
  ProgressBar progress(total_steps(), state_.global_step + 1, interactive);

  TrainResult result;
  const auto fit_start = Clock::now();
  const double elapsed_before = state_.elapsed_s;
  auto last_eval_time = fit_start;
  int64_t last_eval_tokens = state_.tokens_seen;
  const int64_t accumulation = config_.grad_accumulation_steps;
  const bool clip = config_.grad_clip.has_value();
  const int64_t warmup = schedule_.warmup_steps();
  bool stop = state_.finished;
  bool progressed = false;  // a step or an epoch end happened: the state differs from the start

  const auto finish = [&](bool interrupted) {
    state_.elapsed_s = elapsed_before + seconds_since(fit_start);
    progress.finish();
    if (main && !result.step_seconds.empty()) write_timing(result);
    result.history = state_.history;
    result.global_step = state_.global_step;
    result.tokens_seen = state_.tokens_seen;
    result.interrupted = interrupted;
    result.checkpoint = last_checkpoint_;
    return result;
  };

  while (!stop && state_.epoch < config_.num_epochs) {
    auto pass = state_.pass_started ? train_->resume(state_.position) : train_->start();
    state_.pass_started = true;
    model_->train();
    bool epoch_done = false;
    while (true) {
      const BatchT* batch = pass->next();
      if (batch == nullptr) {
        epoch_done = true;
        break;
      }
      const auto step_start = Clock::now();
      // The batches of this optimizer step: `accumulation`, or what is left of the epoch.
      const int64_t left = train_->size() - pass->position().batches_yielded + 1;
      const int64_t group = std::min(accumulation, left);
      const int64_t step = state_.global_step + 1;

      optimizer_->zero_grad();
      if (schedule_.writes_lr()) optimizer_->set_lr(schedule_.lr(step));
      state_.history.track_lrs.push_back(optimizer_->lr());
      int64_t tokens = 0;
      torch::Tensor step_loss;
      for (int64_t j = 0; j < group; ++j) {
        if (j > 0) {
          batch = pass->next();
          TORCH_CHECK(batch != nullptr, "Trainer: the loader ended inside an accumulation group");
        }
        auto loss = batch_loss(*batch);
        if (group > 1) loss = loss / static_cast<double>(group);
        loss.backward();
        tokens += hooks_.count_tokens(*batch);
        step_loss = step_loss.defined() ? step_loss + loss.detach() : loss.detach();
      }
      if (hooks_.after_backward) hooks_.after_backward();
      // Appendix D clips from step W on; the print book's test (`>`) started one step later.
      if (clip && (config_.clip_after_warmup_erratum ? step > warmup : step >= warmup)) {
        clip_grad_norm_(optimizer_->parameter_tensors(), *config_.grad_clip);
      }
      optimizer_->step();
      state_.tokens_seen += tokens;
      state_.global_step = step;
      state_.position = pass->position();
      progressed = true;
      const double step_loss_value = step_loss.item<double>();
      result.step_seconds.push_back(seconds_since(step_start));
      result.steps_tokens += tokens;
      progress.step(step + 1, tokens, step_loss_value);
      if (hooks_.on_step) hooks_.on_step(step, step_loss_value);

      if (config_.eval_freq > 0 && step % config_.eval_freq == 0) {
        const auto [train_loss, val_loss] = evaluate_losses();
        EvalPoint point;
        point.epoch = state_.epoch + 1;
        point.step = step;
        point.tokens_seen = state_.tokens_seen;
        point.train_loss = train_loss;
        point.val_loss = val_loss;
        point.lr = optimizer_->lr();
        if (hooks_.extra_metrics) {
          model_->eval();
          torch::NoGradGuard no_grad;
          point.extra = hooks_.extra_metrics();
          model_->train();
        }
        const double since = seconds_since(last_eval_time);
        point.elapsed_s = elapsed_before + seconds_since(fit_start);
        point.tokens_per_s =
            since > 0 ? static_cast<double>(state_.tokens_seen - last_eval_tokens) / since : 0.0;
        last_eval_time = Clock::now();
        last_eval_tokens = state_.tokens_seen;
        state_.history.points.push_back(point);
        if (main) {
          metrics->append(point);
          progress.clear();
          if (hooks_.on_eval) hooks_.on_eval(point);
          progress.evaluation(step + 1, train_loss, val_loss);
        }
      }

      // --- Step boundary: the state is complete; checkpoints and stops happen here only.
      if (config_.max_steps && step + 1 >= *config_.max_steps) stop = true;
      if (interrupt && interrupt->requested()) {
        result.signal = interrupt->signal_name();
        state_.elapsed_s = elapsed_before + seconds_since(fit_start);
        progress.clear();
        if (main) save_checkpoint();
        return finish(true);
      }
      if (main && config_.checkpoint_every > 0 && (step + 1) % config_.checkpoint_every == 0 &&
          !stop) {
        state_.elapsed_s = elapsed_before + seconds_since(fit_start);
        progress.clear();
        save_checkpoint();
      }
      if (stop) break;
    }
    if (!epoch_done) break;
    if (hooks_.on_epoch_end && main) {
      model_->eval();
      {
        torch::NoGradGuard no_grad;
        progress.clear();
        hooks_.on_epoch_end(state_.epoch + 1);
      }
      model_->train();
    }
    state_.epoch += 1;
    progressed = true;
    state_.pass_started = false;
    state_.position = DataLoaderPosition{};
    if (config_.max_steps && state_.global_step + 1 >= *config_.max_steps) stop = true;
  }

  state_.finished = true;
  state_.elapsed_s = elapsed_before + seconds_since(fit_start);
  progress.clear();
  // A resumed run that had nothing left to do keeps its checkpoint as it is.
  if (main && config_.final_checkpoint && state_.global_step >= 0 && (progressed || !resumed_)) {
    save_checkpoint();
  }
  return finish(false);
}

// The batch types trained with this loop. Another batch type (DPO's preference batches) adds
// its explicit instantiation here.
template class Trainer<Batch>;

}  // namespace llmfs
