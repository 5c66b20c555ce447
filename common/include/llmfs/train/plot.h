#pragma once

#include <filesystem>

namespace llmfs {

/// Draws a run's figures (loss.png, and the accuracy figures where the run measured accuracies)
/// with scripts/plot_metrics.py when Python is at hand (LLMFS_PYTHON, or the setup's virtual
/// environment); otherwise logs the command to run. A failing script is a warning, never an
/// error: the run's outputs are already written.
void plot_run_metrics(const std::filesystem::path& run_dir);

}  // namespace llmfs
