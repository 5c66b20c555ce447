#include "llmfs/train/lr_schedule.h"

#include <cmath>
#include <numbers>

#include "llmfs/core/error.h"

namespace llmfs {

LrSchedule::LrSchedule(Kind kind, double initial_lr, double peak_lr, double min_lr,
                       int64_t warmup_steps, int64_t total_steps)
    : kind_(kind),
      initial_lr_(initial_lr),
      peak_lr_(peak_lr),
      min_lr_(min_lr),
      warmup_steps_(warmup_steps),
      total_steps_(total_steps) {
  if (initial_lr < 0 || peak_lr < 0 || min_lr < 0) {
    fail("learning-rate schedule: rates must not be negative (initial {}, peak {}, min {})",
         initial_lr, peak_lr, min_lr);
  }
  if (warmup_steps < 0) fail("learning-rate schedule: warmup_steps ({}) < 0", warmup_steps);
}

LrSchedule LrSchedule::constant(double lr) { return {Kind::kConstant, lr, lr, lr, 0, 0}; }

LrSchedule LrSchedule::warmup_cosine(double initial_lr, double peak_lr, double min_lr,
                                     int64_t warmup_steps, int64_t total_steps) {
  if (total_steps < 0) fail("learning-rate schedule: total steps ({}) < 0", total_steps);
  if (warmup_steps >= total_steps && total_steps > 0) {
    fail("learning-rate schedule: warmup_steps ({}) must be below the total steps ({})",
         warmup_steps, total_steps);
  }
  return {Kind::kWarmupCosine, initial_lr, peak_lr, min_lr, warmup_steps, total_steps};
}

LrSchedule LrSchedule::warmup_only(double initial_lr, double peak_lr, int64_t warmup_steps) {
  return {Kind::kWarmupOnly, initial_lr, peak_lr, peak_lr, warmup_steps, 0};
}

double LrSchedule::lr(int64_t step) const {
  if (kind_ == Kind::kConstant) return peak_lr_;
  if (step < warmup_steps_) {
    // The book adds step · lr_increment, the increment computed once (float64).
    const double increment = (peak_lr_ - initial_lr_) / static_cast<double>(warmup_steps_);
    return initial_lr_ + static_cast<double>(step) * increment;
  }
  if (kind_ == Kind::kWarmupOnly) return peak_lr_;
  const double progress =
      static_cast<double>(step - warmup_steps_) / static_cast<double>(total_steps_ - warmup_steps_);
  return min_lr_ + (peak_lr_ - min_lr_) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
}

std::string LrSchedule::name() const {
  switch (kind_) {
    case Kind::kConstant:
      return "constant";
    case Kind::kWarmupCosine:
      return "warmup_cosine";
    case Kind::kWarmupOnly:
      return "warmup_only";
  }
  return "?";
}

int64_t warmup_steps_from_fraction(double fraction, int64_t total_steps) {
  if (!(fraction >= 0.0 && fraction < 1.0)) fail("warmup fraction {} not in [0, 1)", fraction);
  return static_cast<int64_t>(fraction * static_cast<double>(total_steps));
}

}  // namespace llmfs
