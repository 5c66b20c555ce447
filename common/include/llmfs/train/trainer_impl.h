// The Trainer template's member functions (included by trainer.h): a program may train any batch
// type of its own without touching common/. Trainer<Batch> is compiled once, in trainer.cpp.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "llmfs/core/device.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/huge_pages.h"
#include "llmfs/train/grad_clip.h"
#include "llmfs/train/interrupt.h"
#include "llmfs/train/progress.h"
#include "llmfs/train/trainer.h"

namespace llmfs {

template <typename BatchT>
Trainer<BatchT>::Trainer(std::shared_ptr<torch::nn::Module> model, TrainConfig config,
                         std::shared_ptr<const BatchSource<BatchT>> train_loader,
                         std::shared_ptr<const BatchSource<BatchT>> val_loader,
                         TrainHooks<BatchT> hooks, TrainerOptions options)
    : model_(std::move(model)),
      config_(std::move(config)),
      train_(std::move(train_loader)),
      val_(std::move(val_loader)),
      hooks_(std::move(hooks)),
      options_(std::move(options)),
      device_(resolve_device(config_.device)),
      schedule_(LrSchedule::constant(config_.learning_rate)) {
  if (!model_) fail("Trainer: the model is null");
  if (!train_ || !val_) fail("Trainer: a loader is null");
  if (!hooks_.loss) fail("Trainer: no loss function given");
  detail::check_train_loader_size(train_->size(), config_);
  if (!hooks_.count_tokens) {
    if constexpr (detail::HasTensorInput<BatchT>) {
      hooks_.count_tokens = [](const BatchT& b) { return static_cast<int64_t>(b.input.numel()); };
    } else {
      fail("Trainer: count_tokens is required for this batch type (it has no tensor `input`)");
    }
  }
  detail::resolve_precision(config_, device_);
  model_->to(device_);
  if (options_.process_group) {
    options_.is_main_process = options_.process_group->is_main();
    std::vector<torch::Tensor> tensors = model_->parameters();
    for (const auto& b : model_->buffers()) tensors.push_back(b);
    options_.process_group->broadcast(tensors);  // every rank starts from rank 0's weights
  }
  if (device_.is_cpu()) keep_freed_memory_for_reuse();  // no page faults on every step's tensors
  NamedParameters params;
  if (options_.parameters) {
    params = *options_.parameters;
  } else {
    for (const auto& p : model_->named_parameters()) params.emplace_back(p.key(), p.value());
  }
  optimizer_ = detail::make_trainer_optimizer(config_, std::move(params));
  schedule_ = make_lr_schedule(config_, total_steps());
  spdlog::debug("trainer: device {}, {} steps/epoch, {} steps, schedule {}", device_.str(),
                steps_per_epoch(), total_steps(), schedule_.name());
}

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
LossOutput Trainer<BatchT>::batch_loss(const BatchT& batch) {
  detail::AutocastGuard autocast(config_.precision == "bf16", device_.type(), at::kBFloat16);
  return hooks_.loss(batch);
}

template <typename BatchT>
detail::LoaderEvaluation Trainer<BatchT>::evaluate_loader(const BatchSource<BatchT>& loader,
                                                          int64_t batches) {
  // calc_loss_loader's arithmetic (host doubles summed in order) and draws (one new pass).
  detail::LoaderEvaluation out;
  const int64_t size = loader.size();
  if (size == 0) {
    out.loss = std::numeric_limits<double>::quiet_NaN();
    return out;
  }
  const int64_t n = std::min(batches, size);
  auto pass = loader.start();
  for (int64_t i = 0; i < n; ++i) {
    const BatchT* batch = pass->next();
    if (batch == nullptr) break;
    const LossOutput result = batch_loss(*batch);
    out.loss += result.loss.template item<double>();
    for (const auto& [name, value] : result.metrics) {
      out.metrics[name] += value.template item<double>();
    }
  }
  out.loss /= static_cast<double>(n);
  for (auto& [name, value] : out.metrics) value /= static_cast<double>(n);
  return out;
}

template <typename BatchT>
EvalPoint Trainer<BatchT>::evaluate(int64_t step) {
  const bool was_training = model_->is_training();
  model_->eval();
  EvalPoint point;
  {
    torch::NoGradGuard no_grad;
    const auto train = evaluate_loader(*train_, config_.eval_iter);
    const auto val = evaluate_loader(*val_, config_.eval_iter);
    point.train_loss = train.loss;
    point.val_loss = val.loss;
    for (const auto& [name, value] : train.metrics) point.extra["train_" + name] = value;
    for (const auto& [name, value] : val.metrics) point.extra["val_" + name] = value;
    if (const auto& group = options_.process_group) {
      // Each rank evaluated its shard: the means over the ranks (same batch counts on each).
      std::vector<double> values = {point.train_loss, point.val_loss};
      for (const auto& [name, value] : point.extra) values.push_back(value);
      values = group->sum(values, fmt::format("the evaluation of step {}", step));
      const double w = static_cast<double>(group->size());
      point.train_loss = values[0] / w;
      point.val_loss = values[1] / w;
      size_t k = 2;
      for (auto& [name, value] : point.extra) value = values[k++] / w;
    }
    if (hooks_.extra_metrics) {
      for (const auto& [name, value] : hooks_.extra_metrics()) point.extra[name] = value;
    }
  }
  model_->train(was_training);
  point.epoch = state_.epoch + 1;
  point.step = step;
  point.tokens_seen = state_.tokens_seen;
  point.lr = optimizer_->lr();
  return point;
}

template <typename BatchT>
std::pair<double, double> Trainer<BatchT>::evaluate_losses() {
  const auto point = evaluate(state_.global_step);
  return {point.train_loss, point.val_loss};
}

template <typename BatchT>
std::filesystem::path Trainer<BatchT>::save_checkpoint() {
  TrainingCheckpoint c;
  c.model = model_state_dict(*model_);
  c.optimizer = optimizer_->state_dict();
  c.rng = get_rng_states(device_);
  c.state = state_;
  c.state.world_size = options_.process_group ? options_.process_group->size() : 1;
  c.config_yaml = options_.config_yaml;
  last_checkpoint_ = llmfs::save_checkpoint(
      std::filesystem::path(config_.output_dir) / "checkpoints", c, config_.keep_checkpoints);
  spdlog::info("checkpoint saved: {}", last_checkpoint_.string());
  return last_checkpoint_;
}

template <typename BatchT>
void Trainer<BatchT>::resume(const std::filesystem::path& dir) {
  const TrainingCheckpoint c = load_checkpoint(dir);
  load_model_state_dict(*model_, c.model, (dir / kModelFile).string());
  optimizer_->load_state_dict(c.optimizer, (dir / kOptimizerFile).string());
  if (!schedule_.writes_lr()) optimizer_->set_lr(config_.learning_rate);  // the config's rate
  const TrainerState& s = c.state;
  if (s.pass_started && !s.position.global_examples && s.position.batches_yielded > train_->size()) {
    fail(
        "{}: the checkpoint stands at batch {} of an epoch, but an epoch now has {} batches "
        "(resume with the run's data and batch settings)",
        dir.string(), s.position.batches_yielded, train_->size());
  }
  if (!options_.config_yaml.empty() && !c.config_yaml.empty()) {
    detail::warn_config_changes(c.config_yaml, options_.config_yaml);
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
    spdlog::info(
        "{}: the run has finished ({} epochs, step {}, {} tokens seen); nothing to train "
        "(raise train.num_epochs to train on)",
        dir.string(), s.epoch, s.global_step, s.tokens_seen);
  } else {
    spdlog::info("resuming from {} (epoch {}, step {}, {} tokens seen)", dir.string(), s.epoch + 1,
                 s.global_step, s.tokens_seen);
  }
}

template <typename BatchT>
TrainResult Trainer<BatchT>::fit() {
  using Clock = std::chrono::steady_clock;
  namespace fs = std::filesystem;
  const auto& ranks = options_.process_group;  // null: a single process
  const bool main = options_.is_main_process;
  if (main && !resumed_) detail::prepare_output_dir(config_, options_.overwrite);
  std::unique_ptr<InterruptGuard> interrupt;
  if (options_.handle_signals) interrupt = std::make_unique<InterruptGuard>();
  std::unique_ptr<MetricsWriter> metrics;
  if (main) {
    fs::create_directories(config_.output_dir);
    if (!options_.config_yaml.empty()) {
      write_file_atomic(fs::path(config_.output_dir) / "config.yaml", options_.config_yaml);
    }
    metrics = std::make_unique<MetricsWriter>(config_.output_dir);
    metrics->reset(state_.history.points, state_.history.epochs);
  }
  const bool interactive =
      main && options_.interactive_progress.value_or(ProgressBar::stderr_is_terminal());
  ProgressBar progress(total_steps(), state_.global_step + 1, interactive);
  const double world = ranks ? static_cast<double>(ranks->size()) : 1.0;
  // MFU: the FLOPs of all ranks' tokens over all ranks' peaks (each measures its own device).
  const double peak = options_.flops_per_token > 0 ? detail::peak_flops(config_, device_) : 0.0;
  if (main && peak > 0) progress.set_flops(options_.flops_per_token, peak * world);

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
    state_.elapsed_s = elapsed_before + detail::seconds_since(fit_start);
    progress.finish();
    result.world_size = ranks ? ranks->size() : 1;
    result.flops_per_token = options_.flops_per_token;
    result.peak_flops = peak;
    result.gradient_sync_seconds = ranks ? ranks->gradient_sync_seconds() : 0.0;
    result.history = state_.history;
    result.global_step = state_.global_step;
    result.tokens_seen = state_.tokens_seen;
    result.interrupted = interrupted;
    result.checkpoint = last_checkpoint_;
    if (main && !result.step_seconds.empty()) detail::write_timing(config_, result, device_);
    return result;
  };

  while (!stop && state_.epoch < config_.num_epochs) {
    std::unique_ptr<typename BatchSource<BatchT>::Pass> pass;
    if (!state_.pass_started) {
      pass = train_->start(state_.epoch);
    } else {
      try {
        pass = train_->resume(state_.position);
      } catch (const Error& e) {  // the checkpoint's position does not fit these loaders
        fail("{}: {}", last_checkpoint_.string(), e.what());
      }
    }
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
        auto loss = batch_loss(*batch).loss;
        if (group > 1) loss = loss / static_cast<double>(group);
        loss.backward();
        tokens += hooks_.count_tokens(*batch);
        step_loss = step_loss.defined() ? step_loss + loss.detach() : loss.detach();
      }
      if (ranks) {
        ranks->average_gradients(optimizer_->parameter_tensors(), fmt::format("step {}", step));
      }
      if (hooks_.after_backward) hooks_.after_backward();
      // Appendix D clips from step W on; the print book's test (`>`) started one step later.
      if (clip && (config_.clip_after_warmup_erratum ? step > warmup : step >= warmup)) {
        clip_grad_norm_(optimizer_->parameter_tensors(), *config_.grad_clip);
      }
      optimizer_->step();
      double step_loss_value = step_loss.item<double>();
      if (ranks) {  // the step as all ranks took it: the mean loss, all tokens
        const auto sums = ranks->sum({step_loss_value, static_cast<double>(tokens)},
                                     fmt::format("the step summary of step {}", step));
        step_loss_value = sums[0] / static_cast<double>(ranks->size());
        tokens = static_cast<int64_t>(std::llround(sums[1]));
      }
      state_.tokens_seen += tokens;
      state_.global_step = step;
      state_.position = pass->position();
      progressed = true;
      result.step_seconds.push_back(detail::seconds_since(step_start));
      result.step_losses.push_back(step_loss_value);
      result.steps_tokens += tokens;
      progress.step(step + 1, tokens, step_loss_value);
      if (hooks_.on_step) hooks_.on_step(step, step_loss_value);

      // The book evaluates every eval_freq steps; a run also records its last step (eval_at_end)
      // so that its figures and its log end where the training ended. That extra evaluation
      // leaves the random stream as the book's loop has it (the training loader's shuffle it
      // draws is undone), so what follows (epoch-end accuracies, samples) stays the book's.
      const bool scheduled = config_.eval_freq > 0 && step % config_.eval_freq == 0;
      const bool last_step =
          (config_.max_steps && step + 1 >= *config_.max_steps) ||
          (state_.epoch + 1 >= config_.num_epochs &&
           pass->position().batches_yielded >= train_->size());
      if (scheduled || (last_step && config_.eval_at_end && config_.eval_freq > 0)) {
        std::map<std::string, torch::Tensor> rng;
        if (!scheduled) rng = get_rng_states(device_);
        EvalPoint point = evaluate(step);
        if (!scheduled) set_rng_states(rng, "the evaluation at the last step");
        const double since = detail::seconds_since(last_eval_time);
        point.elapsed_s = elapsed_before + detail::seconds_since(fit_start);
        point.tokens_per_s =
            since > 0 ? static_cast<double>(state_.tokens_seen - last_eval_tokens) / since : 0.0;
        if (peak > 0) point.mfu = point.tokens_per_s * options_.flops_per_token / (peak * world);
        last_eval_time = Clock::now();
        last_eval_tokens = state_.tokens_seen;
        state_.history.points.push_back(point);
        if (main) {
          metrics->append(point);
          progress.clear();
          if (hooks_.on_eval) hooks_.on_eval(point);
          progress.evaluation(step + 1, point.train_loss, point.val_loss);
        }
      }

      // --- Step boundary: the state is complete; checkpoints and stops happen here only.
      if (config_.max_steps && step + 1 >= *config_.max_steps) stop = true;
      bool stop_requested = interrupt && interrupt->requested();
      if (ranks) {  // a signal to any rank stops all of them here, at the same step
        stop_requested = ranks->sum({stop_requested ? 1.0 : 0.0},
                                    fmt::format("the stop check of step {}", step))[0] > 0;
      }
      if (stop_requested) {
        result.signal = interrupt && interrupt->requested() ? interrupt->signal_name()
                                                              : "a signal to another rank";
        state_.elapsed_s = elapsed_before + detail::seconds_since(fit_start);
        progress.clear();
        if (main) save_checkpoint();
        return finish(true);
      }
      if (main && config_.checkpoint_every > 0 && (step + 1) % config_.checkpoint_every == 0 &&
          !stop) {
        state_.elapsed_s = elapsed_before + detail::seconds_since(fit_start);
        progress.clear();
        save_checkpoint();
      }
      if (stop) break;
    }
    if (!epoch_done) break;
    if (hooks_.on_epoch_end && main) {
      model_->eval();
      EpochMetrics epoch;
      epoch.epoch = state_.epoch + 1;
      epoch.step = state_.global_step;
      epoch.tokens_seen = state_.tokens_seen;
      {
        torch::NoGradGuard no_grad;
        progress.clear();
        epoch.metrics = hooks_.on_epoch_end(state_.epoch + 1);
      }
      model_->train();
      if (!epoch.metrics.empty()) {
        state_.history.epochs.push_back(epoch);
        metrics->append_epoch(epoch);
      }
    }
    state_.epoch += 1;
    progressed = true;
    state_.pass_started = false;
    state_.position = DataLoaderPosition{};
    if (config_.max_steps && state_.global_step + 1 >= *config_.max_steps) stop = true;
  }

  state_.finished = true;
  state_.elapsed_s = elapsed_before + detail::seconds_since(fit_start);
  progress.clear();
  // A resumed run that had nothing left to do keeps its checkpoint as it is.
  if (main && config_.final_checkpoint && state_.global_step >= 0 && (progressed || !resumed_)) {
    save_checkpoint();
  }
  return finish(false);
}

}  // namespace llmfs
