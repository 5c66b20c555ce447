#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llmfs/train/training_checkpoint.h"
#include "llmfs/config/config_node.h"
#include "llmfs/data/dataset.h"
#include "llmfs/train/adamw.h"
#include "llmfs/train/batch_source.h"
#include "llmfs/train/loss.h"
#include "llmfs/train/lr_schedule.h"
#include "llmfs/train/metrics.h"

namespace llmfs {

/// The sample printed after each epoch (book §5.2): greedy continuation of start_context.
struct SampleConfig {
  std::string start_context = "Every effort moves you";
  int64_t max_new_tokens = 50;  // 0: no sample
};

/// The `train:` section: the book's training settings (chapter 5 and appendix D) plus ours.
/// Defaults are chapter 5's run (BOOK.md §6.1).
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
  // Appendix D: learning-rate schedule and gradient clipping.
  std::string lr_schedule = "constant";  // constant | warmup_cosine
  int64_t warmup_steps = 0;
  std::optional<double> warmup_fraction;  // instead of warmup_steps: int(fraction · total steps)
  double initial_lr = 1e-5;
  double min_lr = 1e-5;
  std::optional<double> grad_clip;         // max global L2 norm; null: no clipping
  bool clip_after_warmup_erratum = false;  // true: clip only after step W (the print book's test)
  // Ours.
  int64_t grad_accumulation_steps = 1;   // batches per optimizer step
  std::optional<int64_t> max_steps;      // stop after this many optimizer steps
  std::string device = "auto";           // auto | cpu | cuda | cuda:N | mps
  std::string precision = "fp32";        // fp32 | bf16 (autocast on CUDA and CPU)
  bool fused_adamw = false;              // aten::_fused_adamw_ (PyTorch's fused=True)
  std::string output_dir = "runs/ch05";  // config.yaml, metrics.*, checkpoints/
  int64_t checkpoint_every = 0;          // steps between checkpoints (0: only at the end / Ctrl-C)
  int64_t keep_checkpoints = 2;          // newest checkpoints kept (0: all)
  bool final_checkpoint = true;          // write one when training ends
  SampleConfig sample;

  /// "Step" for chapter 5's log line, "Iter" with appendix D's schedule.
  std::string log_label() const { return lr_schedule == "constant" ? "Step" : "Iter"; }
};

/// Reads a `train:` section (every key optional). Its `data:` subsection belongs to the caller
/// (chapter 5 reads it with parse_pretrain_data_config).
TrainConfig parse_train_config(ConfigNode node);

/// The schedule a config gives for a run of total_steps optimizer steps.
LrSchedule make_lr_schedule(const TrainConfig& config, int64_t total_steps);

/// What the training loop reports to the program around it. Only `loss` is required.
template <typename BatchT = Batch>
struct TrainHooks {
  /// The loss of a batch (required): chapter 5's next-token loss, chapter 6's last-token
  /// classification loss, chapter 7's masked loss, DPO's preference loss.
  LossFn<BatchT> loss;
  /// Input tokens of a batch (tokens_seen); default: batch.input.numel().
  std::function<int64_t(const BatchT&)> count_tokens;
  /// After each optimizer step: its 0-based number and its training loss (the batch loss, summed
  /// over an accumulation group of scaled losses).
  std::function<void(int64_t step, double loss)> on_step;
  /// Each evaluation (the chapter prints format_eval_line(point)).
  std::function<void(const EvalPoint&)> on_eval;
  /// After each epoch, in eval mode without gradients (the book's generate_and_print_sample).
  /// The argument is the 1-based epoch.
  std::function<void(int64_t epoch)> on_epoch_end;
  /// Further metrics at each evaluation (eval mode, no gradients), e.g. accuracies.
  std::function<std::map<std::string, double>()> extra_metrics;
  /// After the backward pass(es) of a step, before clipping: distributed training all-reduces
  /// the gradients here.
  std::function<void()> after_backward;
  /// Parameters to optimize; default: every parameter of the model that requires gradients
  /// (freeze layers or add LoRA adapters before constructing the trainer).
  std::optional<NamedParameters> parameters;
  /// Distributed training (DDP over c10d): each rank trains on its own shard of the data (its
  /// own loaders), all-reduces gradients in after_backward, and only the main process (rank 0)
  /// writes metrics, checkpoints and progress and calls on_eval / on_epoch_end.
  bool is_main_process = true;
  /// Stop at the next step boundary on SIGINT/SIGTERM, saving a checkpoint.
  bool handle_signals = true;
  /// Progress bar redrawn in place (default: when stderr is a terminal).
  std::optional<bool> interactive_progress;
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
  int64_t steps_tokens = 0;
};

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
///   llmfs::Trainer<> trainer(model.ptr(), cfg.train, batch_source(train_loader),
///                            batch_source(val_loader), hooks);
///   if (resume) trainer.resume(llmfs::resolve_checkpoint("latest", cfg.train.output_dir));
///   const auto result = trainer.fit();
template <typename BatchT = Batch>
class Trainer {
 public:
  Trainer(std::shared_ptr<torch::nn::Module> model, TrainConfig config,
          std::shared_ptr<const BatchSource<BatchT>> train_loader,
          std::shared_ptr<const BatchSource<BatchT>> val_loader, TrainHooks<BatchT> hooks);
  ~Trainer();

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
  torch::Tensor batch_loss(const BatchT& batch);
  void write_timing(const TrainResult& result) const;

  std::shared_ptr<torch::nn::Module> model_;
  TrainConfig config_;
  std::shared_ptr<const BatchSource<BatchT>> train_, val_;
  TrainHooks<BatchT> hooks_;
  torch::Device device_;
  std::unique_ptr<AdamW> optimizer_;
  TrainerState state_;
  LrSchedule schedule_;
  std::filesystem::path last_checkpoint_;
  bool resumed_ = false;
};

}  // namespace llmfs
