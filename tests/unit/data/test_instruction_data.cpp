// Chapter 7's data on small files: reading and checking instruction entries (JSON, JSONL), the
// prompt layouts, the split, writing entries back, the collate drafts and the final collate
// (padding, ignore index, truncation, prompt masking), length buckets, the loaders, and the
// `data:` config section.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "catch.h"
#include "llmfs/config/config_node.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/data/instruction_data.h"
#include "llmfs/finetune/responses.h"
#include "tensor_compare.h"

namespace fs = std::filesystem;
using llmfs::test::contains_text;
using llmfs::test::to_vector;
using Rows = std::vector<std::vector<int64_t>>;

namespace {

fs::path scratch() {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_instruction_data";
  fs::create_directories(dir);
  return dir;
}

fs::path write(const std::string& name, const std::string& bytes) {
  const fs::path path = scratch() / name;
  llmfs::write_file_atomic(path, bytes);
  return path;
}

// A byte tokenizer: every byte is its own id; special tokens are never allowed.
class ByteTokenizer : public llmfs::Tokenizer {
 public:
  std::vector<int64_t> encode(std::string_view text,
                              const llmfs::EncodeOptions& = {}) const override {
    if (text.find(llmfs::kEndOfText) != std::string_view::npos)
      llmfs::fail("disallowed special token");
    return std::vector<int64_t>(text.begin(), text.end());
  }
  std::string decode(std::span<const int64_t> ids) const override {
    return std::string(ids.begin(), ids.end());
  }
  int64_t vocab_size() const override { return 50257; }
  std::optional<int64_t> special_token_id(std::string_view) const override { return 50256; }
  std::string name() const override { return "bytes"; }
};

llmfs::InstructionEntry entry(std::string instruction, std::string input, std::string output) {
  llmfs::InstructionEntry e;
  e.instruction = std::move(instruction);
  e.input = std::move(input);
  e.output = std::move(output);
  return e;
}

Rows rows(const torch::Tensor& t) {
  Rows out;
  for (int64_t i = 0; i < t.size(0); ++i) out.push_back(to_vector(t[i]));
  return out;
}

// Problems a config section reports (empty when none).
std::string config_problems(const std::string& yaml) {
  auto doc = llmfs::ConfigDocument::from_string(yaml, "ch07.yaml");
  llmfs::parse_instruction_data_config(doc.root().child("data"));
  try {
    doc.finish();
  } catch (const llmfs::ConfigError& e) {
    return e.what();
  }
  return {};
}

constexpr int64_t kPad = 50256;
constexpr int64_t kIgn = -100;

}  // namespace

// --- Prompts ---

TEST_CASE("format_input and format_response lay out Alpaca prompts byte for byte", "[unit][data]") {
  const auto with_input = entry("Fix it.", "teh", "the");
  CHECK(llmfs::format_input(with_input) ==
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nFix it.\n\n### Input:\nteh");
  CHECK(llmfs::format_response(with_input) == "\n\n### Response:\nthe");
  const auto without_input = entry("Say hi.", "", "Hi.");
  CHECK(llmfs::format_input(without_input) ==
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nSay hi.");
  CHECK(llmfs::response_marker(llmfs::PromptStyle::kAlpaca) == "### Response:");
}

TEST_CASE("The Phi-3 style of exercise 7.1 uses <|user|> and <|assistant|>:", "[unit][data]") {
  const auto phi3 = llmfs::PromptStyle::kPhi3;
  CHECK(llmfs::format_input(entry("Fix it.", "teh", "the"), phi3) == "<|user|>\nFix it.\nteh");
  CHECK(llmfs::format_input(entry("Say hi.", "", "Hi."), phi3) == "<|user|>\nSay hi.");
  CHECK(llmfs::format_response(entry("Say hi.", "", "Hi."), phi3) == "\n<|assistant|>:\nHi.");
  CHECK(llmfs::response_marker(phi3) == "<|assistant|>:");
  CHECK(llmfs::parse_prompt_style("phi3") == phi3);
  CHECK(llmfs::prompt_style_name(phi3) == "phi3");
  CHECK_THROWS_WITH(llmfs::parse_prompt_style("chatml"), contains_text("'chatml'"));
}

// --- Reading entries ---

TEST_CASE("read_instruction_entries reads a JSON array and keeps extra fields in order",
          "[unit][data]") {
  const auto path =
      write("good.json",
            R"([{"instruction": "A", "input": "", "output": "B", "model_response": "C", "score": 7},
          {"output": "Ö", "input": "x", "instruction": "운수"}])");
  const auto entries = llmfs::read_instruction_entries(path);
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].instruction == "A");
  CHECK(entries[0].output == "B");
  CHECK(entries[0].index == 0);
  REQUIRE(entries[0].extra.size() == 2);
  CHECK(entries[0].extra[0].first == "model_response");
  CHECK(entries[0].extra[1] == std::pair<std::string, std::string>{"score", "7"});
  CHECK(llmfs::extra_string(entries[0], "model_response") == "C");
  CHECK_FALSE(llmfs::extra_string(entries[0], "score"));  // not a string
  CHECK_FALSE(llmfs::extra_string(entries[0], "absent"));
  CHECK(entries[1].instruction == "운수");
  CHECK(entries[1].input == "x");
  CHECK(entries[1].output == "Ö");
  CHECK(entries[1].index == 1);
  CHECK(entries[1].extra.empty());
}

TEST_CASE("read_instruction_entries reads JSONL, skipping blank lines, with other field names",
          "[unit][data]") {
  const auto path = write("good.jsonl",
                          "{\"prompt\": \"P1\", \"answer\": \"A1\"}\r\n\n"
                          "  \n{\"prompt\": \"P2\", \"answer\": \"A2\", \"id\": 5}\n");
  llmfs::InstructionDataConfig config;
  config.instruction_field = "prompt";
  config.input_field = "";  // no input field
  config.output_field = "answer";
  const auto entries = llmfs::read_instruction_entries(path, config);
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].instruction == "P1");
  CHECK(entries[0].input.empty());
  CHECK(entries[0].line == 1);
  CHECK(entries[1].output == "A2");
  CHECK(entries[1].index == 1);
  CHECK(entries[1].line == 4);
  CHECK(llmfs::instruction_file_format(config, path) == "jsonl");
  CHECK(llmfs::instruction_file_format(config, "x.ndjson") == "jsonl");
  CHECK(llmfs::instruction_file_format(config, "x.json") == "json");
  config.format = "jsonl";
  CHECK(llmfs::instruction_file_format(config, "x.json") == "jsonl");
}

TEST_CASE("A missing field names the file, the entry and the field", "[unit][data]") {
  const auto path = write("missing.json",
                          R"([{"instruction": "A", "input": "", "output": "B"},
                              {"instruction": "C", "input": "", "response": "D"}])");
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(path),
                    contains_text("missing.json: entry 1: missing field 'output'") &&
                        contains_text("'instruction', 'input', 'response'") &&
                        contains_text("data.output_field"));
}

TEST_CASE("A field that is not a string names the entry, the field and its type", "[unit][data]") {
  const auto path =
      write("wrong_type.json", R"([{"instruction": "A", "input": 42, "output": "B"}])");
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(path),
                    contains_text("wrong_type.json: entry 0: field 'input' must be a string") &&
                        contains_text("got number 42"));
  const auto null_path =
      write("null_output.json", R"([{"instruction": "A", "input": "", "output": null}])");
  CHECK_THROWS_WITH(
      llmfs::read_instruction_entries(null_path),
      contains_text("field 'output' must be a string, got null") && !contains_text("null null"));
}

TEST_CASE("An entry that is not an object, or a top level that is not an array, is an error",
          "[unit][data]") {
  const auto path = write("not_object.json", R"([{"instruction": "A", "input": "", "output": "B"},
                                                 ["A", "", "B"]])");
  CHECK_THROWS_WITH(
      llmfs::read_instruction_entries(path),
      contains_text("not_object.json: entry 1: expected an object") && contains_text("got array"));
  const auto object = write("object.json", R"({"instruction": "A", "input": "", "output": "B"})");
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(object),
                    contains_text("expected a JSON array of entries, got object") &&
                        contains_text("data.format=jsonl"));
}

TEST_CASE("An empty dataset is an error", "[unit][data]") {
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(write("empty.json", " [ ]\n")),
                    contains_text("empty.json: no entries"));
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(write("empty.jsonl", "\n  \n")),
                    contains_text("empty.jsonl: no entries"));
}

TEST_CASE("Malformed JSON names line, column, entry and field", "[unit][data]") {
  const auto path = write("bad.json",
                          "[\n  {\"instruction\": \"A\", \"input\": \"\", \"output\": \"B\"},\n"
                          "  {\"instruction\": \"C\", \"input\": tru, \"output\": \"D\"}\n]\n");
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(path),
                    contains_text("bad.json:3:") && contains_text("entry 1, field 'input'") &&
                        contains_text("malformed JSON"));
  const auto comma =
      write("comma.json", "[{\"instruction\": \"A\", \"input\": \"\" \"output\": 1}]");
  CHECK_THROWS_WITH(
      llmfs::read_instruction_entries(comma),
      contains_text("comma.json:1:") && contains_text("entry 0, after field 'input'"));
  const auto cut =
      write("cut.json", "[{\"instruction\": \"A\", \"input\": \"\", \"output\": \"B\"}");
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(cut),
                    contains_text("cut.json:1:") && contains_text("malformed JSON"));
}

TEST_CASE("A number beyond a double's range is malformed JSON naming its place", "[unit][data]") {
  const auto path = write("huge.json",
                          "[\n  {\"instruction\": \"A\", \"input\": \"\", \"output\": \"B\",\n"
                          "   \"score\": 1e999}\n]\n");
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(path),
                    contains_text("huge.json:3:13") && contains_text("malformed JSON") &&
                        contains_text("the number 1e999 is out of range"));
}

TEST_CASE("A bad JSONL line names the line number", "[unit][data]") {
  const auto path = write("bad.jsonl",
                          "{\"instruction\": \"A\", \"input\": \"\", \"output\": \"B\"}\n"
                          "\n"
                          "{\"instruction\": \"C\", \"input\": \"\", \"output\": \"D\"\n");
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(path),
                    contains_text("bad.jsonl:3:") && contains_text("malformed JSON"));
  const auto missing = write("missing.jsonl",
                             "{\"instruction\": \"A\", \"input\": \"\", \"output\": \"B\"}\n"
                             "{\"instruction\": \"C\", \"input\": \"\"}\n");
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(missing),
                    contains_text("missing.jsonl:2 (entry 1): missing field 'output'"));
}

TEST_CASE("Invalid UTF-8 names the entry and the field", "[unit][data]") {
  const auto path = write("latin1.json",
                          "[{\"instruction\": \"A\", \"input\": \"\", \"output\": \"B\"},\n"
                          " {\"instruction\": \"C\", \"input\": \"caf\xE9\", \"output\": \"D\"}]");
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(path),
                    contains_text("latin1.json:2:") && contains_text("entry 1, field 'input'") &&
                        contains_text("invalid UTF-8 (byte 0xE9)"));
  const auto jsonl = write("latin1.jsonl",
                           "{\"instruction\": \"A\", \"input\": \"\", \"output\": \"B\"}\n"
                           "{\"instruction\": \"C\", \"input\": \"\", \"output\": \"\xFF\"}\n");
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(jsonl), contains_text("latin1.jsonl:2:") &&
                                                                contains_text("field 'output'") &&
                                                                contains_text("invalid UTF-8"));
}

TEST_CASE("A missing file is an error naming it", "[unit][data]") {
  CHECK_THROWS_WITH(llmfs::read_instruction_entries(scratch() / "nope.json"),
                    contains_text("nope.json"));
}

// --- Writing entries back ---

TEST_CASE("write_instruction_entries writes JSON as Python's json.dump(indent=4) and JSONL",
          "[unit][data]") {
  auto e = entry("Say \"hi\"", "", "caf\xC3\xA9");
  e.extra.emplace_back("tags", R"(["a", 1])");
  llmfs::set_extra_string(e, "model_response", "ok\n");
  llmfs::set_extra_string(e, "model_response", "fine");  // replaces
  const auto path = scratch() / "out.json";
  llmfs::write_instruction_entries(path, {e});
  CHECK(llmfs::read_file(path) ==
        "[\n"
        "    {\n"
        "        \"instruction\": \"Say \\\"hi\\\"\",\n"
        "        \"input\": \"\",\n"
        "        \"output\": \"caf\\u00e9\",\n"
        "        \"tags\": [\n"
        "            \"a\",\n"
        "            1\n"
        "        ],\n"
        "        \"model_response\": \"fine\"\n"
        "    }\n"
        "]");
  const auto back = llmfs::read_instruction_entries(path);
  REQUIRE(back.size() == 1);
  CHECK(back[0].output == "caf\xC3\xA9");
  CHECK(llmfs::extra_string(back[0], "model_response") == "fine");

  const auto jsonl = scratch() / "out.jsonl";
  llmfs::write_instruction_entries(jsonl, {e, entry("x", "y", "z")});
  const auto lines = llmfs::read_instruction_entries(jsonl);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].input == "y");
  CHECK(lines[1].line == 2);
  CHECK_THROWS_WITH(llmfs::set_extra_string(e, "bad", "\xFF"), contains_text("'bad'"));
}

TEST_CASE("py_repr prints an entry as Python prints the dict", "[unit][data]") {
  auto e = entry("Identify the correct spelling of the following word.", "Ocassion",
                 "The correct spelling is 'Occasion.'");
  CHECK(llmfs::py_repr(e) ==
        "{'instruction': 'Identify the correct spelling of the following word.', 'input': "
        "'Ocassion', 'output': \"The correct spelling is 'Occasion.'\"}");
  e.extra = {{"n", "1.5"}, {"ok", "true"}, {"none", "null"}, {"list", "[1, \"a\"]"}};
  CHECK(llmfs::py_repr(e).ends_with("'n': 1.5, 'ok': True, 'none': None, 'list': [1, 'a']}"));
}

// --- Split ---

TEST_CASE("split_instruction_data cuts in file order: train, test, validation", "[unit][data]") {
  std::vector<llmfs::InstructionEntry> entries;
  for (int64_t i = 0; i < 1100; ++i) {
    entries.push_back(entry(fmt::format("i{}", i), "", "o"));
    entries.back().index = i;
  }
  const auto splits = llmfs::split_instruction_data(entries, llmfs::InstructionDataConfig{});
  REQUIRE(splits.train.size() == 935);
  REQUIRE(splits.test.size() == 110);
  REQUIRE(splits.validation.size() == 55);
  CHECK(splits.train.back().index == 934);
  CHECK(splits.test.front().index == 935);
  CHECK(splits.test.back().index == 1044);
  CHECK(splits.validation.front().index == 1045);
  CHECK(splits.validation.back().index == 1099);

  llmfs::InstructionDataConfig no_test;
  no_test.test_frac = 0.0;
  no_test.train_frac = 0.5;
  const auto two = llmfs::split_instruction_data({entries.begin(), entries.begin() + 4}, no_test);
  CHECK(two.train.size() == 2);
  CHECK(two.test.empty());
  CHECK(two.validation.size() == 2);

  CHECK_THROWS_WITH(llmfs::split_instruction_data({entries.begin(), entries.begin() + 5},
                                                  llmfs::InstructionDataConfig{}),
                    contains_text("test split of 5 entries comes out empty"));
  CHECK_THROWS_WITH(llmfs::split_instruction_data({}, llmfs::InstructionDataConfig{}),
                    contains_text("no entries"));
}

// --- Collate ---

TEST_CASE("The collate drafts pad with one end-of-text and shift (C7-08, C7-09)", "[unit][data]") {
  const Rows batch{{0, 1, 2, 3, 4}, {5, 6}, {7, 8, 9}};
  const auto inputs = llmfs::custom_collate_draft_1(batch);
  CHECK(inputs.dtype() == torch::kInt64);
  CHECK(rows(inputs) == Rows{{0, 1, 2, 3, 4}, {5, 6, kPad, kPad, kPad}, {7, 8, 9, kPad, kPad}});
  const auto [in2, target2] = llmfs::custom_collate_draft_2(batch);
  CHECK(rows(in2) == rows(inputs));
  CHECK(rows(target2) ==
        Rows{{1, 2, 3, 4, kPad}, {6, kPad, kPad, kPad, kPad}, {8, 9, kPad, kPad, kPad}});
  CHECK(rows(llmfs::custom_collate_draft_1({{1, 2}}, 7)) == Rows{{1, 2}});
  CHECK_THROWS_WITH(llmfs::custom_collate_draft_1({}), contains_text("empty batch"));
}

TEST_CASE("instruction_collate keeps the first end-of-text as a target, ignores the rest (C7-10)",
          "[unit][data]") {
  const auto [inputs, targets] =
      llmfs::instruction_collate(Rows{{0, 1, 2, 3, 4}, {5, 6}, {7, 8, 9}});
  CHECK(rows(inputs) == Rows{{0, 1, 2, 3, 4}, {5, 6, kPad, kPad, kPad}, {7, 8, 9, kPad, kPad}});
  CHECK(rows(targets) ==
        Rows{{1, 2, 3, 4, kPad}, {6, kPad, kIgn, kIgn, kIgn}, {8, 9, kPad, kIgn, kIgn}});
  CHECK(targets.dtype() == torch::kInt64);
}

TEST_CASE("instruction_collate edge cases: one row, equal lengths, one token, other pad ids",
          "[unit][data]") {
  {
    const auto b = llmfs::instruction_collate(Rows{{3, 4, 5}});
    CHECK(rows(b.input) == Rows{{3, 4, 5}});
    CHECK(rows(b.target) == Rows{{4, 5, kPad}});
  }
  {
    const auto b = llmfs::instruction_collate(Rows{{1, 2}, {3, 4}});
    CHECK(rows(b.target) == Rows{{2, kPad}, {4, kPad}});
  }
  {
    const auto b = llmfs::instruction_collate(Rows{{9}, {1, 2, 3}});
    CHECK(rows(b.input) == Rows{{9, kPad, kPad}, {1, 2, 3}});
    CHECK(rows(b.target) == Rows{{kPad, kIgn, kIgn}, {2, 3, kPad}});
  }
  {
    // As the book's rule: every target equal to the pad id after the first one is ignored, also
    // a real token that happens to equal the pad id.
    llmfs::InstructionCollateOptions o;
    o.pad_token_id = 0;
    o.ignore_index = -1;
    const auto b = llmfs::instruction_collate(Rows{{5, 0, 6}, {7}}, o);
    CHECK(rows(b.input) == Rows{{5, 0, 6}, {7, 0, 0}});
    CHECK(rows(b.target) == Rows{{0, 6, -1}, {0, -1, -1}});
  }
  CHECK_THROWS_WITH(llmfs::instruction_collate(Rows{}), contains_text("empty batch"));
  llmfs::InstructionCollateOptions zero;
  zero.allowed_max_length = 0;
  CHECK_THROWS_WITH(llmfs::instruction_collate(Rows{{1}}, zero),
                    contains_text("allowed_max_length"));
}

TEST_CASE("instruction_collate truncates inputs and targets to allowed_max_length",
          "[unit][data]") {
  llmfs::InstructionCollateOptions o;
  o.allowed_max_length = 3;
  const auto b = llmfs::instruction_collate(Rows{{0, 1, 2, 3, 4}, {5, 6}, {7, 8, 9}}, o);
  CHECK(rows(b.input) == Rows{{0, 1, 2}, {5, 6, kPad}, {7, 8, 9}});
  CHECK(rows(b.target) == Rows{{1, 2, 3}, {6, kPad, kIgn}, {8, 9, kPad}});
  o.allowed_max_length = 100;  // longer than the batch: nothing cut
  CHECK(llmfs::instruction_collate(Rows{{1, 2}}, o).input.size(1) == 2);
}

TEST_CASE("mask_instruction ignores the prompt's targets (exercise 7.2)", "[unit][data]") {
  llmfs::InstructionCollateOptions o;
  o.mask_instruction = true;
  // Prompts of 3 and 1 tokens: targets[:2] and targets[:0] are masked.
  const std::vector<llmfs::InstructionExample> batch{{{10, 11, 12, 13, 14}, 3}, {{20, 21}, 1}};
  const auto b = llmfs::instruction_collate(batch, o);
  CHECK(rows(b.input) == Rows{{10, 11, 12, 13, 14}, {20, 21, kPad, kPad, kPad}});
  CHECK(rows(b.target) == Rows{{kIgn, kIgn, 13, 14, kPad}, {21, kPad, kIgn, kIgn, kIgn}});
  // Unmasked the same batch trains on every token.
  o.mask_instruction = false;
  CHECK(rows(llmfs::instruction_collate(batch, o).target)[0] ==
        std::vector<int64_t>{11, 12, 13, 14, kPad});
  // A prompt as long as the whole text masks everything but the end-of-text; with a cut, the
  // masking applies to what is left.
  o.mask_instruction = true;
  o.allowed_max_length = 2;
  const auto cut = llmfs::instruction_collate({{{1, 2, 3}, 3}}, o);
  CHECK(rows(cut.target) == Rows{{kIgn, kIgn}});
  o.allowed_max_length.reset();
  CHECK(rows(llmfs::instruction_collate({{{1, 2, 3}, 3}}, o).target) == Rows{{kIgn, kIgn, kPad}});
  // Prompt length 0 (bare id lists) masks nothing.
  CHECK(rows(llmfs::instruction_collate(Rows{{1, 2}}, o).target) == Rows{{2, kPad}});
}

// --- Dataset, buckets, loaders ---

TEST_CASE("InstructionDataset encodes prompt + response and records the prompt length",
          "[unit][data]") {
  const ByteTokenizer tokenizer;
  const std::vector<llmfs::InstructionEntry> entries{entry("Do.", "x", "Done."),
                                                     entry("Go.", "", "Gone.")};
  const llmfs::InstructionDataset dataset(entries, tokenizer);
  REQUIRE(dataset.size() == 2);
  const auto first = dataset.get(0);
  const std::string prompt = llmfs::format_input(entries[0]);
  const std::string text = prompt + llmfs::format_response(entries[0]);
  CHECK(first.ids == std::vector<int64_t>(text.begin(), text.end()));
  CHECK(first.prompt_length == static_cast<int64_t>(prompt.size()));
  CHECK(
      dataset.lengths()[1] ==
      static_cast<int64_t>((llmfs::format_input(entries[1]) + "\n\n### Response:\nGone.").size()));
  const llmfs::InstructionDataset phi3(entries, tokenizer, llmfs::PromptStyle::kPhi3);
  CHECK(phi3.get(1).ids.size() == std::string("<|user|>\nGo.\n<|assistant|>:\nGone.").size());
  CHECK(phi3.get(1).prompt_length == 12);

  auto bad = entries;
  bad[1].output = "stop <|endoftext|>";
  bad[1].index = 7;
  CHECK_THROWS_WITH(llmfs::InstructionDataset(bad, tokenizer),
                    contains_text("entry 7") && contains_text("disallowed special token"));
}

TEST_CASE("length_buckets sorts by length and keeps every example exactly once", "[unit][data]") {
  const std::vector<int64_t> lengths{50, 10, 30, 10, 70, 20, 60, 40, 30, 80, 15};
  const auto buckets = llmfs::length_buckets(lengths, 4);
  REQUIRE(buckets.size() == 3);
  CHECK(buckets[0] == std::vector<int64_t>{1, 3, 10, 5});
  CHECK(buckets[1] == std::vector<int64_t>{2, 8, 7, 0});
  CHECK(buckets[2] == std::vector<int64_t>{6, 4, 9});
  std::vector<int64_t> all;
  for (const auto& b : buckets) all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expected(lengths.size());
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(all == expected);
  CHECK(llmfs::length_buckets({}, 4).empty());
  CHECK_THROWS_WITH(llmfs::length_buckets(lengths, 0), contains_text("batch_size"));
}

namespace {

// Entries whose outputs have 1 … n characters, so their lengths differ.
llmfs::InstructionSplits toy_splits(int64_t n_train) {
  llmfs::InstructionSplits splits;
  for (int64_t i = 0; i < n_train; ++i) {
    splits.train.push_back(entry(fmt::format("Q{}", i % 3), "", std::string(1 + i % 17, 'a')));
    splits.train.back().index = i;
  }
  splits.validation = {entry("V", "", "vv"), entry("W", "in", "w"), entry("X", "", "x")};
  splits.test = {entry("T", "", "t")};
  return splits;
}

}  // namespace

TEST_CASE("make_instruction_loaders: shuffled drop_last train, plain validation and test",
          "[unit][data]") {
  const ByteTokenizer tokenizer;
  const auto splits = toy_splits(21);
  llmfs::InstructionDataConfig config;
  const auto loaders = llmfs::make_instruction_loaders(splits, tokenizer, config, 4, 123);
  CHECK(loaders.train.size() == 5);
  CHECK(loaders.validation.size() == 1);
  CHECK(loaders.test.size() == 1);
  CHECK(loaders.train.options().shuffle());
  CHECK(loaders.train.options().drop_last());
  CHECK_FALSE(loaders.validation.options().shuffle());
  CHECK_FALSE(loaders.test.options().drop_last());
  for (const auto& [input, target] : loaders.validation) {
    const auto lengths = llmfs::instruction_dataset(loaders.validation).lengths();
    CHECK(input.sizes() ==
          torch::IntArrayRef{3, *std::max_element(lengths.begin(), lengths.end())});
    CHECK(target.sizes() == input.sizes());
  }
  // The same seed gives the same batches; the loader's shuffle consumes the global generator.
  const auto first_pass = [&](const llmfs::InstructionLoader& loader) {
    std::vector<Rows> out;
    for (const auto& batch : loader) out.push_back(rows(batch.input));
    return out;
  };
  const auto a =
      first_pass(llmfs::make_instruction_loaders(splits, tokenizer, config, 4, 123).train);
  const auto b =
      first_pass(llmfs::make_instruction_loaders(splits, tokenizer, config, 4, 123).train);
  CHECK(a == b);
  CHECK(a.size() == 5);

  CHECK_THROWS_WITH(llmfs::make_instruction_loaders(splits, tokenizer, config, 22, 123),
                    contains_text("fewer than the batch size 22"));
  CHECK_THROWS_WITH(llmfs::make_instruction_loaders(splits, tokenizer, config, 0, 123),
                    contains_text("batch_size"));
}

TEST_CASE("make_instruction_loaders cuts to the context length and masks when configured",
          "[unit][data]") {
  const ByteTokenizer tokenizer;
  const auto splits = toy_splits(8);
  llmfs::InstructionDataConfig config;
  config.allowed_max_length = 1024;
  config.mask_instruction = true;
  const auto loaders = llmfs::make_instruction_loaders(splits, tokenizer, config, 4, 123, 64);
  for (const auto& [input, target] : loaders.train) {
    CHECK(input.size(1) == 64);  // every byte-encoded Alpaca prompt is longer than 64
    // Prompt masking: only ignore_index targets in the first 64 positions of a long prompt.
    CHECK(target.eq(kIgn).all().item<bool>());
  }
  config.allowed_max_length.reset();
  config.mask_instruction = false;
  const auto uncut = llmfs::make_instruction_loaders(splits, tokenizer, config, 4, 123);
  for (const auto& [input, target] : uncut.train) CHECK(input.size(1) > 64);
}

TEST_CASE("bucket_by_length: every example exactly once per epoch, batches of similar length",
          "[unit][data]") {
  const ByteTokenizer tokenizer;
  const auto splits = toy_splits(30);
  llmfs::InstructionDataConfig config;
  config.bucket_by_length = true;
  const auto loaders = llmfs::make_instruction_loaders(splits, tokenizer, config, 4, 123);
  CHECK(loaders.train.size() == 8);  // 7 full buckets and one of 2: nothing dropped
  const auto& examples = llmfs::instruction_dataset(loaders.train).examples();
  const auto& groups = dynamic_cast<const llmfs::InstructionGroups&>(loaders.train.dataset());
  CHECK(groups.groups() ==
        llmfs::length_buckets(llmfs::instruction_dataset(loaders.train).lengths(), 4));

  const auto epoch = [&]() {
    std::vector<std::vector<int64_t>> order;  // the first input row of every batch
    std::multiset<std::vector<int64_t>> seen;
    int64_t padding = 0;  // pad ids in the inputs
    for (const auto& batch : loaders.train) {
      const auto r = rows(batch.input);
      for (const auto& row : r) seen.insert(row);
      order.push_back(r.front());
      padding += batch.input.eq(kPad).sum().item<int64_t>();
    }
    CHECK(seen.size() == examples.size());
    return std::make_pair(order, padding);
  };
  torch::manual_seed(123);
  const auto [first_order, first_padding] = epoch();
  const auto [second_order, second_padding] = epoch();
  CHECK(first_order != second_order);      // the batch order is reshuffled every epoch
  CHECK(first_padding == second_padding);  // the buckets stay the same

  // Each example is exactly one row of the pass: its ids, then only padding.
  std::vector<int64_t> hits(examples.size(), 0);
  for (const auto& [input, target] : loaders.train) {
    for (const auto& row : rows(input)) {
      for (size_t e = 0; e < examples.size(); ++e) {
        const auto& ids = examples[e].ids;
        if (row.size() >= ids.size() && std::equal(ids.begin(), ids.end(), row.begin()) &&
            std::all_of(row.begin() + static_cast<std::ptrdiff_t>(ids.size()), row.end(),
                        [](int64_t t) { return t == kPad; })) {
          ++hits[e];
        }
      }
    }
  }
  // The 30 toy texts are all different (instruction i % 3, output length 1 + i % 17).
  CHECK(std::all_of(hits.begin(), hits.end(), [](int64_t h) { return h == 1; }));

  // Less padding than the book's shuffled batches over the same data.
  config.bucket_by_length = false;
  const auto book = llmfs::make_instruction_loaders(splits, tokenizer, config, 4, 123);
  int64_t book_padding = 0;
  for (const auto& batch : book.train) book_padding += batch.input.eq(kPad).sum().item<int64_t>();
  CHECK(first_padding < book_padding);
}

// --- Config ---

TEST_CASE("parse_instruction_data_config reads the data section", "[unit][data]") {
  auto doc = llmfs::ConfigDocument::from_string(
      "data:\n  file: alpaca.jsonl\n  format: jsonl\n  instruction_field: prompt\n"
      "  input_field: ''\n  output_field: answer\n  prompt_style: phi3\n  train_frac: 0.8\n"
      "  test_frac: 0.0\n  allowed_max_length: null\n  pad_token_id: 0\n  ignore_index: -1\n"
      "  mask_instruction: true\n  bucket_by_length: true\n",
      "ch07.yaml");
  const auto c = llmfs::parse_instruction_data_config(doc.root().child("data"));
  doc.finish();
  CHECK(c.file == "alpaca.jsonl");
  CHECK(c.format == "jsonl");
  CHECK(c.instruction_field == "prompt");
  CHECK(c.input_field.empty());
  CHECK(c.output_field == "answer");
  CHECK(c.prompt_style == llmfs::PromptStyle::kPhi3);
  CHECK(c.train_frac == 0.8);
  CHECK(c.test_frac == 0.0);
  CHECK_FALSE(c.allowed_max_length);
  CHECK(c.pad_token_id == 0);
  CHECK(c.ignore_index == -1);
  CHECK(c.mask_instruction);
  CHECK(c.bucket_by_length);

  const llmfs::InstructionDataConfig book;
  CHECK(book.file == "instruction-data.json");
  CHECK(book.train_frac == 0.85);
  CHECK(book.test_frac == 0.10);
  CHECK(book.allowed_max_length == 1024);
  CHECK(book.pad_token_id == 50256);
  CHECK(book.ignore_index == -100);
  CHECK(book.prompt_style == llmfs::PromptStyle::kAlpaca);
  CHECK(config_problems("data:\n  prompt_style: alpaca\n").empty());
}

TEST_CASE("An unknown data key is an error naming it, with a suggestion", "[unit][data]") {
  CHECK_THAT(config_problems("data:\n  prompt_stlye: phi3\n"),
             contains_text("data.prompt_stlye") && contains_text("did you mean 'prompt_style'"));
}

TEST_CASE("A bad data value is an error naming the key", "[unit][data]") {
  CHECK_THAT(config_problems("data:\n  prompt_style: chatml\n"),
             contains_text("data.prompt_style"));
  CHECK_THAT(config_problems("data:\n  format: csv\n"), contains_text("data.format"));
  CHECK_THAT(config_problems("data:\n  train_frac: 1.0\n"), contains_text("data.train_frac"));
  CHECK_THAT(config_problems("data:\n  test_frac: -0.1\n"), contains_text("data.test_frac"));
  CHECK_THAT(config_problems("data:\n  train_frac: 0.9\n  test_frac: 0.1\n"),
             contains_text("data.test_frac") && contains_text("below 1"));
  CHECK_THAT(config_problems("data:\n  allowed_max_length: 0\n"),
             contains_text("data.allowed_max_length"));
  CHECK_THAT(config_problems("data:\n  pad_token_id: -1\n"), contains_text("data.pad_token_id"));
  CHECK_THAT(config_problems("data:\n  ignore_index: 5\n"), contains_text("data.ignore_index"));
  CHECK_THAT(config_problems("data:\n  output_field: instruction\n"),
             contains_text("data.output_field") && contains_text("different"));
  CHECK_THAT(config_problems("data:\n  instruction_field: ''\n"),
             contains_text("data.instruction_field"));
  CHECK_THAT(config_problems("data:\n  mask_instruction: maybe\n"),
             contains_text("data.mask_instruction"));
}

// --- Responses (book §7.7): extraction as Python slices, replaces and strips ---

TEST_CASE("A response is extracted as the book's Python does", "[unit][data][ch07]") {
  const std::string prompt = "Below is an instruction.\n\n### Instruction:\nSay hi.";
  CHECK(llmfs::extract_response(prompt + "\n\n### Response:\nHi there.\n", prompt) == "Hi there.");
  // Code points, not bytes: the prompt's length in characters (Python's len(str)).
  const std::string korean = "안녕하세요";
  CHECK(llmfs::extract_response(korean + "### Response:\n 반가워요 ### Response:끝\u3000\x1c\n",
                                korean) == "반가워요 끝");  // Python: '반가워요 끝'
  // Every marker is deleted; the Phi-3 marker for the Phi-3 style.
  CHECK(llmfs::extract_response("abc\n<|assistant|>:\nhi\u0085", "abc",
                                llmfs::PromptStyle::kPhi3) == "hi");
  CHECK(llmfs::extract_response("abc\n<|assistant|>:\nhi", "abc") == "<|assistant|>:\nhi");
  // A generation shorter than the prompt (decoding merged characters) gives "".
  CHECK(llmfs::extract_response("ab", "abc").empty());
}

TEST_CASE("py_strip strips what Python's str.strip() strips", "[unit][data][ch07]") {
  CHECK(llmfs::py_strip("\u200b x \u00a0\u2003") == "\u200b x");  // Python: '\u200b x'
  CHECK(llmfs::py_strip(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\u0085\u1680\u2028\u2029\u202f\u205f\u3000")
            .empty());
  CHECK(llmfs::py_strip("  한국어 \n") == "한국어");
  CHECK(llmfs::py_strip("\xff ok") == "\xff ok");  // invalid bytes stay (not white space)
  CHECK(llmfs::py_strip("") == "");
}
