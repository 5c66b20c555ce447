#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "llmfs/config/config_node.h"
#include "llmfs/data/data_loader.h"
#include "llmfs/tokenizer/tokenizer.h"

namespace llmfs {

/// The text a pretraining run reads and how it becomes batches (book §5.1.3, BOOK.md §6.3).
struct PretrainDataConfig {
  std::string file = "the-verdict.txt";  // a known data file's name, or a path to any UTF-8 text
  double train_ratio = 0.9;              // share of the characters for training
  int64_t max_length = 256;              // tokens per window (at most the model's context)
  int64_t stride = 256;                  // tokens between window starts
};

/// Reads a `data:` section (every key optional).
PretrainDataConfig parse_pretrain_data_config(ConfigNode node);

/// The training text: `file` is a name from known_data_files() (found through data_file(), so
/// LLMFS_DATA_DIR applies) or a path. Read as Python's open(path, encoding="utf-8").read():
/// invalid UTF-8 is an llmfs::Error naming the file and byte offset; "\r\n" and "\r" become
/// "\n" (universal newlines). An empty file is an llmfs::Error.
std::string read_training_text(const std::string& file);

/// The book's character split: the first int(train_ratio · characters) characters (Unicode code
/// points, as Python counts them, so Korean text never splits inside a character) train, the
/// rest validate.
struct TextSplit {
  std::string train, val;
  int64_t train_chars = 0, val_chars = 0;
};
TextSplit split_text(std::string_view text, double train_ratio);

/// The two loaders of book §5.1.3: seed, then the training loader (shuffle, drop_last), then
/// the validation loader (no shuffling, no drop_last), both GPTDatasetV1 windows of max_length
/// tokens every stride tokens, batch_size examples per batch. A split too short for one window,
/// or a training split with fewer windows than batch_size, is an llmfs::Error saying which
/// setting to change.
struct PretrainLoaders {
  DataLoader<> train, val;
  int64_t train_tokens = 0, val_tokens = 0;  // tokens of each split
};
PretrainLoaders make_pretrain_loaders(const TextSplit& split, const Tokenizer& tokenizer,
                                      const PretrainDataConfig& data, int64_t batch_size,
                                      int64_t seed);

}  // namespace llmfs
