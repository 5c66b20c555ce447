#pragma once

#include <filesystem>
#include <string_view>

#include "llmfs/train/trainer.h"

namespace llmfs {

/// Draws a run's figures (loss.png, and the accuracy figures where the run measured accuracies)
/// with scripts/plot_metrics.py when Python is at hand (LLMFS_PYTHON, or the setup's virtual
/// environment); otherwise logs the command to run. A failing script is a warning, never an
/// error: the run's outputs are already written.
void plot_run_metrics(const std::filesystem::path& run_dir);

/// A run stopped by a signal: logs the signal, the step, the checkpoint and the command that
/// continues it (`resume_command`, e.g. "ch07 finetune --resume latest"); returns whether it was.
/// Chapters exit with 130 then.
bool report_interrupted(const TrainResult& result, std::string_view resume_command);

/// After a finished run: its figures (plot_run_metrics, when it evaluated) and "Model saved in
/// <checkpoint>" when it wrote one.
void report_run_outputs(const TrainResult& result, const std::filesystem::path& run_dir);

}  // namespace llmfs
