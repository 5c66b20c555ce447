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

}  // namespace llmfs
