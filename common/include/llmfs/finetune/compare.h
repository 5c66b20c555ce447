#pragma once

#include <functional>
#include <string>
#include <vector>

#include "llmfs/config/config_node.h"
#include "llmfs/finetune/classifier_run.h"

namespace llmfs {

/// How compare_strategies runs its configs.
struct CompareOptions {
  /// Each run goes into <output_dir>/<config file stem>/; the tables into compare.csv/.md.
  std::string output_dir = "runs/ch06-compare";
  /// `key.sub=value` overrides applied to every config (e.g. a small base model for a quick try).
  std::vector<std::string> overrides;
  ClassifierCallbacks callbacks;
};

/// One strategy's line of the table.
struct CompareRow {
  std::string name;  // the config file's stem
  std::string trainable, pooling;
  int64_t batch_size = 0;
  int64_t trainable_parameters = 0;
  double train_accuracy = 0.0, val_accuracy = 0.0, test_accuracy = 0.0;  // whole splits
  double seconds = 0.0;
  double tokens_per_s = 0.0;
};

/// Runs finetune_classifier for each config file in turn (all of them are read and checked
/// first, so a bad config fails before any run), each a fresh run into its own folder, and
/// writes compare.csv and compare.md after every run. `parse` reads a whole config (the chapter's
/// parse function).
std::vector<CompareRow> compare_strategies(
    const std::vector<std::string>& configs, const CompareOptions& options,
    const std::function<ClassifierRunConfig(ConfigNode)>& parse);

/// The rows as an aligned text table, as CSV (header line first) and as a Markdown table.
std::string format_compare_table(const std::vector<CompareRow>& rows);
std::string compare_csv(const std::vector<CompareRow>& rows);
std::string compare_markdown(const std::vector<CompareRow>& rows);

}  // namespace llmfs
