#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmfs/config/config_node.h"
#include "llmfs/data/data_loader.h"
#include "llmfs/data/dataset.h"
#include "llmfs/tokenizer/tokenizer.h"

namespace llmfs {

/// How an entry becomes text (book §7.2): the Alpaca layout of the chapter (BOOK.md §1.3), or
/// the Phi-3 layout of exercise 7.1 ("<|user|>\n{instruction}[\n{input}]" then
/// "\n<|assistant|>:\n{output}").
enum class PromptStyle { kAlpaca, kPhi3 };

/// "alpaca" / "phi3", the config spelling.
std::string_view prompt_style_name(PromptStyle style);

/// The style of a config spelling; llmfs::Error for anything but "alpaca" and "phi3".
PromptStyle parse_prompt_style(std::string_view name);

/// Where the entries of an instruction dataset come from and how they are batched: the `data:`
/// section of configs/ch07.yaml. The defaults are the book's chapter 7.
///
///   data:
///     file: instruction-data.json  # a data file name (llmfs::input_file) or a path
///     format: auto                 # json (an array of objects) | jsonl (one object a line) |
///                                  # auto (jsonl for .jsonl/.ndjson, json otherwise)
///     instruction_field: instruction
///     input_field: input           # "" : the entries have no input field
///     output_field: output
///     prompt_style: alpaca         # alpaca | phi3 (exercise 7.1)
///     train_frac: 0.85             # in file order: train, then test, then validation = the rest
///     test_frac: 0.1
///     allowed_max_length: 1024     # inputs and targets cut to this many tokens; null: no cut
///     pad_token_id: 50256
///     ignore_index: -100           # the loss skips these targets (llmfs::lm_loss: -100 only)
///     mask_instruction: false      # exercise 7.2: prompt tokens never count as targets
///     bucket_by_length: false      # training batches of similar lengths (less padding)
struct InstructionDataConfig {
  std::string file = "instruction-data.json";
  std::string format = "auto";
  std::string instruction_field = "instruction";
  std::string input_field = "input";
  std::string output_field = "output";
  PromptStyle prompt_style = PromptStyle::kAlpaca;
  double train_frac = 0.85;
  double test_frac = 0.10;
  std::optional<int64_t> allowed_max_length = 1024;
  int64_t pad_token_id = 50256;
  int64_t ignore_index = -100;
  bool mask_instruction = false;
  /// Sorts the training examples by token count and cuts them into batches once; each epoch
  /// shuffles the order of those batches (seeded through the loader as the book's shuffle), so
  /// every example is seen exactly once per epoch and padding stays small. Off in the book.
  bool bucket_by_length = false;
};

/// Reads a `data:` section (every key optional; `defaults` are the chapter's). Config errors name
/// the key: an unknown format or prompt style, empty or repeated field names, train_frac outside
/// (0, 1), test_frac outside [0, 1), train_frac + test_frac not below 1, allowed_max_length < 1,
/// a negative pad id, an ignore_index that is not negative.
InstructionDataConfig parse_instruction_data_config(ConfigNode node,
                                                    const InstructionDataConfig& defaults = {});

/// One entry of an instruction dataset: the three fields the prompt is made of, every other
/// field of the entry kept for writing the entries back (the book's responses file adds
/// "model_response"), and where it came from.
struct InstructionEntry {
  std::string instruction;
  std::string input;  // "" when empty or when the data has no input field
  std::string output;
  /// The entry's other fields in file order: name and value as JSON text ("\"text\"", "3", ...).
  std::vector<std::pair<std::string, std::string>> extra;
  int64_t index = 0;  // 0-based position in the file (Python's data[index])
  int64_t line = 0;   // JSONL: 1-based line of the file; JSON: 0
};

/// The value of an extra field that is a JSON string; nothing when absent or not a string.
std::optional<std::string> extra_string(const InstructionEntry& entry, std::string_view name);

/// Sets an extra string field, replacing one of that name or appending it (the book's
/// entry["model_response"] = text). llmfs::Error when the value is not valid UTF-8.
void set_extra_string(InstructionEntry& entry, std::string_view name, std::string_view value);

/// "json" or "jsonl": config.format, or for "auto" the extension of path (.jsonl and .ndjson
/// are JSONL, anything else JSON).
std::string instruction_file_format(const InstructionDataConfig& config,
                                    const std::filesystem::path& path);

/// Reads and checks every entry of an instruction file: a JSON array of objects, or one object
/// per line (JSONL, blank lines skipped). One-line llmfs::Error naming the file and the entry
/// (JSON: "file: entry 12: ..."; JSONL: "file:13 (entry 12): ...") and the field for a missing
/// field, a field that is not a string, an entry that is not an object, invalid UTF-8, malformed
/// JSON (with line and column), a top level that is not an array, and a file without entries.
std::vector<InstructionEntry> read_instruction_entries(const std::filesystem::path& path,
                                                       const InstructionDataConfig& config = {});

/// read_instruction_entries of config.file, found as llmfs::input_file finds it (a path, or a
/// data file name: LLMFS_DATA_DIR, the cache, a download).
std::vector<InstructionEntry> read_instruction_entries(const InstructionDataConfig& config);

/// Writes entries with all their fields (the three of the config's field names, then the extras
/// in order): JSON as Python's json.dump(entries, f, indent=4) writes it (non-ASCII escaped), or
/// JSONL, one compact UTF-8 object a line (instruction_file_format picks). Written atomically.
void write_instruction_entries(const std::filesystem::path& path,
                               const std::vector<InstructionEntry>& entries,
                               const InstructionDataConfig& config = {});

/// Python's repr of the entry as a dict (C7-02):
///   {'instruction': 'Identify ...', 'input': 'Ocassion', 'output': "The correct ... 'Occasion.'"}
std::string py_repr(const InstructionEntry& entry, const InstructionDataConfig& config = {});

/// The prompt of an entry, byte for byte as the book's format_input (BOOK.md §1.3): the Alpaca
/// preamble and "### Instruction:" section, plus the "### Input:" section only when the input is
/// not empty; no trailing newline. Phi-3: "<|user|>\n{instruction}" plus "\n{input}".
std::string format_input(const InstructionEntry& entry, PromptStyle style = PromptStyle::kAlpaca);

/// The response part of the training text: "\n\n### Response:\n{output}" (Alpaca) or
/// "\n<|assistant|>:\n{output}" (Phi-3). Training text = format_input + format_response.
std::string format_response(const InstructionEntry& entry,
                            PromptStyle style = PromptStyle::kAlpaca);

/// The header a generated response starts with, which the book deletes from the model's answer
/// (§7.7): "### Response:" (Alpaca) or "<|assistant|>:" (Phi-3).
std::string_view response_marker(PromptStyle style);

/// The three parts of chapter 7's data, in file order.
struct InstructionSplits {
  std::vector<InstructionEntry> train, validation, test;
};

/// The book's split (§7.2), no shuffling: train = the first int(n · train_frac) entries, test =
/// the next int(n · test_frac), validation = the rest (1,100 entries: 935 / 55 / 110).
/// llmfs::Error when there are no entries, when the training or validation part comes out empty,
/// or the test part does with test_frac > 0, or the fractions are out of range.
InstructionSplits split_instruction_data(std::vector<InstructionEntry> entries,
                                         const InstructionDataConfig& config);

/// read_instruction_entries(config), then split_instruction_data.
InstructionSplits prepare_instruction_data(const InstructionDataConfig& config);

/// One tokenized entry: the ids of its training text and how many of them the prompt alone
/// encodes to (exercise 7.2 masks the targets of those).
struct InstructionExample {
  std::vector<int64_t> ids;
  int64_t prompt_length = 0;  // len(tokenizer.encode(format_input(entry)))
};

/// The book's InstructionDataset (§7.3): every entry's training text, format_input +
/// format_response, encoded once with the tokenizer's plain encode (no special tokens allowed,
/// as the book's tokenizer.encode(full_text)); get(i) is the i-th example, of its own length.
///
///   InstructionDataset train(splits.train, tokenizer);   // train.get(0).ids: 21106, 318, ...
class InstructionDataset : public Dataset<InstructionExample> {
 public:
  /// llmfs::Error naming the entry (index, JSONL line) when the tokenizer refuses its text.
  InstructionDataset(const std::vector<InstructionEntry>& entries, const Tokenizer& tokenizer,
                     PromptStyle style = PromptStyle::kAlpaca);

  int64_t size() const override { return static_cast<int64_t>(examples_.size()); }
  InstructionExample get(int64_t index) const override;

  const std::vector<InstructionExample>& examples() const { return examples_; }
  /// Token count of every example, in order.
  std::vector<int64_t> lengths() const;

 private:
  std::vector<InstructionExample> examples_;
};

/// What the final collate does besides padding: the pad id (appended once as end-of-text, then
/// padding), the target value the loss ignores, the cut, and exercise 7.2's prompt masking.
struct InstructionCollateOptions {
  int64_t pad_token_id = 50256;
  int64_t ignore_index = -100;
  std::optional<int64_t> allowed_max_length;  // the book's chapter binds 1024
  bool mask_instruction = false;
};

/// The book's custom_collate_draft_1 (§7.3, C7-08): every sequence gets one pad_token_id, all are
/// padded with it to 1 + the longest, and the last position is dropped: (B, longest) inputs.
torch::Tensor custom_collate_draft_1(const std::vector<std::vector<int64_t>>& batch,
                                     int64_t pad_token_id = 50256);

/// The book's custom_collate_draft_2 (C7-09): the same padded rows as inputs = positions
/// 0 … L−2 and targets = positions 1 … L−1, both (B, longest).
Batch custom_collate_draft_2(const std::vector<std::vector<int64_t>>& batch,
                             int64_t pad_token_id = 50256);

/// The book's final custom_collate_fn (C7-10): draft 2, then in every target row each pad id
/// after the first becomes ignore_index (the first end-of-text stays a target, so the model
/// learns to stop); with mask_instruction the targets of the prompt become ignore_index too
/// (exercise 7.2: targets[:prompt_length − 1]; a prompt_length of 0 masks nothing); then inputs
/// and targets are cut to allowed_max_length. Both (B, T) int64 on the CPU (the loss moves them
/// to the model's device). llmfs::Error for an empty batch or allowed_max_length < 1.
Batch instruction_collate(const std::vector<InstructionExample>& batch,
                          const InstructionCollateOptions& options = {});

/// instruction_collate of bare id lists (prompt length 0: no prompt masking), as the book's toy
/// batch [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]].
Batch instruction_collate(const std::vector<std::vector<int64_t>>& batch,
                          const InstructionCollateOptions& options = {});

/// Examples that always go into one batch together: one example (the book's loaders), or a
/// whole length bucket (bucket_by_length).
using InstructionGroup = std::vector<InstructionExample>;

/// The dataset the instruction loaders iterate: groups of an InstructionDataset's examples.
class InstructionGroups : public Dataset<InstructionGroup> {
 public:
  /// One group per example, in order (the book: the loader's batch_size makes the batches).
  explicit InstructionGroups(std::shared_ptr<const InstructionDataset> dataset);
  /// The given groups of example indices (length_buckets). llmfs::Error for an index out of
  /// range or an empty group.
  InstructionGroups(std::shared_ptr<const InstructionDataset> dataset,
                    std::vector<std::vector<int64_t>> groups);

  int64_t size() const override { return static_cast<int64_t>(groups_.size()); }
  InstructionGroup get(int64_t index) const override;

  const InstructionDataset& dataset() const { return *dataset_; }
  const std::vector<std::vector<int64_t>>& groups() const { return groups_; }

 private:
  std::shared_ptr<const InstructionDataset> dataset_;
  std::vector<std::vector<int64_t>> groups_;
};

/// Length buckets: the example indices sorted by length (ties in index order), cut into groups
/// of batch_size (the last one may be smaller). Every index appears exactly once.
std::vector<std::vector<int64_t>> length_buckets(const std::vector<int64_t>& lengths,
                                                 int64_t batch_size);

/// A loader of chapter 7: batches of instruction_collate.
using InstructionLoader = DataLoader<InstructionGroup, Batch>;

struct InstructionLoaders {
  InstructionLoader train, validation, test;
};

/// The InstructionDataset under a loader of make_instruction_loaders (its examples, lengths).
/// llmfs::Error for a loader over another dataset.
const InstructionDataset& instruction_dataset(const InstructionLoader& loader);

/// The book's loaders (§7.4): the three datasets, torch::manual_seed(torch_seed), then the
/// training loader (batch_size, shuffling, drop_last) and the validation and test loaders
/// (batch_size, neither), all collating with the config's pad id, ignore index, prompt masking
/// and cut. The cut is allowed_max_length, lowered to context_length when that is given and
/// smaller (set when none is configured); examples longer than the cut are truncated, with one
/// warning per split. With bucket_by_length the training loader iterates length buckets of
/// batch_size instead (batch_size 1 over the buckets, shuffled, nothing dropped).
/// llmfs::Error for batch_size < 1, an empty training split, or one smaller than batch_size
/// (drop_last would leave no batch).
InstructionLoaders make_instruction_loaders(const InstructionSplits& splits,
                                            const Tokenizer& tokenizer,
                                            const InstructionDataConfig& config, int64_t batch_size,
                                            int64_t torch_seed = 123,
                                            std::optional<int64_t> context_length = std::nullopt);

}  // namespace llmfs
