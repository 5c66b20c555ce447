#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace llmfs {

/// Training progress on stderr. On a terminal a bar redrawn in place (at most 10 times a second):
///
///   [=========>          ] step 45/90 | loss 3.214 | 1,234 tok/s | MFU 61% | ETA 01:23
///
/// In files and pipes no redraws: one log line per evaluation instead (spdlog info):
///
///   step 45/90 (50%) | train 3.214 | val 6.179 | 1,234 tok/s | MFU 61% | ETA 01:23
///
/// (MFU once set_flops() gave the model's FLOPs per token and the peak.)
///
/// Call clear() before printing to stdout on the same terminal (the trainer does so around its
/// callbacks), so the bar never ends up inside the book's lines.
class ProgressBar {
 public:
  /// total_steps: optimizer steps of the whole run; done_steps: those already done when a run
  /// resumes. interactive: redraw in place (default: stderr is a terminal and logging is on).
  ProgressBar(int64_t total_steps, int64_t done_steps, bool interactive);
  ~ProgressBar();

  /// After each optimizer step (steps_done counts from 1), with the step's input tokens and loss.
  void step(int64_t steps_done, int64_t tokens, double loss);

  /// After an evaluation: the non-interactive line (or a redraw).
  void evaluation(int64_t steps_done, double train_loss, double val_loss);

  /// Erases the bar (interactive mode) until the next redraw.
  void clear();

  /// Erases the bar for good.
  void finish();

  /// Tokens per second over the training steps of this process so far.
  double tokens_per_second() const;
  /// Adds MFU to the lines: tokens/s · flops_per_token over peak_flops (all devices together).
  void set_flops(double flops_per_token, double peak_flops);
  /// Model FLOPs utilization at tokens_per_second() (0 without set_flops).
  double mfu() const;
  /// Seconds remaining at the current pace ("--:--" before the first step).
  std::string eta() const;

  /// Whether stderr is a terminal.
  static bool stderr_is_terminal();

 private:
  void draw(bool force);
  std::string rates() const;  // "1,234 tok/s" [" | MFU 61%"]
  double seconds_since_start() const;

  int64_t total_, first_done_, done_;
  bool interactive_;
  bool drawn_ = false;
  double last_loss_ = 0.0;
  double flops_per_token_ = 0.0, peak_flops_ = 0.0;
  int64_t tokens_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// Seconds as "MM:SS", or "H:MM:SS" from an hour on.
std::string format_duration(double seconds);

}  // namespace llmfs
