// The training progress bar (stderr): redrawn on terminals, one line per evaluation elsewhere.
#include "llmfs/train/progress.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>

#include "llmfs/core/repr.h"

namespace llmfs {

namespace {
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
constexpr int kBarWidth = 20;
}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{:02d}:{:02d}", s / 60, s % 60);
}

bool ProgressBar::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(int64_t total_steps, int64_t done_steps, bool interactive)
    : total_(total_steps),
      first_done_(done_steps),
      done_(done_steps),
      interactive_(interactive),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - kRedrawInterval) {}

ProgressBar::~ProgressBar() { clear(); }

double ProgressBar::seconds_since_start() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double ProgressBar::tokens_per_second() const {
  const double t = seconds_since_start();
  return t > 0 ? static_cast<double>(tokens_) / t : 0.0;
}

void ProgressBar::set_flops(double flops_per_token, double peak_flops) {
  flops_per_token_ = flops_per_token;
  peak_flops_ = peak_flops;
}

double ProgressBar::mfu() const {
  if (flops_per_token_ <= 0 || peak_flops_ <= 0) return 0.0;
  return tokens_per_second() * flops_per_token_ / peak_flops_;
}

std::string ProgressBar::rates() const {
  std::string out = group_thousands(static_cast<int64_t>(std::llround(tokens_per_second()))) + " tok/s";
  if (mfu() > 0) out += fmt::format(" | MFU {:.0f}%", 100.0 * mfu());
  return out;
}

std::string ProgressBar::eta() const {
  const int64_t done_here = done_ - first_done_;
  if (done_here <= 0) return "--:--";
  const double per_step = seconds_since_start() / static_cast<double>(done_here);
  return format_duration(per_step * static_cast<double>(std::max<int64_t>(total_ - done_, 0)));
}

void ProgressBar::step(int64_t steps_done, int64_t tokens, double loss) {
  done_ = steps_done;
  tokens_ += tokens;
  last_loss_ = loss;
  draw(false);
}

void ProgressBar::evaluation(int64_t steps_done, double train_loss, double val_loss) {
  done_ = steps_done;
  if (interactive_) {
    draw(true);
    return;
  }
  const double percent = total_ > 0 ? 100.0 * static_cast<double>(done_) / total_ : 100.0;
  spdlog::info("step {}/{} ({:.0f}%) | train {:.3f} | val {:.3f} | {} | ETA {}", done_, total_,
               percent, train_loss, val_loss, rates(), eta());
}

void ProgressBar::draw(bool force) {
  if (!interactive_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < kRedrawInterval && done_ < total_) return;
  last_draw_ = now;
  const double fraction = total_ > 0 ? std::min(1.0, static_cast<double>(done_) / total_) : 1.0;
  const int filled = static_cast<int>(fraction * kBarWidth);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < kBarWidth) bar += '>';
  bar.resize(kBarWidth, ' ');
  // \r and "erase to end of line": the bar replaces itself.
  fmt::print(stderr, "\r\033[K[{}] step {}/{} | loss {:.3f} | {} | ETA {}", bar, done_, total_,
             last_loss_, rates(), eta());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (!interactive_ || !drawn_) return;
  fmt::print(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

void ProgressBar::finish() {
  clear();
  interactive_ = false;
}

}  // namespace llmfs
