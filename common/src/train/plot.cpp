// A run's figures, drawn by scripts/plot_metrics.py (matplotlib) after training.
#include "llmfs/train/plot.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

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
  const auto cmd = fmt::format("\"{}\" \"{}\" \"{}\" 2>/dev/null", py, script.string(),
                               run_dir.string());
  // The script's notes (a figure with fewer than two points) go into the log.
  std::vector<std::string> notes;
  int status = -1;
  if (FILE* pipe = ::popen(cmd.c_str(), "r")) {
    std::array<char, 512> buffer{};
    std::string line;
    while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), pipe) != nullptr) {
      line += buffer.data();
      if (line.empty() || line.back() != '\n') continue;
      line.pop_back();
      if (line.starts_with("note: ")) notes.push_back(line.substr(6));
      line.clear();
    }
    status = ::pclose(pipe);
  }
  if (status == 0) {
    spdlog::info("figures: {}/loss.png", run_dir.string());
    for (const auto& note : notes) spdlog::warn("figures: {}", note);
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
