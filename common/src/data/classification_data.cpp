#include "llmfs/data/classification_data.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <memory>
#include <set>
#include <string_view>
#include <utility>

#include "llmfs/core/data_files.h"
#include "llmfs/core/error.h"
#include "llmfs/core/numpy_random.h"
#include "llmfs/data/text_table.h"

namespace llmfs {

namespace {

constexpr int64_t kMaxSeed = std::numeric_limits<uint32_t>::max();

std::string class_list(const std::vector<std::string>& classes) {
  std::string out;
  for (const auto& name : classes) out += (out.empty() ? "" : ", ") + name;
  return out;
}

/// The label id of a label field: the index of its class name, or the id itself written as a
/// decimal number; nullopt when it is neither.
std::optional<int64_t> label_id(std::string_view label, const std::vector<std::string>& classes) {
  const auto it = std::find(classes.begin(), classes.end(), label);
  if (it != classes.end()) return it - classes.begin();
  int64_t id = -1;
  const auto [end, ec] = std::from_chars(label.data(), label.data() + label.size(), id);
  if (ec == std::errc() && end == label.data() + label.size() && !label.empty() && id >= 0 &&
      id < static_cast<int64_t>(classes.size())) {
    return id;
  }
  return std::nullopt;
}

NumpyRandomState numpy_random_state(int64_t seed, std::string_view who) {
  if (seed < 0 || seed > kMaxSeed) {
    fail("{}: the seed must be in 0 ... 2^32 - 1 (numpy's RandomState), got {}", who, seed);
  }
  return NumpyRandomState(static_cast<uint32_t>(seed));
}

std::vector<int64_t> encode_plain(const Tokenizer& tokenizer, const LabeledText& text) {
  try {
    return tokenizer.encode(text.text);
  } catch (const Error& e) {
    fail("row {} (file line {}): {}", text.row, text.line, e.what());
  }
}

}  // namespace

ClassificationDataConfig parse_classification_data_config(
    ConfigNode node, const ClassificationDataConfig& defaults) {
  ClassificationDataConfig c = defaults;
  node.read("file", c.file);
  node.read<std::string>("format", c.format, one_of({"sms", "csv", "tsv"}));
  node.read<std::string>("read_mode", c.read_mode, one_of({"book", "plain"}));
  node.read("text_column", c.text_column);
  node.read("label_column", c.label_column);
  node.read("classes", c.classes);
  node.read("balance", c.balance);
  node.read("seed", c.seed, in_range(int64_t{0}, kMaxSeed));
  node.read("train_frac", c.train_frac);
  node.read("validation_frac", c.validation_frac);
  node.read("max_length", c.max_length);
  node.read("pad_token_id", c.pad_token_id, at_least(int64_t{0}));
  node.read("trim_padding", c.trim_padding);

  node.check(!c.file.empty(), "file", "must name a data file or a path");
  node.check(c.format != "sms" || (c.text_column == "Text" && c.label_column == "Label"), "format",
             "the sms format has the columns Label and Text (got text_column '{}', "
             "label_column '{}'); other columns need a csv or tsv file with a header row",
             c.text_column, c.label_column);
  node.check(c.classes.size() >= 2, "classes", "needs at least two class names, got {}",
             c.classes.size());
  const std::set<std::string> unique(c.classes.begin(), c.classes.end());
  node.check(unique.size() == c.classes.size(), "classes", "class names must be unique, got [{}]",
             class_list(c.classes));
  node.check(!unique.contains(""), "classes", "class names must not be empty");
  node.check(c.train_frac > 0.0 && c.train_frac < 1.0, "train_frac", "must be in (0, 1), got {}",
             c.train_frac);
  node.check(c.validation_frac > 0.0 && c.validation_frac < 1.0, "validation_frac",
             "must be in (0, 1), got {}", c.validation_frac);
  node.check(c.train_frac + c.validation_frac < 1.0, "validation_frac",
             "train_frac + validation_frac must be below 1 (the test split is the rest), got {}",
             c.train_frac + c.validation_frac);
  node.check(!c.max_length || *c.max_length >= 1, "max_length", "must be >= 1 or null, got {}",
             c.max_length.value_or(0));
  return c;
}

std::vector<LabeledText> read_labeled_texts(const ClassificationDataConfig& config) {
  const auto path = input_file(config.file);
  TextTable table;
  if (config.format == "sms") {
    table = read_sms_collection(path, config.read_mode);
  } else if (config.format == "csv" || config.format == "tsv") {
    table = read_csv(path, config.format == "tsv" ? '\t' : ',');
  } else {
    fail("{}: unknown data format '{}' (sms, csv or tsv)", path.string(), config.format);
  }
  const auto text_col = static_cast<size_t>(table.column(config.text_column));
  const auto label_col = static_cast<size_t>(table.column(config.label_column));
  std::vector<LabeledText> out;
  out.reserve(table.rows.size());
  for (size_t i = 0; i < table.rows.size(); ++i) {
    const auto& row = table.rows[i];
    const int64_t line = table.lines[i];
    const auto label = label_id(row[label_col], config.classes);
    if (!label) {
      fail("{}:{}: label '{}' is not one of the classes ({})", table.source, line, row[label_col],
           class_list(config.classes));
    }
    if (row[text_col].empty()) {
      fail("{}:{}: empty text in column '{}'", table.source, line, config.text_column);
    }
    out.push_back({row[text_col], *label, static_cast<int64_t>(i), line});
  }
  return out;
}

std::vector<LabeledText> balance_classes(const std::vector<LabeledText>& texts, int64_t num_classes,
                                         int64_t seed) {
  if (num_classes < 1) fail("balance_classes: num_classes must be at least 1, got {}", num_classes);
  std::vector<std::vector<const LabeledText*>> by_class(static_cast<size_t>(num_classes));
  for (const auto& t : texts) {
    if (t.label < 0 || t.label >= num_classes) {
      fail("balance_classes: row {} (line {}) has label {}, outside [0, {})", t.row, t.line,
           t.label, num_classes);
    }
    by_class[static_cast<size_t>(t.label)].push_back(&t);
  }
  size_t smallest = texts.size();
  for (int64_t c = 0; c < num_classes; ++c) {
    const auto& rows = by_class[static_cast<size_t>(c)];
    if (rows.empty()) fail("balance_classes: class {} has no rows, nothing to balance to", c);
    smallest = std::min(smallest, rows.size());
  }
  std::vector<LabeledText> out;
  out.reserve(smallest * static_cast<size_t>(num_classes));
  for (const auto& rows : by_class) {
    if (rows.size() == smallest) {
      for (const auto* t : rows) out.push_back(*t);
      continue;
    }
    auto rs = numpy_random_state(seed, "balance_classes");
    for (const int64_t i :
         rs.choice(static_cast<int64_t>(rows.size()), static_cast<int64_t>(smallest))) {
      out.push_back(*rows[static_cast<size_t>(i)]);
    }
  }
  return out;
}

ClassificationSplits split_dataset(std::vector<LabeledText> texts, double train_frac,
                                   double validation_frac, int64_t seed) {
  if (!(train_frac > 0.0 && validation_frac > 0.0 && train_frac + validation_frac < 1.0)) {
    fail("split_dataset: need train_frac > 0, validation_frac > 0 and a sum below 1, got {} and {}",
         train_frac, validation_frac);
  }
  const auto n = static_cast<int64_t>(texts.size());
  auto rs = numpy_random_state(seed, "split_dataset");
  const auto order = rs.permutation(n);
  // Python's int(len(df) * frac).
  const auto train_end = static_cast<int64_t>(static_cast<double>(n) * train_frac);
  const auto validation_end =
      train_end + static_cast<int64_t>(static_cast<double>(n) * validation_frac);
  const auto check = [&](std::string_view part, int64_t size, std::string_view rule) {
    if (size <= 0) {
      fail(
          "split_dataset: the {} split of {} rows comes out empty ({}); use more data or change "
          "train_frac ({}) / validation_frac ({})",
          part, n, rule, train_frac, validation_frac);
    }
  };
  check("training", train_end, fmt::format("int({} * {}) = 0", n, train_frac));
  check("validation", validation_end - train_end,
        fmt::format("int({} * {}) = 0", n, validation_frac));
  check("test", n - validation_end, "no rows left after training and validation");
  ClassificationSplits splits;
  for (int64_t i = 0; i < n; ++i) {
    auto& part = i < train_end        ? splits.train
                 : i < validation_end ? splits.validation
                                      : splits.test;
    part.push_back(std::move(texts[static_cast<size_t>(order[static_cast<size_t>(i)])]));
  }
  return splits;
}

ClassificationSplits prepare_classification_data(const ClassificationDataConfig& config) {
  auto texts = read_labeled_texts(config);
  std::vector<int64_t> counts(config.classes.size(), 0);
  for (const auto& t : texts) ++counts[static_cast<size_t>(t.label)];
  for (size_t c = 0; c < counts.size(); ++c) {
    if (counts[c] == 0) {
      fail("{}: class '{}' has no rows (classes: {})", config.file, config.classes[c],
           class_list(config.classes));
    }
  }
  if (config.balance) {
    texts = balance_classes(texts, static_cast<int64_t>(config.classes.size()), config.seed);
  }
  auto splits =
      split_dataset(std::move(texts), config.train_frac, config.validation_frac, config.seed);
  splits.classes = config.classes;
  return splits;
}

void write_split_csvs(const std::filesystem::path& dir, const ClassificationSplits& splits) {
  const auto write = [&](const std::vector<LabeledText>& part, const char* name) {
    TextTable table;
    table.columns = {"Label", "Text"};
    table.rows.reserve(part.size());
    for (const auto& t : part) table.rows.push_back({std::to_string(t.label), t.text});
    write_csv(dir / name, table);
  };
  write(splits.train, "train.csv");
  write(splits.validation, "validation.csv");
  write(splits.test, "test.csv");
}

ClassificationDataset::ClassificationDataset(const std::vector<LabeledText>& texts,
                                             const Tokenizer& tokenizer,
                                             std::optional<int64_t> max_length,
                                             int64_t pad_token_id,
                                             std::optional<int64_t> context_length) {
  if (max_length && *max_length < 1) {
    fail("ClassificationDataset: max_length must be at least 1, got {}", *max_length);
  }
  if (!max_length && texts.empty()) {
    fail("ClassificationDataset: no texts to take the padding length from; give a max_length");
  }
  std::vector<std::vector<int64_t>> encoded;
  encoded.reserve(texts.size());
  labels_.reserve(texts.size());
  int64_t longest = 0;
  for (const auto& t : texts) {
    encoded.push_back(encode_plain(tokenizer, t));
    labels_.push_back(t.label);
    longest = std::max(longest, static_cast<int64_t>(encoded.back().size()));
  }
  // Without a max_length the padding length is the longest text, cut to the context length
  // (longer texts are truncated, as the book's classify_review truncates).
  max_length_ = max_length.value_or(
      context_length ? std::min(longest, *context_length) : longest);
  if (context_length && max_length_ > *context_length) {
    fail(
        "ClassificationDataset: the padding length {} exceeds the model's context length {}; "
        "set data.max_length to at most {}",
        max_length_, *context_length, *context_length);
  }
  const auto n = static_cast<int64_t>(texts.size());
  inputs_ = torch::full({n, max_length_}, pad_token_id, torch::kInt64);
  auto acc = inputs_.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& ids = encoded[static_cast<size_t>(i)];
    const int64_t len = std::min(static_cast<int64_t>(ids.size()), max_length_);
    if (static_cast<int64_t>(ids.size()) > max_length_) ++truncated_;
    for (int64_t j = 0; j < len; ++j) acc[i][j] = ids[static_cast<size_t>(j)];
  }
  if (truncated_ > 0) {
    spdlog::warn("{} of {} texts are longer than {}={} tokens and were truncated", truncated_, n,
                 max_length ? "max_length" : "the model's context length", max_length_);
  }
}

Example ClassificationDataset::get(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < size(), "ClassificationDataset: index ", index,
              " out of range for ", size(), " examples");
  return {inputs_[index].clone(),
          torch::tensor(labels_[static_cast<size_t>(index)], torch::kInt64)};
}

ClassificationLoaders make_classification_loaders(const ClassificationSplits& splits,
                                                  const Tokenizer& tokenizer,
                                                  const ClassificationDataConfig& config,
                                                  int64_t batch_size, int64_t torch_seed,
                                                  std::optional<int64_t> context_length) {
  auto train = std::make_shared<const ClassificationDataset>(
      splits.train, tokenizer, config.max_length, config.pad_token_id, context_length);
  const int64_t max_length = train->max_length();
  auto validation = std::make_shared<const ClassificationDataset>(
      splits.validation, tokenizer, max_length, config.pad_token_id, context_length);
  auto test = std::make_shared<const ClassificationDataset>(splits.test, tokenizer, max_length,
                                                            config.pad_token_id, context_length);
  const auto train_options = DataLoaderOptions(batch_size).shuffle(true).drop_last(true);
  if (batch_size >= 1 && num_batches(train->size(), train_options) == 0) {
    fail(
        "make_classification_loaders: the training split has {} examples, fewer than the batch "
        "size {}, so drop_last leaves no batch",
        train->size(), batch_size);
  }
  torch::manual_seed(static_cast<uint64_t>(torch_seed));
  DataLoader<>::Collate collate;
  if (config.trim_padding) {
    collate = [pad = config.pad_token_id](std::vector<Example>&& examples) {
      return stack_trimmed(std::move(examples), pad);
    };
  }
  return {DataLoader<>(train, train_options, collate),
          DataLoader<>(validation, DataLoaderOptions(batch_size), collate),
          DataLoader<>(test, DataLoaderOptions(batch_size), collate), max_length};
}

Batch stack_trimmed(std::vector<Example>&& examples, int64_t pad_token_id) {
  Batch batch = stack_examples(std::move(examples));
  // Columns holding a real token in some row; keep up to the last of them (at least one).
  const auto real = batch.input.ne(pad_token_id).any(0);  // (T)
  const auto positions = torch::nonzero(real);
  const int64_t keep = positions.numel() > 0 ? positions.max().item<int64_t>() + 1 : 1;
  if (keep < batch.input.size(1)) batch.input = batch.input.slice(1, 0, keep).contiguous();
  return batch;
}

}  // namespace llmfs
