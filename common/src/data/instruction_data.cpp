// Chapter 7's data (book §7.2–7.4): instruction entries read from JSON or JSONL and checked entry
// by entry, the Alpaca and Phi-3 prompt layouts, the file-order split, the pre-tokenized
// InstructionDataset, the book's collate drafts and final custom_collate_fn (with exercise 7.2's
// prompt masking), length buckets, and the loaders seeded as the book seeds them.
#include "llmfs/data/instruction_data.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <numeric>
#include <utility>

#include "llmfs/core/data_files.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/repr.h"
#include "llmfs/core/utf8.h"

namespace llmfs {

namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr std::string_view kAlpacaPreamble =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.";
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// --- Locating a problem in JSON text ---

/// 1-based line and column (in bytes) of a byte offset.
struct TextPosition {
  int64_t line = 1;
  int64_t column = 1;
};

TextPosition position_of(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  TextPosition p;
  p.line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
  const std::size_t newline = offset == 0 ? std::string_view::npos : text.rfind('\n', offset - 1);
  const std::size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
  p.column = static_cast<int64_t>(offset - line_start) + 1;
  return p;
}

/// Replays a JSON parse as SAX events to say where it stopped: which entry (a value at
/// entry_depth: 1 for the elements of a top-level array, 0 for a JSONL line) and which field of it
/// (a key one level deeper). Only used to word an error message.
class EntryLocator : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit EntryLocator(int entry_depth) : entry_depth_(entry_depth) {}

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override {
    value();
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    value();
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool key(string_t& name) override {
    if (depth_ == entry_depth_ + 1) {
      field_ = name;
      awaiting_value_ = true;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

  /// "entry 3, field 'output': ", "entry 3, after field 'input': ", "after entry 2: " or "".
  std::string context() const {
    std::string out;
    if (depth_ > entry_depth_ && entry_ >= 0) {
      if (entry_depth_ > 0) out = fmt::format("entry {}", entry_);
      if (!field_.empty()) {
        const bool inside = depth_ > entry_depth_ + 1 || awaiting_value_;
        out +=
            fmt::format("{}{}field '{}'", out.empty() ? "" : ", ", inside ? "" : "after ", field_);
      }
    } else if (depth_ == entry_depth_ && entry_ >= 0 && entry_depth_ > 0) {
      out = fmt::format("after entry {}", entry_);
    }
    return out.empty() ? out : out + ": ";
  }

 private:
  bool value() {
    if (depth_ == entry_depth_) {  // a new entry begins
      ++entry_;
      field_.clear();
      awaiting_value_ = false;
    } else if (depth_ == entry_depth_ + 1) {  // the value of field_ begins
      awaiting_value_ = false;
    }
    return true;
  }

  int entry_depth_;
  int depth_ = 0;
  int64_t entry_ = -1;
  std::string field_;
  bool awaiting_value_ = false;  // a key was read and its value has not started yet
};

std::string locate(std::string_view text, int entry_depth) {
  EntryLocator locator(entry_depth);
  nlohmann::json::sax_parse(text, &locator);
  return locator.context();
}

/// nlohmann's parse_error message without its "[json.exception...] parse error at line L,
/// column C: " prefix (we print our own position).
std::string short_parse_message(const std::string& what) {
  const auto at = what.find("parse error");
  const auto colon = at == std::string::npos ? std::string::npos : what.find(": ", at);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

/// llmfs::Error for JSON text that does not parse: where (line, column, entry, field) and why.
/// The text is a whole JSON file, or one JSONL line (jsonl_line: its line number in the file).
[[noreturn]] void fail_unparsable(std::string_view text, const std::string& source,
                                  std::optional<int64_t> jsonl_line, int entry_depth,
                                  std::optional<std::size_t> error_offset,
                                  const std::string& reason) {
  const auto invalid = find_invalid_utf8(text);
  const std::string context = locate(text, entry_depth);
  const std::size_t offset = invalid != std::string_view::npos ? invalid : error_offset.value_or(0);
  const auto pos = position_of(text, offset);
  const std::string where = jsonl_line ? fmt::format("{}:{}:{}", source, *jsonl_line, pos.column)
                                       : fmt::format("{}:{}:{}", source, pos.line, pos.column);
  if (invalid != std::string_view::npos) {
    fail("{}: {}invalid UTF-8 (byte 0x{:02X}); the file must be UTF-8 text", where, context,
         static_cast<unsigned char>(text[invalid]));
  }
  fail("{}: {}malformed JSON: {}", where, context, reason);
}

OrderedJson parse_json(std::string_view text, const std::string& source,
                       std::optional<int64_t> jsonl_line, int entry_depth) {
  if (find_invalid_utf8(text) != std::string_view::npos) {
    fail_unparsable(text, source, jsonl_line, entry_depth, std::nullopt, "");
  }
  try {
    return OrderedJson::parse(text);
  } catch (const OrderedJson::parse_error& e) {
    fail_unparsable(text, source, jsonl_line, entry_depth, e.byte > 0 ? e.byte - 1 : std::size_t{0},
                    short_parse_message(e.what()));
  } catch (const OrderedJson::out_of_range& e) {  // a number beyond a double's range (1e999)
    // "... number overflow parsing '1e999'": where that number is.
    const std::string what = e.what();
    const auto open = what.find('\'');
    const auto close = open == std::string::npos ? std::string::npos : what.find('\'', open + 1);
    const auto number = close == std::string::npos ? std::string() : what.substr(open + 1, close - open - 1);
    const auto at = number.empty() ? std::string_view::npos : text.find(number);
    fail_unparsable(text, source, jsonl_line, entry_depth,
                    at == std::string_view::npos ? std::nullopt : std::optional<std::size_t>(at),
                    number.empty() ? std::string("a number out of range")
                                   : fmt::format("the number {} is out of range", number));
  }
}

// --- Entries ---

std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += fmt::format("{}'{}'", out.empty() ? "" : ", ", n);
  return out;
}

std::vector<std::string> field_names(const InstructionDataConfig& c) {
  std::vector<std::string> names{c.instruction_field};
  if (!c.input_field.empty()) names.push_back(c.input_field);
  names.push_back(c.output_field);
  return names;
}

InstructionEntry entry_from_json(const OrderedJson& value, const InstructionDataConfig& c,
                                 const std::string& where, int64_t index, int64_t line) {
  const auto names = field_names(c);
  if (!value.is_object()) {
    fail("{}: expected an object with the fields {}, got {}", where, quoted_list(names),
         value.type_name());
  }
  // `key` is the config key that names the field, for the hint.
  const auto field = [&](const std::string& name, std::string_view key) -> std::string {
    if (name.empty()) return {};
    const auto it = value.find(name);
    if (it == value.end()) {
      std::vector<std::string> present;
      for (const auto& item : value.items()) present.push_back(item.key());
      fail("{}: missing field '{}' (the entry has {}; data.{} names the field to use)", where, name,
           present.empty() ? "no fields" : quoted_list(present), key);
    }
    if (!it->is_string()) {
      std::string shown = it->is_null() ? "" : fmt::format(" {}", it->dump());
      if (utf8_length(shown) > 40) shown = std::string(utf8_slice(shown, 0, 40)) + "...";
      fail("{}: field '{}' must be a string, got {}{}", where, name, it->type_name(), shown);
    }
    return it->get<std::string>();
  };
  InstructionEntry entry;
  entry.instruction = field(c.instruction_field, "instruction_field");
  entry.input = field(c.input_field, "input_field");
  entry.output = field(c.output_field, "output_field");
  entry.index = index;
  entry.line = line;
  for (const auto& item : value.items()) {
    if (std::find(names.begin(), names.end(), item.key()) == names.end()) {
      entry.extra.emplace_back(item.key(), item.value().dump());
    }
  }
  return entry;
}

std::vector<InstructionEntry> read_json_entries(std::string_view text, const std::string& source,
                                                const InstructionDataConfig& c) {
  const auto doc = parse_json(text, source, std::nullopt, /*entry_depth=*/1);
  if (!doc.is_array()) {
    fail("{}: expected a JSON array of entries, got {}{}", source, doc.type_name(),
         doc.is_object() ? " (one object per line is data.format=jsonl)" : "");
  }
  std::vector<InstructionEntry> entries;
  entries.reserve(doc.size());
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const auto index = static_cast<int64_t>(i);
    entries.push_back(
        entry_from_json(doc[i], c, fmt::format("{}: entry {}", source, index), index, 0));
  }
  return entries;
}

std::vector<InstructionEntry> read_jsonl_entries(std::string_view text, const std::string& source,
                                                 const InstructionDataConfig& c) {
  if (text.starts_with(kUtf8Bom)) text.remove_prefix(kUtf8Bom.size());
  std::vector<InstructionEntry> entries;
  int64_t line_number = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t\r\f\v") == std::string_view::npos) continue;  // blank
    const auto value = parse_json(line, source, line_number, /*entry_depth=*/0);
    const auto index = static_cast<int64_t>(entries.size());
    entries.push_back(entry_from_json(
        value, c, fmt::format("{}:{} (entry {})", source, line_number, index), index, line_number));
  }
  return entries;
}

OrderedJson entry_to_json(const InstructionEntry& e, const InstructionDataConfig& c) {
  OrderedJson obj = OrderedJson::object();
  obj[c.instruction_field] = e.instruction;
  if (!c.input_field.empty()) obj[c.input_field] = e.input;
  obj[c.output_field] = e.output;
  for (const auto& [name, json_text] : e.extra) obj[name] = OrderedJson::parse(json_text);
  return obj;
}

/// Python's repr of a value that json.load returned.
std::string py_repr_json(const OrderedJson& v) {
  switch (v.type()) {
    case OrderedJson::value_t::null:
      return "None";
    case OrderedJson::value_t::boolean:
      return v.get<bool>() ? "True" : "False";
    case OrderedJson::value_t::number_integer:
      return std::to_string(v.get<int64_t>());
    case OrderedJson::value_t::number_unsigned:
      return std::to_string(v.get<uint64_t>());
    case OrderedJson::value_t::number_float:
      return py_float(v.get<double>());
    case OrderedJson::value_t::string:
      return py_repr_str(v.get<std::string>());
    case OrderedJson::value_t::array: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + py_repr_json(v[i]);
      return out + "]";
    }
    case OrderedJson::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (const auto& item : v.items()) {
        out += (first ? "" : ", ") + py_repr_str(item.key()) + ": " + py_repr_json(item.value());
        first = false;
      }
      return out + "}";
    }
    default:
      return v.dump();
  }
}

std::vector<int64_t> encode_entry_text(const Tokenizer& tokenizer, const std::string& text,
                                       const InstructionEntry& entry) {
  try {
    return tokenizer.encode(text);
  } catch (const Error& e) {
    if (entry.line > 0) fail("entry {} (file line {}): {}", entry.index, entry.line, e.what());
    fail("entry {}: {}", entry.index, e.what());
  }
}

// --- Collate ---

void check_batch(std::size_t size, std::string_view who) {
  if (size == 0) fail("{}: empty batch", who);
}

/// Every sequence plus one pad_token_id, padded with it to 1 + the longest: (B, L).
torch::Tensor pad_with_end_of_text(const std::vector<std::vector<int64_t>>& batch,
                                   int64_t pad_token_id, std::string_view who) {
  check_batch(batch.size(), who);
  std::size_t longest = 0;
  for (const auto& ids : batch) longest = std::max(longest, ids.size());
  const auto B = static_cast<int64_t>(batch.size());
  const auto L = static_cast<int64_t>(longest) + 1;
  auto padded = torch::full({B, L}, pad_token_id, torch::kInt64);  // (B, L)
  auto acc = padded.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& ids = batch[static_cast<std::size_t>(b)];
    for (std::size_t j = 0; j < ids.size(); ++j) acc[b][static_cast<int64_t>(j)] = ids[j];
  }
  return padded;
}

}  // namespace

// --- Config ---

std::string_view prompt_style_name(PromptStyle style) {
  return style == PromptStyle::kPhi3 ? "phi3" : "alpaca";
}

PromptStyle parse_prompt_style(std::string_view name) {
  if (name == "alpaca") return PromptStyle::kAlpaca;
  if (name == "phi3") return PromptStyle::kPhi3;
  fail("unknown prompt style '{}' (alpaca or phi3)", name);
}

InstructionDataConfig parse_instruction_data_config(ConfigNode node,
                                                    const InstructionDataConfig& defaults) {
  InstructionDataConfig c = defaults;
  node.read("file", c.file);
  node.read<std::string>("format", c.format, one_of({"auto", "json", "jsonl"}));
  node.read("instruction_field", c.instruction_field);
  node.read("input_field", c.input_field);
  node.read("output_field", c.output_field);
  std::string style(prompt_style_name(c.prompt_style));
  node.read<std::string>("prompt_style", style, one_of({"alpaca", "phi3"}));
  if (style == "alpaca" || style == "phi3") c.prompt_style = parse_prompt_style(style);
  node.read("train_frac", c.train_frac);
  node.read("test_frac", c.test_frac);
  node.read("allowed_max_length", c.allowed_max_length);
  node.read("pad_token_id", c.pad_token_id, at_least(int64_t{0}));
  node.read("ignore_index", c.ignore_index);
  node.read("mask_instruction", c.mask_instruction);
  node.read("bucket_by_length", c.bucket_by_length);

  node.check(!c.file.empty(), "file", "must name a data file or a path");
  node.check(!c.instruction_field.empty(), "instruction_field", "must name a field");
  node.check(!c.output_field.empty(), "output_field", "must name a field");
  node.check(c.instruction_field != c.output_field && c.instruction_field != c.input_field &&
                 c.output_field != c.input_field,
             "output_field",
             "the instruction, input and output fields must be different, got '{}', '{}', '{}'",
             c.instruction_field, c.input_field, c.output_field);
  node.check(c.train_frac > 0.0 && c.train_frac < 1.0, "train_frac", "must be in (0, 1), got {}",
             c.train_frac);
  node.check(c.test_frac >= 0.0 && c.test_frac < 1.0, "test_frac", "must be in [0, 1), got {}",
             c.test_frac);
  node.check(c.train_frac + c.test_frac < 1.0, "test_frac",
             "train_frac + test_frac must be below 1 (validation is the rest), got {}",
             c.train_frac + c.test_frac);
  node.check(!c.allowed_max_length || *c.allowed_max_length >= 1, "allowed_max_length",
             "must be >= 1 or null, got {}", c.allowed_max_length.value_or(0));
  node.check(c.ignore_index < 0, "ignore_index",
             "must be negative (a token id would be trained on), got {}", c.ignore_index);
  return c;
}

// --- Entries ---

std::optional<std::string> extra_string(const InstructionEntry& entry, std::string_view name) {
  for (const auto& [key, json_text] : entry.extra) {
    if (key != name) continue;
    const auto value = OrderedJson::parse(json_text, nullptr, /*allow_exceptions=*/false);
    if (value.is_string()) return value.get<std::string>();
    return std::nullopt;
  }
  return std::nullopt;
}

void set_extra_string(InstructionEntry& entry, std::string_view name, std::string_view value) {
  require_valid_utf8(value, fmt::format("field '{}'", name));
  std::string json_text = OrderedJson(std::string(value)).dump();
  for (auto& [key, text] : entry.extra) {
    if (key == name) {
      text = std::move(json_text);
      return;
    }
  }
  entry.extra.emplace_back(std::string(name), std::move(json_text));
}

std::string instruction_file_format(const InstructionDataConfig& config,
                                    const std::filesystem::path& path) {
  if (config.format == "json" || config.format == "jsonl") return config.format;
  if (config.format != "auto") {
    fail("unknown instruction data format '{}' (json, jsonl or auto)", config.format);
  }
  const auto ext = path.extension().string();
  return ext == ".jsonl" || ext == ".ndjson" ? "jsonl" : "json";
}

std::vector<InstructionEntry> read_instruction_entries(const std::filesystem::path& path,
                                                       const InstructionDataConfig& config) {
  const std::string text = read_file(path);
  const std::string source = path.string();
  auto entries = instruction_file_format(config, path) == "jsonl"
                     ? read_jsonl_entries(text, source, config)
                     : read_json_entries(text, source, config);
  if (entries.empty()) fail("{}: no entries (the dataset is empty)", source);
  return entries;
}

std::vector<InstructionEntry> read_instruction_entries(const InstructionDataConfig& config) {
  return read_instruction_entries(input_file(config.file), config);
}

void write_instruction_entries(const std::filesystem::path& path,
                               const std::vector<InstructionEntry>& entries,
                               const InstructionDataConfig& config) {
  std::string out;
  if (instruction_file_format(config, path) == "jsonl") {
    for (const auto& e : entries) out += entry_to_json(e, config).dump() + "\n";
  } else {
    OrderedJson doc = OrderedJson::array();
    for (const auto& e : entries) doc.push_back(entry_to_json(e, config));
    out = doc.dump(4, ' ', /*ensure_ascii=*/true);  // Python's json.dump(..., indent=4)
  }
  write_file_atomic(path, out);
}

std::string py_repr(const InstructionEntry& entry, const InstructionDataConfig& config) {
  std::string out = fmt::format("{{{}: {}", py_repr_str(config.instruction_field),
                                py_repr_str(entry.instruction));
  if (!config.input_field.empty()) {
    out += fmt::format(", {}: {}", py_repr_str(config.input_field), py_repr_str(entry.input));
  }
  out += fmt::format(", {}: {}", py_repr_str(config.output_field), py_repr_str(entry.output));
  for (const auto& [name, json_text] : entry.extra) {
    out += fmt::format(", {}: {}", py_repr_str(name), py_repr_json(OrderedJson::parse(json_text)));
  }
  out += '}';
  return out;
}

// --- Prompts ---

std::string format_input(const InstructionEntry& entry, PromptStyle style) {
  if (style == PromptStyle::kPhi3) {
    std::string text = "<|user|>\n" + entry.instruction;
    if (!entry.input.empty()) text += "\n" + entry.input;
    return text;
  }
  std::string text = fmt::format("{}\n\n### Instruction:\n{}", kAlpacaPreamble, entry.instruction);
  if (!entry.input.empty()) text += "\n\n### Input:\n" + entry.input;
  return text;
}

std::string format_response(const InstructionEntry& entry, PromptStyle style) {
  if (style == PromptStyle::kPhi3) return "\n<|assistant|>:\n" + entry.output;
  return "\n\n### Response:\n" + entry.output;
}

std::string_view response_marker(PromptStyle style) {
  return style == PromptStyle::kPhi3 ? "<|assistant|>:" : "### Response:";
}

// --- Split ---

InstructionSplits split_instruction_data(std::vector<InstructionEntry> entries,
                                         const InstructionDataConfig& config) {
  const double train_frac = config.train_frac, test_frac = config.test_frac;
  if (!(train_frac > 0.0 && test_frac >= 0.0 && train_frac + test_frac < 1.0)) {
    fail(
        "split_instruction_data: need train_frac > 0, test_frac >= 0 and a sum below 1, got {} "
        "and {}",
        train_frac, test_frac);
  }
  const auto n = static_cast<int64_t>(entries.size());
  if (n == 0) fail("split_instruction_data: no entries to split");
  // Python's int(len(data) * 0.85) and int(len(data) * 0.1).
  const auto train_end = static_cast<int64_t>(static_cast<double>(n) * train_frac);
  const auto test_end = train_end + static_cast<int64_t>(static_cast<double>(n) * test_frac);
  const auto check = [&](std::string_view part, bool empty, std::string_view rule) {
    if (empty) {
      fail(
          "split_instruction_data: the {} split of {} entries comes out empty ({}); use more "
          "data or change train_frac ({}) / test_frac ({})",
          part, n, rule, train_frac, test_frac);
    }
  };
  check("training", train_end == 0, fmt::format("int({} * {}) = 0", n, train_frac));
  check("test", test_frac > 0.0 && test_end == train_end,
        fmt::format("int({} * {}) = 0", n, test_frac));
  check("validation", test_end == n, "no entries left after training and test");
  InstructionSplits splits;
  const auto begin = std::make_move_iterator(entries.begin());
  splits.train.assign(begin, begin + train_end);
  splits.test.assign(begin + train_end, begin + test_end);
  splits.validation.assign(begin + test_end, std::make_move_iterator(entries.end()));
  return splits;
}

InstructionSplits prepare_instruction_data(const InstructionDataConfig& config) {
  return split_instruction_data(read_instruction_entries(config), config);
}

// --- Dataset ---

InstructionDataset::InstructionDataset(const std::vector<InstructionEntry>& entries,
                                       const Tokenizer& tokenizer, PromptStyle style) {
  examples_.reserve(entries.size());
  for (const auto& entry : entries) {
    const std::string prompt = format_input(entry, style);
    InstructionExample example;
    example.ids = encode_entry_text(tokenizer, prompt + format_response(entry, style), entry);
    // The book's exercise 7.2 encodes the prompt on its own for the masking length.
    example.prompt_length =
        static_cast<int64_t>(encode_entry_text(tokenizer, prompt, entry).size());
    examples_.push_back(std::move(example));
  }
}

InstructionExample InstructionDataset::get(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < size(), "InstructionDataset: index ", index,
              " out of range for ", size(), " examples");
  return examples_[static_cast<std::size_t>(index)];
}

std::vector<int64_t> InstructionDataset::lengths() const {
  std::vector<int64_t> out;
  out.reserve(examples_.size());
  for (const auto& e : examples_) out.push_back(static_cast<int64_t>(e.ids.size()));
  return out;
}

// --- Collate ---

torch::Tensor custom_collate_draft_1(const std::vector<std::vector<int64_t>>& batch,
                                     int64_t pad_token_id) {
  const auto padded = pad_with_end_of_text(batch, pad_token_id, "custom_collate_draft_1");
  return padded.slice(1, 0, padded.size(1) - 1).contiguous();  // (B, L - 1)
}

Batch custom_collate_draft_2(const std::vector<std::vector<int64_t>>& batch, int64_t pad_token_id) {
  const auto padded = pad_with_end_of_text(batch, pad_token_id, "custom_collate_draft_2");
  const int64_t L = padded.size(1);
  return {padded.slice(1, 0, L - 1).contiguous(), padded.slice(1, 1, L).contiguous()};
}

Batch instruction_collate(const std::vector<InstructionExample>& batch,
                          const InstructionCollateOptions& options) {
  check_batch(batch.size(), "instruction_collate");
  if (options.allowed_max_length && *options.allowed_max_length < 1) {
    fail("instruction_collate: allowed_max_length must be at least 1, got {}",
         *options.allowed_max_length);
  }
  std::size_t longest = 0;
  for (const auto& e : batch) longest = std::max(longest, e.ids.size());
  // Padded rows have L = longest + 1 positions (one end-of-text at least); inputs are positions
  // 0 … L−2, targets 1 … L−1, then both are cut to allowed_max_length.
  const auto full = static_cast<int64_t>(longest);
  const int64_t T = options.allowed_max_length ? std::min(full, *options.allowed_max_length) : full;
  const auto B = static_cast<int64_t>(batch.size());
  const int64_t pad = options.pad_token_id;
  auto inputs = torch::empty({B, T}, torch::kInt64);   // (B, T)
  auto targets = torch::empty({B, T}, torch::kInt64);  // (B, T)
  auto in = inputs.accessor<int64_t, 2>();
  auto out = targets.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& example = batch[static_cast<std::size_t>(b)];
    const auto& ids = example.ids;
    const auto n = static_cast<int64_t>(ids.size());
    const auto token = [&](int64_t j) { return j < n ? ids[static_cast<std::size_t>(j)] : pad; };
    // Exercise 7.2: targets[:prompt_length - 1] are the prompt's own tokens.
    const int64_t masked =
        options.mask_instruction ? std::max<int64_t>(example.prompt_length - 1, 0) : 0;
    bool seen_pad = false;  // the cut only drops a suffix, so the first pad is found in order
    for (int64_t j = 0; j < T; ++j) {
      in[b][j] = token(j);
      int64_t target = token(j + 1);
      if (target == pad) {  // every pad id after the first one in the row is ignored
        if (seen_pad) target = options.ignore_index;
        seen_pad = true;
      }
      if (j < masked) target = options.ignore_index;
      out[b][j] = target;
    }
  }
  return {inputs, targets};
}

Batch instruction_collate(const std::vector<std::vector<int64_t>>& batch,
                          const InstructionCollateOptions& options) {
  std::vector<InstructionExample> examples;
  examples.reserve(batch.size());
  for (const auto& ids : batch) examples.push_back({ids, 0});
  return instruction_collate(examples, options);
}

// --- Groups and buckets ---

InstructionGroups::InstructionGroups(std::shared_ptr<const InstructionDataset> dataset)
    : dataset_(std::move(dataset)) {
  if (!dataset_) fail("InstructionGroups: the dataset is null");
  groups_.reserve(static_cast<std::size_t>(dataset_->size()));
  for (int64_t i = 0; i < dataset_->size(); ++i) groups_.push_back({i});
}

InstructionGroups::InstructionGroups(std::shared_ptr<const InstructionDataset> dataset,
                                     std::vector<std::vector<int64_t>> groups)
    : dataset_(std::move(dataset)), groups_(std::move(groups)) {
  if (!dataset_) fail("InstructionGroups: the dataset is null");
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    if (groups_[g].empty()) fail("InstructionGroups: group {} is empty", g);
    for (const int64_t i : groups_[g]) {
      if (i < 0 || i >= dataset_->size()) {
        fail("InstructionGroups: group {} holds example {}, outside [0, {})", g, i,
             dataset_->size());
      }
    }
  }
}

InstructionGroup InstructionGroups::get(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < size(), "InstructionGroups: index ", index,
              " out of range for ", size(), " groups");
  InstructionGroup group;
  const auto& members = groups_[static_cast<std::size_t>(index)];
  group.reserve(members.size());
  for (const int64_t i : members)
    group.push_back(dataset_->examples()[static_cast<std::size_t>(i)]);
  return group;
}

std::vector<std::vector<int64_t>> length_buckets(const std::vector<int64_t>& lengths,
                                                 int64_t batch_size) {
  if (batch_size < 1) fail("length_buckets: batch_size must be at least 1, got {}", batch_size);
  std::vector<int64_t> order(lengths.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return lengths[static_cast<std::size_t>(a)] < lengths[static_cast<std::size_t>(b)];
  });
  std::vector<std::vector<int64_t>> buckets;
  for (std::size_t start = 0; start < order.size(); start += static_cast<std::size_t>(batch_size)) {
    const std::size_t end = std::min(order.size(), start + static_cast<std::size_t>(batch_size));
    buckets.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(start),
                         order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return buckets;
}

// --- Loaders ---

const InstructionDataset& instruction_dataset(const InstructionLoader& loader) {
  const auto* groups = dynamic_cast<const InstructionGroups*>(&loader.dataset());
  if (groups == nullptr) fail("instruction_dataset: the loader does not iterate InstructionGroups");
  return groups->dataset();
}

InstructionLoaders make_instruction_loaders(const InstructionSplits& splits,
                                            const Tokenizer& tokenizer,
                                            const InstructionDataConfig& config, int64_t batch_size,
                                            int64_t torch_seed,
                                            std::optional<int64_t> context_length) {
  if (batch_size < 1) {
    fail("make_instruction_loaders: batch_size must be at least 1, got {}", batch_size);
  }
  if (splits.train.empty()) fail("make_instruction_loaders: the training split is empty");
  if (!config.bucket_by_length && static_cast<int64_t>(splits.train.size()) < batch_size) {
    fail(
        "make_instruction_loaders: the training split has {} entries, fewer than the batch size "
        "{}, so drop_last leaves no batch",
        splits.train.size(), batch_size);
  }
  auto train =
      std::make_shared<const InstructionDataset>(splits.train, tokenizer, config.prompt_style);
  auto validation =
      std::make_shared<const InstructionDataset>(splits.validation, tokenizer, config.prompt_style);
  auto test =
      std::make_shared<const InstructionDataset>(splits.test, tokenizer, config.prompt_style);

  InstructionCollateOptions options;
  options.pad_token_id = config.pad_token_id;
  options.ignore_index = config.ignore_index;
  options.mask_instruction = config.mask_instruction;
  options.allowed_max_length = config.allowed_max_length;
  if (context_length) {  // the model never sees more than its context
    options.allowed_max_length =
        std::min(options.allowed_max_length.value_or(*context_length), *context_length);
  }
  if (options.allowed_max_length) {
    const int64_t cut = *options.allowed_max_length;
    const auto warn = [&](const InstructionDataset& part, std::string_view name) {
      const auto lengths = part.lengths();
      const auto longer =
          std::count_if(lengths.begin(), lengths.end(), [&](int64_t n) { return n > cut; });
      if (longer > 0) {
        spdlog::warn("{} of {} {} examples are longer than {} tokens and are truncated", longer,
                     lengths.size(), name, cut);
      }
    };
    warn(*train, "training");
    warn(*validation, "validation");
    warn(*test, "test");
  }

  std::shared_ptr<const InstructionGroups> train_groups;
  DataLoaderOptions train_options;
  if (config.bucket_by_length) {
    train_groups = std::make_shared<const InstructionGroups>(
        train, length_buckets(train->lengths(), batch_size));
    train_options = DataLoaderOptions(1).shuffle(true);
  } else {
    train_groups = std::make_shared<const InstructionGroups>(train);
    train_options = DataLoaderOptions(batch_size).shuffle(true).drop_last(true);
  }
  const InstructionLoader::Collate collate = [options](std::vector<InstructionGroup>&& groups) {
    std::vector<InstructionExample> examples;
    for (auto& group : groups) {
      for (auto& example : group) examples.push_back(std::move(example));
    }
    return instruction_collate(examples, options);
  };
  torch::manual_seed(static_cast<uint64_t>(torch_seed));
  return {InstructionLoader(train_groups, train_options, collate),
          InstructionLoader(std::make_shared<const InstructionGroups>(validation),
                            DataLoaderOptions(batch_size), collate),
          InstructionLoader(std::make_shared<const InstructionGroups>(test),
                            DataLoaderOptions(batch_size), collate)};
}

}  // namespace llmfs
