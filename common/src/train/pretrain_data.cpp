// The pretraining data recipe of book §5.1.3: read a text, split it by characters, window it.
#include "llmfs/train/pretrain_data.h"

#include <filesystem>

#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/utf8.h"
#include "llmfs/core/data_files.h"
#include "llmfs/data/gpt_dataset.h"

namespace llmfs {

PretrainDataConfig parse_pretrain_data_config(ConfigNode node) {
  PretrainDataConfig c;
  node.read<std::string>("file", c.file, [](const std::string& f) -> std::optional<std::string> {
    if (f.empty()) return "must name a data file or a path";
    return std::nullopt;
  });
  node.read<double>("train_ratio", c.train_ratio,
                    [](const double& r) -> std::optional<std::string> {
                      if (!(r > 0.0 && r < 1.0)) return fmt::format("must be in (0, 1), got {}", r);
                      return std::nullopt;
                    });
  node.read("max_length", c.max_length, at_least(int64_t{1}));
  node.read("stride", c.stride, at_least(int64_t{1}));
  return c;
}

std::string read_training_text(const std::string& file) {
  std::filesystem::path path(file);
  std::error_code ec;
  const bool known = std::any_of(known_data_files().begin(), known_data_files().end(),
                                 [&](const DataFileInfo& info) { return info.name == file; });
  if (known && !std::filesystem::exists(path, ec)) path = data_file(file);
  if (!std::filesystem::exists(path, ec)) {
    fail(
        "{}: no such file (give a path to a UTF-8 text file, or a known data file name such as "
        "the-verdict.txt)",
        file);
  }
  const std::string bytes = read_file(path);
  require_valid_utf8(bytes, path.string());
  // Python's text mode: universal newlines.
  std::string text;
  text.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '\r') {
      text += '\n';
      if (i + 1 < bytes.size() && bytes[i + 1] == '\n') ++i;
    } else {
      text += bytes[i];
    }
  }
  if (text.empty()) fail("{}: the training text is empty", path.string());
  return text;
}

TextSplit split_text(std::string_view text, double train_ratio) {
  // The book splits by characters: code points (the text is valid UTF-8).
  const int64_t chars = utf8_length(text);
  const auto split_idx = static_cast<int64_t>(train_ratio * static_cast<double>(chars));
  TextSplit s;
  s.train = std::string(utf8_slice(text, 0, split_idx));
  s.val = std::string(utf8_slice(text, split_idx, chars));
  s.train_chars = split_idx;
  s.val_chars = chars - split_idx;
  return s;
}

PretrainLoaders make_pretrain_loaders(const TextSplit& split, const Tokenizer& tokenizer,
                                      const PretrainDataConfig& data, int64_t batch_size,
                                      int64_t seed) {
  const EncodeOptions options{.allowed_special = {std::string(kEndOfText)}};
  const auto train_ids = tokenizer.encode(split.train, options);
  const auto val_ids = tokenizer.encode(split.val, options);
  const auto too_short = [&](const char* which, size_t tokens) {
    fail(
        "the {} split has {} tokens, not more than data.max_length ({}): use a longer text, a "
        "smaller max_length{}",
        which, tokens, data.max_length,
        std::string_view(which) == "training" ? "" : " or a smaller data.train_ratio");
  };
  if (static_cast<int64_t>(train_ids.size()) <= data.max_length)
    too_short("training", train_ids.size());
  if (static_cast<int64_t>(val_ids.size()) <= data.max_length)
    too_short("validation", val_ids.size());
  torch::manual_seed(static_cast<uint64_t>(seed));
  auto train_set = std::make_shared<GPTDatasetV1>(train_ids, data.max_length, data.stride);
  auto val_set = std::make_shared<GPTDatasetV1>(val_ids, data.max_length, data.stride);
  if (train_set->size() < batch_size) {
    fail(
        "the training split gives {} window(s) of {} tokens, fewer than train.batch_size ({}), so "
        "no full batch: use a longer text, or a smaller batch_size, max_length or stride",
        train_set->size(), data.max_length, batch_size);
  }
  // The book creates the training loader first, then the validation loader (§5.1.3).
  DataLoader<> train(train_set, DataLoaderOptions(batch_size).shuffle(true).drop_last(true));
  DataLoader<> val(val_set, DataLoaderOptions(batch_size).shuffle(false).drop_last(false));
  return {std::move(train), std::move(val), static_cast<int64_t>(train_ids.size()),
          static_cast<int64_t>(val_ids.size())};
}

}  // namespace llmfs
