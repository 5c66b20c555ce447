#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llmfs/config/config_node.h"
#include "llmfs/data/data_loader.h"
#include "llmfs/data/dataset.h"
#include "llmfs/data/instruction_data.h"
#include "llmfs/tokenizer/tokenizer.h"

namespace llmfs {

/// Where preference pairs come from (the DPO notebook, BOOK.md §9): chapter 7's `data:` section
/// (file, format, prompt fields, prompt style, split, allowed_max_length, pad id) plus the names of
/// the two answers. `mask_instruction` is the notebook's prompt masking (on by default here).
///
///   data:
///     file: instruction-data-with-preference.json
///     chosen_field: chosen
///     rejected_field: rejected
///     mask_instruction: true   # the prompt and the two newlines before "### Response:" are not scored
struct PreferenceDataConfig {
  InstructionDataConfig data;
  std::string chosen_field = "chosen";
  std::string rejected_field = "rejected";
  /// Pairs whose chosen and rejected answers are the same text: "keep" (the notebook: 6 of its
  /// 1,100 entries; each adds ln 2 to the loss and nothing to the gradient), "skip" (left out,
  /// counted in a warning) or "error" (one line naming the entry).
  std::string identical_pairs = "keep";
};

/// The DPO notebook's defaults: its data file, prompt masking on.
PreferenceDataConfig default_preference_data_config();

/// Reads a `data:` section (every key optional; `defaults` are the caller's). Config errors name
/// the key: chapter 7's, an empty or repeated answer field name, bucket_by_length (not for pairs).
PreferenceDataConfig parse_preference_data_config(ConfigNode node,
                                                  const PreferenceDataConfig& defaults);

/// One preference pair: the entry (its prompt fields) and its two answers.
struct PreferencePair {
  InstructionEntry entry;
  std::string chosen, rejected;
};

/// The pairs of some entries: each must have the chosen and rejected fields as strings; llmfs::Error
/// naming the file, the entry (and its JSONL line) and the field otherwise.
std::vector<PreferencePair> preference_pairs(const std::vector<InstructionEntry>& entries,
                                             const PreferenceDataConfig& config);

/// The three splits of a preference file (chapter 7's split, in file order).
struct PreferenceSplits {
  std::vector<PreferencePair> train, validation, test;
};
PreferenceSplits prepare_preference_data(const PreferenceDataConfig& config);

/// One tokenized pair (the notebook's PreferenceDataset item): the prompt's ids, and the ids of
/// prompt + response header + answer for each answer (plain encode, no special tokens).
struct PreferenceExample {
  std::vector<int64_t> prompt, chosen, rejected;
  /// Leading positions the prompt masking hides: the prompt and the newlines before the
  /// response header (Alpaca: prompt length + 2, the notebook's; Phi-3: + 1).
  int64_t masked = 0;
};

/// Tokenizes pairs. Pairs with chosen == rejected are kept, left out or refused as
/// `identical_pairs` says; with `cut` (the collate's allowed length) a pair with an answer that
/// has no token left after the prompt, its newlines and the cut is left out. Both are counted.
/// llmfs::Error naming the entry when the tokenizer refuses a text.
class PreferenceDataset : public Dataset<PreferenceExample> {
 public:
  PreferenceDataset(const std::vector<PreferencePair>& pairs, const Tokenizer& tokenizer,
                    PromptStyle style = PromptStyle::kAlpaca,
                    std::optional<int64_t> cut = std::nullopt,
                    const std::string& identical_pairs = "keep");

  int64_t size() const override { return static_cast<int64_t>(examples_.size()); }
  PreferenceExample get(int64_t index) const override;
  const std::vector<PreferenceExample>& examples() const { return examples_; }
  int64_t identical() const { return identical_; }  // kept or skipped
  int64_t skipped_identical() const { return skipped_identical_; }
  int64_t skipped_empty() const { return skipped_empty_; }

 private:
  std::vector<PreferenceExample> examples_;
  int64_t identical_ = 0;
  int64_t skipped_identical_ = 0;
  int64_t skipped_empty_ = 0;
};

/// A batch of pairs (the notebook's dict): the unpadded prompts, the padded chosen and rejected
/// ids (B, T) int64 and their masks (B, T) bool, true where a token is scored.
struct PreferenceBatch {
  std::vector<torch::Tensor> prompt;
  torch::Tensor chosen, rejected, chosen_mask, rejected_mask;
};

struct PreferenceCollateOptions {
  int64_t pad_token_id = 50256;
  std::optional<int64_t> allowed_max_length;
  bool mask_prompt = true;
};

/// The notebook's custom_collate_fn: T = max over the batch of (length + 1) of every chosen and
/// rejected sequence; each is right-padded with pad_token_id to T (no end-of-text appended);
/// masks are false on padding and, with mask_prompt, on the first `masked` positions;
/// all four tensors cut to allowed_max_length. llmfs::Error for an empty batch.
PreferenceBatch preference_collate(const std::vector<PreferenceExample>& batch,
                                   const PreferenceCollateOptions& options = {});

using PreferenceLoader = DataLoader<PreferenceExample, PreferenceBatch>;

struct PreferenceLoaders {
  PreferenceLoader train, validation, test;
};

/// The notebook's loaders: the datasets (pairs that cannot be scored left out, with a warning
/// counting them), torch::manual_seed(seed), the training loader (batch_size, shuffled,
/// drop_last) and the validation and test loaders (batch_size). The cut is allowed_max_length,
/// lowered to context_length when given. llmfs::Error for a training split smaller than one batch.
PreferenceLoaders make_preference_loaders(const PreferenceSplits& splits,
                                          const Tokenizer& tokenizer,
                                          const PreferenceDataConfig& config, int64_t batch_size,
                                          int64_t seed = 123,
                                          std::optional<int64_t> context_length = std::nullopt);

}  // namespace llmfs
