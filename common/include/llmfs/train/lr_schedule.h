#pragma once

#include <cstdint>
#include <string>

namespace llmfs {

/// The learning rate of every optimizer step (BOOK.md §11.1, appendix D).
///
///   constant:       lr(s) = peak for every step (chapter 5: the optimizer's rate, never written).
///   warmup_cosine:  lr(s) = initial + s · (peak − initial) / W                  for s < W,
///                   lr(s) = min + (peak − min) · ½ · (1 + cos(π (s − W) / (T − W)))  for s ≥ W,
/// with s the 0-based step counted over all epochs, W warmup steps and T total steps. The
/// arithmetic is float64, term for term as the book's loop, so the values equal its track_lrs.
///
///   auto schedule = llmfs::LrSchedule::warmup_cosine(1e-5, 1e-3, 1e-5, 27, 135);
///   schedule.lr(27)  // 0.001
class LrSchedule {
 public:
  /// The same rate at every step.
  static LrSchedule constant(double lr);

  /// Linear warmup from initial_lr to peak_lr over warmup_steps, then cosine decay to min_lr at
  /// total_steps. llmfs::Error when warmup_steps is negative or not below total_steps (unless
  /// both are 0), or a rate is negative.
  static LrSchedule warmup_cosine(double initial_lr, double peak_lr, double min_lr,
                                  int64_t warmup_steps, int64_t total_steps);

  /// Linear warmup only (the book's D.1 demo): peak after warmup_steps, no decay.
  static LrSchedule warmup_only(double initial_lr, double peak_lr, int64_t warmup_steps);

  /// The learning rate of 0-based step `step`.
  double lr(int64_t step) const;

  /// False for constant: the trainer then leaves the optimizer's rate alone, as chapter 5 does.
  bool writes_lr() const { return kind_ != Kind::kConstant; }

  int64_t warmup_steps() const { return warmup_steps_; }
  int64_t total_steps() const { return total_steps_; }
  double peak_lr() const { return peak_lr_; }

  /// "constant", "warmup_cosine" or "warmup_only".
  std::string name() const;

 private:
  enum class Kind { kConstant, kWarmupCosine, kWarmupOnly };
  LrSchedule(Kind kind, double initial_lr, double peak_lr, double min_lr, int64_t warmup_steps,
             int64_t total_steps);

  Kind kind_;
  double initial_lr_, peak_lr_, min_lr_;
  int64_t warmup_steps_, total_steps_;
};

/// Warmup steps as a fraction of the total, truncated as Python's int(): int(0.2 · 135) = 27
/// (BOOK.md CD-01).
int64_t warmup_steps_from_fraction(double fraction, int64_t total_steps);

}  // namespace llmfs
