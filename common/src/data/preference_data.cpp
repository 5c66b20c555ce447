// The DPO notebook's data (BOOK.md §9.1): preference pairs read with chapter 7's reader and
// split, tokenized, collated with padding masks and prompt masking, and the seeded loaders.
#include "llmfs/data/preference_data.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "llmfs/core/error.h"

namespace llmfs {

namespace {

std::string where(const InstructionEntry& e) {
  return e.line > 0 ? fmt::format("{} (entry {})", e.line, e.index)
                    : fmt::format(" entry {}", e.index);
}

}  // namespace

PreferenceDataConfig default_preference_data_config() {
  PreferenceDataConfig c;
  c.data.file = "instruction-data-with-preference.json";
  c.data.mask_instruction = true;
  return c;
}

PreferenceDataConfig parse_preference_data_config(ConfigNode node,
                                                  const PreferenceDataConfig& defaults) {
  PreferenceDataConfig c = defaults;
  c.data = parse_instruction_data_config(node, c.data);
  const auto field = [](const std::string& f) -> std::optional<std::string> {
    if (f.empty()) return "a field name, not empty";
    return std::nullopt;
  };
  node.read<std::string>("chosen_field", c.chosen_field, field);
  node.read<std::string>("rejected_field", c.rejected_field, field);
  node.check(c.chosen_field != c.rejected_field, "rejected_field",
             "'{}' is also the chosen_field", c.rejected_field);
  for (const auto* name : {&c.data.instruction_field, &c.data.input_field}) {
    node.check(*name != c.chosen_field && *name != c.rejected_field, "chosen_field",
               "'{}' is also a prompt field", *name);
  }
  node.read<std::string>("identical_pairs", c.identical_pairs, one_of({"keep", "skip", "error"}));
  node.check(!c.data.bucket_by_length, "bucket_by_length", "not available for preference pairs");
  return c;
}

std::vector<PreferencePair> preference_pairs(const std::vector<InstructionEntry>& entries,
                                             const PreferenceDataConfig& config) {
  std::vector<PreferencePair> pairs;
  pairs.reserve(entries.size());
  for (const auto& entry : entries) {
    PreferencePair p{entry, "", ""};
    for (const auto& [name, out] : {std::pair{&config.chosen_field, &p.chosen},
                                    std::pair{&config.rejected_field, &p.rejected}}) {
      const auto value = extra_string(entry, *name);
      if (!value) {
        const bool present = std::any_of(entry.extra.begin(), entry.extra.end(),
                                         [&](const auto& kv) { return kv.first == *name; });
        fail("{}:{}: field '{}' {}", config.data.file, where(entry), *name,
             present ? "is not a string" : "is missing");
      }
      *out = *value;
    }
    pairs.push_back(std::move(p));
  }
  return pairs;
}

PreferenceSplits prepare_preference_data(const PreferenceDataConfig& config) {
  auto splits = prepare_instruction_data(config.data);
  return {preference_pairs(splits.train, config), preference_pairs(splits.validation, config),
          preference_pairs(splits.test, config)};
}

PreferenceDataset::PreferenceDataset(const std::vector<PreferencePair>& pairs,
                                     const Tokenizer& tokenizer, PromptStyle style,
                                     std::optional<int64_t> cut,
                                     const std::string& identical_pairs) {
  const int64_t newlines = style == PromptStyle::kAlpaca ? 2 : 1;
  for (const auto& pair : pairs) {
    if (pair.chosen == pair.rejected) {
      ++identical_;
      if (identical_pairs == "error") {
        fail("{}: the chosen and rejected answers are the same (data.identical_pairs: skip or "
             "keep them)",
             pair.entry.line > 0 ? fmt::format("line {} (entry {})", pair.entry.line, pair.entry.index)
                                 : fmt::format("entry {}", pair.entry.index));
      }
      if (identical_pairs == "skip") {
        ++skipped_identical_;
        continue;
      }
    }
    PreferenceExample e;
    try {
      const auto prompt = format_input(pair.entry, style);
      e.prompt = tokenizer.encode(prompt);
      auto answer = pair.entry;
      answer.output = pair.chosen;
      e.chosen = tokenizer.encode(prompt + format_response(answer, style));
      answer.output = pair.rejected;
      e.rejected = tokenizer.encode(prompt + format_response(answer, style));
    } catch (const Error& error) {
      fail("entry {}: {}", pair.entry.index, error.what());
    }
    e.masked = static_cast<int64_t>(e.prompt.size()) + newlines;
    const auto scored = [&](const std::vector<int64_t>& ids) {
      const auto n = static_cast<int64_t>(ids.size());
      return std::min(n, cut.value_or(n)) > e.masked;
    };
    if (!scored(e.chosen) || !scored(e.rejected)) {
      ++skipped_empty_;
      continue;
    }
    examples_.push_back(std::move(e));
  }
}

PreferenceExample PreferenceDataset::get(int64_t index) const {
  return examples_.at(static_cast<size_t>(index));
}

PreferenceBatch preference_collate(const std::vector<PreferenceExample>& batch,
                                   const PreferenceCollateOptions& options) {
  if (batch.empty()) fail("preference_collate: an empty batch");
  size_t common = 0;
  for (const auto& e : batch) common = std::max({common, e.chosen.size() + 1, e.rejected.size() + 1});
  const auto n = static_cast<int64_t>(batch.size());
  const auto width = static_cast<int64_t>(common);
  PreferenceBatch out;
  out.chosen = torch::full({n, width}, options.pad_token_id, torch::kLong);
  out.rejected = torch::full({n, width}, options.pad_token_id, torch::kLong);
  out.chosen_mask = torch::zeros({n, width}, torch::kBool);
  out.rejected_mask = torch::zeros({n, width}, torch::kBool);
  for (int64_t i = 0; i < n; ++i) {
    const auto& e = batch[static_cast<size_t>(i)];
    out.prompt.push_back(torch::tensor(e.prompt, torch::kLong));
    for (const auto& [ids, tokens, mask] :
         {std::tuple{&e.chosen, &out.chosen, &out.chosen_mask},
          std::tuple{&e.rejected, &out.rejected, &out.rejected_mask}}) {
      const auto len = static_cast<int64_t>(ids->size());
      if (len > 0) tokens->select(0, i).narrow(0, 0, len).copy_(torch::tensor(*ids, torch::kLong));
      const int64_t from = options.mask_prompt ? std::min(e.masked, len) : 0;
      if (len > from) mask->select(0, i).narrow(0, from, len - from).fill_(true);
    }
  }
  if (options.allowed_max_length) {
    if (*options.allowed_max_length < 1) fail("preference_collate: allowed_max_length < 1");
    const auto cut = std::min(*options.allowed_max_length, width);
    out.chosen = out.chosen.narrow(1, 0, cut).contiguous();
    out.rejected = out.rejected.narrow(1, 0, cut).contiguous();
    out.chosen_mask = out.chosen_mask.narrow(1, 0, cut).contiguous();
    out.rejected_mask = out.rejected_mask.narrow(1, 0, cut).contiguous();
  }
  return out;
}

PreferenceLoaders make_preference_loaders(const PreferenceSplits& splits,
                                          const Tokenizer& tokenizer,
                                          const PreferenceDataConfig& config, int64_t batch_size,
                                          int64_t seed, std::optional<int64_t> context_length) {
  if (batch_size < 1) fail("make_preference_loaders: batch size {} (at least 1)", batch_size);
  PreferenceCollateOptions options;
  options.pad_token_id = config.data.pad_token_id;
  options.mask_prompt = config.data.mask_instruction;
  options.allowed_max_length = config.data.allowed_max_length;
  if (context_length) {
    options.allowed_max_length =
        std::min(options.allowed_max_length.value_or(*context_length), *context_length);
  }
  const auto style = config.data.prompt_style;
  const auto make = [&](const std::vector<PreferencePair>& pairs, std::string_view name) {
    std::shared_ptr<const PreferenceDataset> d;
    try {
      d = std::make_shared<const PreferenceDataset>(pairs, tokenizer, style,
                                                    options.allowed_max_length,
                                                    config.identical_pairs);
    } catch (const Error& e) {
      fail("{}: {}", config.data.file, e.what());
    }
    if (d->identical() > d->skipped_identical()) {
      spdlog::info("{}: {} {} pairs have chosen == rejected (kept: ln 2 each in the loss, no "
                   "gradient)",
                   config.data.file, d->identical(), name);
    }
    if (d->skipped_identical() + d->skipped_empty() > 0) {
      spdlog::warn("{}: {} of {} {} pairs left out ({} with chosen == rejected, {} with no answer "
                   "token left after the prompt and the cut of {})",
                   config.data.file, d->skipped_identical() + d->skipped_empty(), pairs.size(),
                   name, d->skipped_identical(), d->skipped_empty(),
                   options.allowed_max_length.value_or(0));
    }
    return d;
  };
  auto train = make(splits.train, "training");
  auto validation = make(splits.validation, "validation");
  auto test = make(splits.test, "test");
  if (train->size() < batch_size) {
    fail("{}: {} usable training pairs, fewer than the batch size {} (drop_last leaves no batch)",
         config.data.file, train->size(), batch_size);
  }
  const PreferenceLoader::Collate collate = [options](std::vector<PreferenceExample>&& batch) {
    return preference_collate(batch, options);
  };
  torch::manual_seed(static_cast<uint64_t>(seed));
  return {PreferenceLoader(train, DataLoaderOptions(batch_size).shuffle(true).drop_last(true),
                           collate),
          PreferenceLoader(validation, DataLoaderOptions(batch_size), collate),
          PreferenceLoader(test, DataLoaderOptions(batch_size), collate)};
}

}  // namespace llmfs
