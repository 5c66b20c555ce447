#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace llmfs {

/// One evaluation of the training loop (book §5.2): after optimizer step `step` (0-based,
/// counted over all epochs) of epoch `epoch` (1-based), the mean losses over eval_iter batches
/// of the training and the validation loader.
struct EvalPoint {
  int64_t epoch = 0;
  int64_t step = 0;
  int64_t tokens_seen = 0;
  double train_loss = 0.0;
  double val_loss = 0.0;
  double lr = 0.0;                      // the rate used by this step
  std::map<std::string, double> extra;  // further metrics of a custom evaluation (accuracy, ...)
  // Timing; informational, differs between runs.
  double elapsed_s = 0.0;     // training time so far (this process and those resumed)
  double tokens_per_s = 0.0;  // since the previous evaluation
  double mfu = 0.0;           // model FLOPs utilization at that pace (train/mfu.h); 0: unknown

  /// Equal in everything but timing.
  bool same_values(const EvalPoint& other) const;
};

/// Metrics a program computes after an epoch (TrainHooks::on_epoch_end): chapter 6's training
/// and validation accuracy over whole loaders, for instance.
struct EpochMetrics {
  int64_t epoch = 0;  // 1-based
  int64_t step = 0;   // the last optimizer step of the epoch
  int64_t tokens_seen = 0;
  std::map<std::string, double> metrics;

  bool operator==(const EpochMetrics&) const = default;
};

/// What the book's train_model_simple / train_model return: the losses and tokens seen at each
/// evaluation, the learning rate of every step (appendix D's track_lrs), plus the points.
struct TrainHistory {
  std::vector<EvalPoint> points;
  std::vector<double> track_lrs;
  std::vector<EpochMetrics> epochs;  // what on_epoch_end returned, epoch by epoch

  std::vector<double> train_losses() const;
  std::vector<double> val_losses() const;
  std::vector<int64_t> track_tokens_seen() const;
};

/// The book's evaluation line: `Ep 1 (Step 000000): Train loss 9.781, Val loss 9.933`, with
/// label "Step" (chapter 5) or "Iter" (appendix D).
std::string format_eval_line(const EvalPoint& point, std::string_view label = "Step");

/// EvalPoint as one JSON object (one line) and back. llmfs::Error for malformed input.
std::string eval_point_to_json(const EvalPoint& point);
EvalPoint eval_point_from_json(std::string_view line);

/// EpochMetrics as one JSON object (one line, with "event": "epoch_end") and back.
std::string epoch_metrics_to_json(const EpochMetrics& epoch);
EpochMetrics epoch_metrics_from_json(std::string_view line);

/// Appends every evaluation to `<dir>/metrics.jsonl` and `<dir>/metrics.csv` (columns epoch, step,
/// tokens_seen, train_loss, val_loss, lr, elapsed_s, tokens_per_s, then the extra metrics of the
/// first point), for tests and scripts/plot_metrics.py. Values keep full precision (17 digits).
/// Epoch-end metrics go into metrics.jsonl too (lines with "event": "epoch_end") and into
/// `<dir>/epoch_metrics.csv` (epoch, step, tokens_seen, then the metrics of the first epoch).
class MetricsWriter {
 public:
  explicit MetricsWriter(std::filesystem::path dir);

  /// Replaces both files with `points` (atomically): a fresh run writes an empty history, a
  /// resumed run the history of its checkpoint, dropping evaluations made after it.
  void reset(const std::vector<EvalPoint>& points, const std::vector<EpochMetrics>& epochs = {});

  /// Appends one point to both files (and flushes).
  void append(const EvalPoint& point);

  /// Appends one epoch's metrics to metrics.jsonl and epoch_metrics.csv.
  void append_epoch(const EpochMetrics& epoch);

  const std::filesystem::path& jsonl_path() const { return jsonl_; }
  const std::filesystem::path& csv_path() const { return csv_; }

 private:
  std::string csv_header() const;
  std::string csv_row(const EvalPoint& point) const;
  std::string epoch_csv_header() const;
  std::string epoch_csv_row(const EpochMetrics& epoch) const;

  std::filesystem::path jsonl_, csv_, epoch_csv_;
  std::vector<std::string> extra_columns_, epoch_columns_;
};

/// Reads a metrics.jsonl file: its evaluations (read_metrics_history: also the epoch-end
/// metrics). llmfs::Error naming the file and line for malformed content.
std::vector<EvalPoint> read_metrics_jsonl(const std::filesystem::path& path);
TrainHistory read_metrics_history(const std::filesystem::path& path);

}  // namespace llmfs
