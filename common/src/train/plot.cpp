// A run's figures, drawn by scripts/plot_metrics.py (matplotlib) after training.
#include "llmfs/train/plot.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string>

#include "llmfs/core/build_info.h"
#include "llmfs/core/data_files.h"

namespace llmfs {

namespace fs = std::filesystem;

void plot_run_metrics(const fs::path& run_dir) {
  const char* python = std::getenv("LLMFS_PYTHON");
  const auto venv = cache_root() / "venv/bin/python";
  const std::string py = python ? python : (fs::exists(venv) ? venv.string() : "");
  const fs::path script = fs::path(kSourceDir) / "scripts/plot_metrics.py";
  if (py.empty() || !fs::exists(script)) {
    spdlog::info("figures: run scripts/plot_metrics.py {}", run_dir.string());
    return;
  }
  const auto cmd = fmt::format("\"{}\" \"{}\" \"{}\" >/dev/null 2>&1", py, script.string(),
                               run_dir.string());
  if (std::system(cmd.c_str()) == 0) {
    spdlog::info("figures: {}/loss.png", run_dir.string());
  } else {
    spdlog::warn("figures: scripts/plot_metrics.py {} failed", run_dir.string());
  }
}

bool report_interrupted(const TrainResult& result, std::string_view resume_command) {
  if (!result.interrupted) return false;
  if (result.checkpoint.empty()) {  // a rank other than 0 (rank 0 writes the checkpoint)
    spdlog::error("{} at step {}: stopped with every rank", result.signal, result.global_step);
  } else {
    spdlog::error("{} at step {}: checkpoint {}; continue with: {}", result.signal,
                  result.global_step, result.checkpoint.string(), resume_command);
  }
  return true;
}

void report_run_outputs(const TrainResult& result, const fs::path& run_dir) {
  if (!result.history.val_losses().empty()) plot_run_metrics(run_dir);
  if (!result.checkpoint.empty()) fmt::print("Model saved in {}\n", result.checkpoint.string());
}

}  // namespace llmfs
