#pragma once

#include <torch/torch.h>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llmfs/config/config_node.h"
#include "llmfs/data/dataset.h"
#include "llmfs/dist/distributed.h"
#include "llmfs/train/adamw.h"
#include "llmfs/train/batch_source.h"
#include "llmfs/train/loss.h"
#include "llmfs/train/lr_schedule.h"
#include "llmfs/train/metrics.h"
#include "llmfs/train/training_checkpoint.h"

namespace llmfs {

/// The `train:` section: the book's training settings (chapter 5 and appendix D) plus ours.
/// Defaults are chapter 5's run (BOOK.md §6.1); each chapter passes its own to parse_train_config
/// (its output folder, its learning rate ...).
struct TrainConfig {
  int64_t seed = 123;  // before the loaders and again before the model (§6.3)
  int64_t num_epochs = 10;
  int64_t batch_size = 2;
  double learning_rate = 4e-4;  // the notebook's (gpt_train.py: 5e-4); appendix D's peak
  double weight_decay = 0.1;
  std::vector<double> betas = {0.9, 0.999};
  double eps = 1e-8;
  int64_t eval_freq = 5;  // evaluate every eval_freq optimizer steps
  int64_t eval_iter = 5;  // batches per loader and evaluation
  // Also evaluate at the last step when eval_freq does not land there (ours: the book's loop
  // stops evaluating at the last multiple of eval_freq; false reproduces it exactly).
  bool eval_at_end = true;
  // Appendix D: learning-rate schedule and gradient clipping.
  std::string lr_schedule = "constant";  // constant | warmup_cosine
  int64_t warmup_steps = 0;
  std::optional<double> warmup_fraction;  // instead of warmup_steps: int(fraction · total steps)
  double initial_lr = 1e-5;
  double min_lr = 1e-5;
  std::optional<double> grad_clip;         // max global L2 norm; null: no clipping
  bool clip_after_warmup_erratum = false;  // true: clip only after step W (the print book's test)
  // Ours.
  int64_t grad_accumulation_steps = 1;  // batches per optimizer step
  std::optional<int64_t> max_steps;     // stop after this many optimizer steps
  std::string device = "auto";          // auto | cpu | cuda | cuda:N | mps
  std::string precision = "fp32";       // fp32 | bf16 (autocast on CUDA and CPU)
  // MFU's denominator (train/mfu.h): the device's peak in TFLOP/s; null: torch's matmul rate in
  // the training dtype, measured when training starts (about 0.25 s).
  std::optional<double> peak_tflops;
  bool fused_adamw = false;             // aten::_fused_adamw_ (PyTorch's fused=True)
  std::string output_dir =
      "runs/train";              // config.yaml, metrics.*, checkpoints/ (chapters: runs/chNN)
  int64_t checkpoint_every = 0;  // steps between checkpoints (0: only at the end / Ctrl-C)
  int64_t keep_checkpoints = 2;  // newest checkpoints kept (0: all)
  bool final_checkpoint = true;  // write one when training ends
  DistributedConfig dist;        // `train.dist:` runs launched by torchrun (read_launch_environment)

  /// "Step" for chapter 5's log line, "Iter" with appendix D's schedule.
  std::string log_label() const { return lr_schedule == "constant" ? "Step" : "Iter"; }
};

/// Reads a `train:` section (every key optional; absent keys keep `defaults`, the chapter's).
/// Subsections such as `data:` and `sample:` belong to the caller (chapter 5 reads them with
/// parse_pretrain_data_config and parse_sample_config).
TrainConfig parse_train_config(ConfigNode node, const TrainConfig& defaults = {});

/// Joins the process group of a run that torchrun started (nullptr for a plain run): a CUDA
/// device (train.device cuda, or auto with CUDA present) becomes cuda:LOCAL_RANK, and ranks other
/// than 0 log warnings and errors only and print nothing on stdout (what a chapter prints comes
/// from rank 0 once). Pass the group in TrainerOptions::process_group and
/// shard the loaders (DataLoader::sharded with data_shard()).
std::shared_ptr<ProcessGroup> join_data_parallel(TrainConfig& config);

/// This rank's share of the data: DistributedSampler's order, seeded with train.seed.
DataShard data_shard(const ProcessGroup& group, const TrainConfig& config);

/// The trainer's view of a loader in a run that may be data parallel: this rank's share of it
/// when `group` is set (torchrun), else the whole loader.
template <typename ExampleT, typename BatchT>
std::shared_ptr<const BatchSource<BatchT>> batch_source(const DataLoader<ExampleT, BatchT>& loader,
                                                        const ProcessGroup* group,
                                                        const TrainConfig& config) {
  return batch_source(group ? loader.sharded(data_shard(*group, config)) : loader);
}

/// The schedule a config gives for a run of total_steps optimizer steps.
LrSchedule make_lr_schedule(const TrainConfig& config, int64_t total_steps);

/// What a loss hook returns: the loss to minimise and, optionally, named metrics of the same
/// batch (chapter 6's accuracy, DPO's rewards and margins). A bare tensor converts to it, so a
/// hook may just `return lm_loss(...)`. Evaluations average each metric over the batches as the
/// loss, and record it as "train_<name>" and "val_<name>" in metrics.jsonl/csv.
struct LossOutput {
  LossOutput(torch::Tensor loss_) : loss(std::move(loss_)) {}  // NOLINT: implicit by design
  LossOutput(torch::Tensor loss_, std::map<std::string, torch::Tensor> metrics_)
      : loss(std::move(loss_)), metrics(std::move(metrics_)) {}

  torch::Tensor loss;                            // 0-dim, with gradients in training
  std::map<std::string, torch::Tensor> metrics;  // 0-dim each (detached or not)
};

/// What the training loop reports to the program around it. Only `loss` is required.
template <typename BatchT = Batch>
struct TrainHooks {
  /// The loss of a batch (required), with the batch's metrics if any: chapter 5's next-token
  /// loss, chapter 6's last-token classification loss and accuracy, chapter 7's masked loss,
  /// DPO's preference loss and rewards. Called in training mode, and in eval mode without
  /// gradients by the evaluations. It moves the batch to the model's device itself.
  std::function<LossOutput(const BatchT&)> loss;
  /// Input tokens of a batch (tokens_seen); default: `batch.input.numel()` when the batch type
  /// has a tensor `input` (Batch, and any batch type shaped like it); required otherwise.
  std::function<int64_t(const BatchT&)> count_tokens;
  /// After each optimizer step: its 0-based number and its training loss (the batch loss, summed
  /// over an accumulation group of scaled losses).
  std::function<void(int64_t step, double loss)> on_step;
  /// Each evaluation (the chapter prints format_eval_line(point)).
  std::function<void(const EvalPoint&)> on_eval;
  /// After each epoch, in eval mode without gradients (the book's generate_and_print_sample,
  /// chapter 6's accuracies over whole loaders). The argument is the 1-based epoch; the metrics
  /// returned (may be none) go into the history and metrics.jsonl / epoch_metrics.csv.
  std::function<std::map<std::string, double>(int64_t epoch)> on_epoch_end;
  /// Further metrics at each evaluation (eval mode, no gradients), e.g. accuracies.
  std::function<std::map<std::string, double>()> extra_metrics;
  /// After the backward pass(es) of a step, before clipping: distributed training all-reduces
  /// the gradients here.
  std::function<void()> after_backward;
};

/// How a Trainer runs, besides its config and hooks.
struct TrainerOptions {
  /// The resolved config of the run (CommonOptions::resolved_yaml): written as
  /// <output_dir>/config.yaml and into every checkpoint; a resumed run warns about what changed.
  std::string config_yaml;
  /// A fresh run (no resume()) into an output folder that holds checkpoints of another run:
  /// false refuses with a one-line error before anything is written; true deletes that run's
  /// checkpoints and metrics first.
  bool overwrite = false;
  /// Parameters to optimize; default: every parameter of the model that requires gradients
  /// (freeze layers or add LoRA adapters before constructing the trainer).
  std::optional<NamedParameters> parameters;
  /// Data-parallel training (DDP over c10d, launched by torchrun): every rank builds the same
  /// model and its own shard of the data (loaders with DataShard), and the trainer broadcasts
  /// rank 0's parameters at the start, averages the gradients after the backward pass(es) of
  /// each optimizer step (once per step: no sync on the micro-steps of gradient accumulation),
  /// sums the step losses, token counts and evaluation losses over the ranks, and stops every
  /// rank at the same step boundary when any rank got SIGINT/SIGTERM. Only rank 0 logs, draws
  /// the progress bar, writes metrics and checkpoints, and calls on_eval / on_epoch_end.
  std::shared_ptr<ProcessGroup> process_group;
  /// Without a process group: whether this process writes metrics, checkpoints and progress.
  bool is_main_process = true;
  /// Stop at the next step boundary on SIGINT/SIGTERM, saving a checkpoint.
  bool handle_signals = true;
  /// Progress bar redrawn in place (default: when stderr is a terminal).
  std::optional<bool> interactive_progress;
  /// FLOPs of training on one token (gpt_training_flops_per_token, train/mfu.h): the progress
  /// lines and metrics.jsonl then report MFU. 0: the model's arithmetic is not known, no MFU.
  double flops_per_token = 0.0;
};

/// How a call to fit() ended.
struct TrainResult {
  TrainHistory history;      // train_losses(), val_losses(), track_tokens_seen(), track_lrs
  bool interrupted = false;  // stopped by a signal (a checkpoint was saved, if any step ran)
  std::string signal;        // "SIGINT" / "SIGTERM"
  std::filesystem::path checkpoint;  // the last checkpoint written ("" if none)
  int64_t global_step = -1;
  int64_t tokens_seen = 0;
  // This process only: time inside optimizer steps (forward, backward, update), and tokens.
  std::vector<double> step_seconds;
  std::vector<double> step_losses;  // the training loss of each of those steps (all ranks' mean)
  int64_t steps_tokens = 0;         // tokens of those steps, all ranks together
  double gradient_sync_seconds = 0;  // of the step time: averaging gradients over the ranks
  int world_size = 1;
  double flops_per_token = 0.0;  // TrainerOptions::flops_per_token
  double peak_flops = 0.0;       // per device, FLOP/s: configured or measured (0: no MFU)
};

namespace detail {

/// What the template needs from trainer.cpp (non-template parts of the loop).
struct LoaderEvaluation {
  double loss = 0.0;
  std::map<std::string, double> metrics;
};

/// torch.autocast(device_type, dtype) as a scope: LibTorch has the state switches, not the guard.
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, c10::DeviceType device_type, at::ScalarType dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_;
  c10::DeviceType type_;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kFloat;
};

/// The setup every Trainer does: the device, the optimizer over `parameters`, checks.
std::unique_ptr<AdamW> make_trainer_optimizer(const TrainConfig& config, NamedParameters params);
/// A fresh run's output folder: refuses (or with overwrite clears) another run's checkpoints.
void prepare_output_dir(const TrainConfig& config, bool overwrite);
/// Warnings for what a resumed run's config changed.
void warn_config_changes(const std::string& before, const std::string& now);
/// <output_dir>/timing.json and the closing log line.
void write_timing(const TrainConfig& config, const TrainResult& result,
                  const torch::Device& device);
/// Fails when the loader has no batches.
void check_train_loader_size(int64_t size, const TrainConfig& config);
/// train.precision=bf16 on a CPU without bf16 units (cpu_features.h) becomes fp32, said once:
/// oneDNN's bf16 products there emulate the units, slower than fp32.
void resolve_precision(TrainConfig& config, const torch::Device& device);
/// MFU's denominator for one device: train.peak_tflops, else torch's matmul rate measured in the
/// training dtype (logged either way).
double peak_flops(const TrainConfig& config, const torch::Device& device);
double seconds_since(std::chrono::steady_clock::time_point t);

template <typename T>
concept HasTensorInput = requires(const T& b) {
  { b.input.numel() } -> std::convertible_to<int64_t>;
};

}  // namespace detail

/// The book's training loop, train_model_simple (§5.2), with appendix D's train_model features
/// and what a real run needs:
///
///   for each epoch: training mode; for each batch: zero_grad, [lr of this step], loss,
///   backward, [clip], optimizer step, tokens_seen += batch tokens, global_step += 1; every
///   eval_freq steps evaluate (eval mode, no gradients, loss over eval_iter batches of the
///   training and the validation loader, back to training mode) and call on_eval; after each
///   epoch call on_epoch_end.
///
/// With grad_accumulation_steps k an optimizer step takes k batches (the last step of an epoch
/// takes what is left), each loss divided by the step's batch count. Evaluations, checkpoints
/// and the progress bar count optimizer steps. The random stream is consumed exactly as by the
/// book's loop (BOOK.md §13.2), so seeds give the book's shuffles and dropout masks.
///
/// Checkpoints (model, AdamW state, generators, loader position, history, config) are written
/// every checkpoint_every steps, at the end, and at the first step boundary after SIGINT/SIGTERM;
/// `<output_dir>/timing.json` gets the step times of the process (forward, backward, update);
/// resume() continues such a run so that its evaluations equal the uninterrupted run's bit for
/// bit.
///
/// Any batch type works (the template is implemented in this header): a chapter's or a test's
/// own struct, with count_tokens when it has no tensor `input`.
///
///   llmfs::Trainer<> trainer(model.ptr(), cfg.train, batch_source(train_loader),
///                            batch_source(val_loader), hooks, {.config_yaml =
///                            common.resolved_yaml});
///   if (resume) trainer.resume(llmfs::resolve_checkpoint("latest", cfg.train.output_dir));
///   const auto result = trainer.fit();
template <typename BatchT = Batch>
class Trainer {
 public:
  Trainer(std::shared_ptr<torch::nn::Module> model, TrainConfig config,
          std::shared_ptr<const BatchSource<BatchT>> train_loader,
          std::shared_ptr<const BatchSource<BatchT>> val_loader, TrainHooks<BatchT> hooks,
          TrainerOptions options = {});

  /// Restores a checkpoint folder: model, optimizer, generators, loader position, history.
  /// Call before fit(), after building the model and loaders as for a fresh run.
  void resume(const std::filesystem::path& checkpoint_dir);

  /// Trains to the end (num_epochs or max_steps) or until interrupted.
  TrainResult fit();

  /// Writes a checkpoint of the current state (between steps) into <output_dir>/checkpoints.
  std::filesystem::path save_checkpoint();

  /// One evaluation now: mean losses over eval_iter batches of both loaders, in eval mode.
  std::pair<double, double> evaluate_losses();

  AdamW& optimizer() { return *optimizer_; }
  const TrainerState& state() const { return state_; }
  const TrainConfig& config() const { return config_; }
  torch::Device device() const { return device_; }
  /// Optimizer steps per epoch and for the whole run.
  int64_t steps_per_epoch() const;
  int64_t total_steps() const;

 private:
  /// Mean loss and metrics over the first `batches` batches of a new pass (calc_loss_loader's
  /// arithmetic and draws); NaN for an empty loader.
  detail::LoaderEvaluation evaluate_loader(const BatchSource<BatchT>& loader, int64_t batches);
  EvalPoint evaluate(int64_t step);
  LossOutput batch_loss(const BatchT& batch);

  std::shared_ptr<torch::nn::Module> model_;
  TrainConfig config_;
  std::shared_ptr<const BatchSource<BatchT>> train_, val_;
  TrainHooks<BatchT> hooks_;
  TrainerOptions options_;
  torch::Device device_;
  std::unique_ptr<AdamW> optimizer_;
  TrainerState state_;
  LrSchedule schedule_;
  std::filesystem::path last_checkpoint_;
  bool resumed_ = false;
};

// The batch type of chapter 5 is compiled once, in trainer.cpp.
extern template class Trainer<Batch>;

}  // namespace llmfs

#include "llmfs/train/trainer_impl.h"  // IWYU pragma: export
