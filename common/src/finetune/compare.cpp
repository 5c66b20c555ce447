// `ch06 compare`: several finetuning strategies, one table.
#include "llmfs/finetune/compare.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "llmfs/core/file_io.h"
#include "llmfs/core/repr.h"

namespace llmfs {

namespace fs = std::filesystem;

namespace {

struct Column {
  const char* title;
  std::function<std::string(const CompareRow&)> value;
};

const std::vector<Column>& columns() {
  static const std::vector<Column> cols = {
      {"strategy", [](const CompareRow& r) { return r.name; }},
      {"trainable", [](const CompareRow& r) { return r.trainable; }},
      {"pooling", [](const CompareRow& r) { return r.pooling; }},
      {"batch", [](const CompareRow& r) { return std::to_string(r.batch_size); }},
      {"trainable params",
       [](const CompareRow& r) { return group_thousands(r.trainable_parameters); }},
      {"train acc", [](const CompareRow& r) { return fmt::format("{:.2f}%", r.train_accuracy * 100); }},
      {"val acc", [](const CompareRow& r) { return fmt::format("{:.2f}%", r.val_accuracy * 100); }},
      {"test acc", [](const CompareRow& r) { return fmt::format("{:.2f}%", r.test_accuracy * 100); }},
      {"time (s)", [](const CompareRow& r) { return fmt::format("{:.1f}", r.seconds); }},
      {"tokens/s", [](const CompareRow& r) { return fmt::format("{:.0f}", r.tokens_per_s); }},
  };
  return cols;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::vector<CompareRow> compare_strategies(
    const std::vector<std::string>& configs, const CompareOptions& options,
    const std::function<ClassifierRunConfig(ConfigNode)>& parse) {
  if (configs.empty()) fail("compare: no configs given");
  struct Planned {
    std::string name;
    ClassifierRunConfig config;
    std::string yaml;
  };
  std::vector<Planned> planned;
  for (const auto& file : configs) {
    const std::string name = fs::path(file).stem().string();
    for (const auto& p : planned) {
      if (p.name == name) fail("compare: two configs named '{}' ({})", name, file);
    }
    auto overrides = options.overrides;
    overrides.push_back("train.output_dir=" + (fs::path(options.output_dir) / name).string());
    ConfigDocument document(file, overrides);
    auto config = parse(document.root());
    document.finish();
    if (!config.final_eval) {
      fail("{}: final_eval: false, but a comparison is of the accuracies; set it to true", file);
    }
    planned.push_back({name, std::move(config), document.resolved_yaml()});
  }
  fs::create_directories(options.output_dir);
  std::vector<CompareRow> rows;
  for (const auto& p : planned) {
    spdlog::info("compare: {} ({} of {}) into {}", p.name, rows.size() + 1, planned.size(),
                 p.config.train.output_dir);
    const auto result = finetune_classifier(
        p.config, {.overwrite = true, .config_yaml = p.yaml, .handle_signals = false},
        options.callbacks);
    CompareRow row;
    row.name = p.name;
    row.trainable = p.config.classifier.trainable;
    row.pooling = p.config.classifier.pooling;
    row.batch_size = p.config.train.batch_size;
    row.trainable_parameters = result.trainable_parameters;
    row.train_accuracy = result.train_accuracy.accuracy();
    row.val_accuracy = result.val_accuracy.accuracy();
    row.test_accuracy = result.test_accuracy.accuracy();
    row.seconds = result.seconds;
    row.tokens_per_s = result.tokens_per_s;
    rows.push_back(row);
    write_file_atomic(fs::path(options.output_dir) / "compare.csv", compare_csv(rows));
    write_file_atomic(fs::path(options.output_dir) / "compare.md", compare_markdown(rows));
  }
  return rows;
}

std::string format_compare_table(const std::vector<CompareRow>& rows) {
  const auto& cols = columns();
  std::vector<size_t> width;
  for (const auto& c : cols) {
    size_t w = std::string(c.title).size();
    for (const auto& r : rows) w = std::max(w, c.value(r).size());
    width.push_back(w);
  }
  std::string out;
  for (size_t i = 0; i < cols.size(); ++i) {
    out += i == 0 ? fmt::format("{:<{}}", cols[i].title, width[i])
                  : fmt::format("  {:>{}}", cols[i].title, width[i]);
  }
  out += "\n";
  for (const auto& r : rows) {
    for (size_t i = 0; i < cols.size(); ++i) {
      const auto v = cols[i].value(r);
      out += i == 0 ? fmt::format("{:<{}}", v, width[i]) : fmt::format("  {:>{}}", v, width[i]);
    }
    out += "\n";
  }
  return out;
}

std::string compare_csv(const std::vector<CompareRow>& rows) {
  std::string out =
      "strategy,trainable,pooling,batch_size,trainable_parameters,train_accuracy,val_accuracy,"
      "test_accuracy,seconds,tokens_per_s\n";
  for (const auto& r : rows) {
    out += fmt::format("{},{},{},{},{},{:.6f},{:.6f},{:.6f},{:.3f},{:.1f}\n", csv_field(r.name),
                       r.trainable, r.pooling, r.batch_size, r.trainable_parameters,
                       r.train_accuracy, r.val_accuracy, r.test_accuracy, r.seconds,
                       r.tokens_per_s);
  }
  return out;
}

std::string compare_markdown(const std::vector<CompareRow>& rows) {
  const auto& cols = columns();
  std::string out = "|";
  for (const auto& c : cols) out += fmt::format(" {} |", c.title);
  out += "\n|";
  for (size_t i = 0; i < cols.size(); ++i) out += i == 0 ? "---|" : "---:|";
  out += "\n";
  for (const auto& r : rows) {
    out += "|";
    for (const auto& c : cols) out += fmt::format(" {} |", c.value(r));
    out += "\n";
  }
  return out;
}

}  // namespace llmfs
