// Chapter 7's data on the real instruction-data.json (BOOK.md §1.3, §8.1, §8.2): the entries,
// the prompts, the split, the collate drafts and the final collate on the book's toy batch, the
// cross entropy with ignored targets, the training loader's batch lengths and last batch
// (C7-01 … C7-17), and the batches of a Python reference of the same pipeline
// (tests/reference/fixtures_instruct.py: tiktoken, PyTorch's DataLoader) compared exactly.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "catch.h"
#include "llmfs/core/data_files.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/repr.h"
#include "llmfs/data/instruction_data.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/train/loss.h"
#include "llmfs_test_paths.h"
#include "tensor_compare.h"

namespace {

using json = nlohmann::json;
using Rows = std::vector<std::vector<int64_t>>;
using llmfs::test::to_vector;

Rows rows(const torch::Tensor& t) {
  Rows out;
  for (int64_t i = 0; i < t.size(0); ++i) out.push_back(to_vector(t[i]));
  return out;
}

std::vector<llmfs::InstructionEntry> book_entries() {
  return llmfs::read_instruction_entries(llmfs::data_file("instruction-data.json"));
}

// BOOK.md C7-14: the sequence length of each of the 116 training batches, in order.
const std::vector<int64_t> kTrainLengths{
    61, 76, 73, 68, 65, 72, 80, 67, 62, 75, 62, 68, 67, 77, 69, 79, 71, 66, 83, 68, 80, 71, 69, 65,
    68, 60, 59, 69, 63, 65, 76, 66, 71, 91, 65, 64, 67, 66, 64, 65, 75, 89, 59, 88, 83, 83, 70, 65,
    74, 76, 67, 75, 83, 69, 67, 60, 60, 66, 80, 71, 61, 58, 71, 67, 68, 63, 87, 68, 64, 68, 71, 68,
    71, 61, 65, 67, 65, 64, 60, 72, 64, 70, 57, 72, 64, 68, 62, 74, 80, 68, 70, 91, 61, 66, 80, 81,
    74, 82, 63, 83, 68, 67, 77, 91, 64, 61, 75, 64, 66, 78, 66, 64, 83, 66, 74, 69};

// BOOK.md C7-15 (inputs[0] of the last training batch); C7-16 is it shifted by one with the
// end-of-text kept and the padding after it ignored.
const std::vector<int64_t> kLastInput{
    21106, 318,   281,  12064, 326,   8477,  257,   4876,  13,    19430, 257,   2882,  326,  20431,
    32543, 262,   2581, 13,    198,   198,   21017, 46486, 25,    198,   30003, 6525,  262,  6827,
    1262,  257,   985,  576,   13,    198,   198,   21017, 23412, 25,    198,   464,   5156, 318,
    845,   13779, 13,   198,   198,   21017, 18261, 25,    198,   464,   5156,  318,   355,  13779,
    355,   257,   4936, 13,    50256, 50256, 50256, 50256, 50256, 50256, 50256, 50256, 50256};
const std::vector<int64_t> kLastTarget{
    318,   281,  12064, 326,   8477,  257,   4876,  13,    19430, 257,   2882, 326,  20431, 32543,
    262,   2581, 13,    198,   198,   21017, 46486, 25,    198,   30003, 6525, 262,  6827,  1262,
    257,   985,  576,   13,    198,   198,   21017, 23412, 25,    198,   464,  5156, 318,   845,
    13779, 13,   198,   198,   21017, 18261, 25,    198,   464,   5156,  318,  355,  13779, 355,
    257,   4936, 13,    50256, -100,  -100,  -100,  -100,  -100,  -100,  -100, -100, -100};

}  // namespace

TEST_CASE("instruction-data.json reads as the book's list (C7-01 … C7-03)",
          "[golden][book][ch07]") {
  const auto data = book_entries();
  CHECK(data.size() == 1100);  // C7-01
  CHECK(std::count_if(data.begin(), data.end(), [](const auto& e) { return e.input.empty(); }) ==
        775);                        // BOOK.md §1.1
  CHECK(llmfs::py_repr(data[50]) ==  // C7-02
        "{'instruction': 'Identify the correct spelling of the following word.', 'input': "
        "'Ocassion', 'output': \"The correct spelling is 'Occasion.'\"}");
  CHECK(llmfs::py_repr(data[999]) ==  // C7-03
        "{'instruction': \"What is an antonym of 'complicated'?\", 'input': '', 'output': \"An "
        "antonym of 'complicated' is 'simple'.\"}");
  for (const auto& e : data) CHECK(e.extra.empty());
}

TEST_CASE("Alpaca prompts of data[50] and data[999] (C7-04, C7-05)", "[golden][book][ch07]") {
  const auto data = book_entries();
  CHECK(llmfs::format_input(data[50]) + llmfs::format_response(data[50]) ==
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nIdentify the correct spelling of the "
        "following word.\n\n### Input:\nOcassion\n\n### Response:\nThe correct spelling is "
        "'Occasion.'");
  CHECK(llmfs::format_input(data[999]) + llmfs::format_response(data[999]) ==
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nWhat is an antonym of 'complicated'?\n\n"
        "### Response:\nAn antonym of 'complicated' is 'simple'.");
  // BOOK.md §1.3: the prompt's first 24 GPT-2 ids.
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  const auto ids = tokenizer.encode(llmfs::format_input(data[50]));
  CHECK(std::vector<int64_t>(ids.begin(), ids.begin() + 24) ==
        std::vector<int64_t>{21106, 318,   281, 12064, 326,   8477,  257,   4876,
                             13,    19430, 257, 2882,  326,   20431, 32543, 262,
                             2581,  13,    198, 198,   21017, 46486, 25,    198});
}

TEST_CASE("The book's split and pad id (C7-06, C7-07, C7-17)", "[golden][book][ch07]") {
  const llmfs::InstructionDataConfig config;
  const auto splits = llmfs::prepare_instruction_data(config);
  CHECK(splits.train.size() == 935);
  CHECK(splits.validation.size() == 55);
  CHECK(splits.test.size() == 110);
  CHECK(splits.validation[0].index == 1045);
  CHECK(splits.test[0].index == 935);
  CHECK(splits.test[0].instruction == "Rewrite the sentence using a simile.");
  CHECK(splits.test[0].input == "The car is very fast.");
  CHECK(llmfs::format_input(splits.validation[0]) ==  // C7-17
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nConvert the active sentence to passive: "
        "'The chef cooks the meal every day.'");

  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  llmfs::EncodeOptions allow;
  allow.allowed_special = {"<|endoftext|>"};
  CHECK(tokenizer.encode("<|endoftext|>", allow) == std::vector<int64_t>{50256});  // C7-07
}

TEST_CASE("The collate drafts and the final collate on the toy batch (C7-08 … C7-10)",
          "[golden][book][ch07]") {
  const Rows batch{{0, 1, 2, 3, 4}, {5, 6}, {7, 8, 9}};
  const std::string inputs =
      "tensor([[    0,     1,     2,     3,     4],\n"
      "        [    5,     6, 50256, 50256, 50256],\n"
      "        [    7,     8,     9, 50256, 50256]])";
  CHECK(llmfs::py_repr(llmfs::custom_collate_draft_1(batch)) == inputs);  // C7-08
  const auto draft2 = llmfs::custom_collate_draft_2(batch);               // C7-09
  CHECK(llmfs::py_repr(draft2.input) == inputs);
  CHECK(llmfs::py_repr(draft2.target) ==
        "tensor([[    1,     2,     3,     4, 50256],\n"
        "        [    6, 50256, 50256, 50256, 50256],\n"
        "        [    8,     9, 50256, 50256, 50256]])");
  const auto final_batch = llmfs::instruction_collate(batch);  // C7-10
  CHECK(llmfs::py_repr(final_batch.input) == inputs);
  CHECK(llmfs::py_repr(final_batch.target) ==
        "tensor([[    1,     2,     3,     4, 50256],\n"
        "        [    6, 50256,  -100,  -100,  -100],\n"
        "        [    8,     9, 50256,  -100,  -100]])");
}

TEST_CASE("Cross entropy ignores targets of -100 (C7-11 … C7-13)", "[golden][book][ch07]") {
  // The book's logits as one sequence of (T, V) = (2, 2) and (3, 2); lm_loss takes (B, T, V).
  const auto logits_1 = torch::tensor({{-1.0f, 1.0f}, {-0.5f, 1.5f}}).unsqueeze(0);
  const auto loss_1 = llmfs::lm_loss(logits_1, torch::tensor({{0, 1}}));
  CHECK(loss_1.item<double>() == Approx(1.1269).margin(1e-4));  // C7-11
  const auto logits_2 = torch::tensor({{-1.0f, 1.0f}, {-0.5f, 1.5f}, {-0.5f, 1.5f}}).unsqueeze(0);
  const auto loss_2 = llmfs::lm_loss(logits_2, torch::tensor({{0, 1, 1}}));
  CHECK(loss_2.item<double>() == Approx(0.7936).margin(1e-4));  // C7-12
  const auto loss_3 = llmfs::lm_loss(logits_2, torch::tensor({{0, 1, -100}}));
  CHECK(llmfs::py_repr(loss_3) == "tensor(1.1269)");  // C7-13
  CHECK(torch::equal(loss_1, loss_3));                // loss_1 == loss_3: True
}

TEST_CASE("The training loader's batch lengths and last batch (C7-14 … C7-16)",
          "[golden][book][ch07]") {
  const llmfs::InstructionDataConfig config;
  const auto splits = llmfs::prepare_instruction_data(config);
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  const auto loaders = llmfs::make_instruction_loaders(splits, tokenizer, config, 8, 123, 1024);
  CHECK(loaders.train.size() == 116);
  CHECK(loaders.validation.size() == 7);
  CHECK(loaders.test.size() == 14);
  std::vector<int64_t> lengths;
  torch::Tensor last_input, last_target;
  for (const auto& [input, target] : loaders.train) {
    CHECK(input.size(0) == 8);
    CHECK(target.sizes() == input.sizes());
    lengths.push_back(input.size(1));
    last_input = input;
    last_target = target;
  }
  CHECK(lengths == kTrainLengths);                  // C7-14
  CHECK(to_vector(last_input[0]) == kLastInput);    // C7-15
  CHECK(to_vector(last_target[0]) == kLastTarget);  // C7-16
}

TEST_CASE("Chapter 7 batches equal the Python reference (tiktoken, PyTorch DataLoader)",
          "[golden][ch07]") {
  const auto ref = json::parse(
      llmfs::read_file(std::string(llmfs::test::kFixturesDir) + "/instruct/instruct.json"));
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  const std::string name = GENERATE("book", "masked", "cut64", "phi3");
  INFO("scenario " << name);
  const auto& s = ref.at(name);
  llmfs::InstructionDataConfig config;
  if (name == "masked") config.mask_instruction = true;
  if (name == "cut64") config.allowed_max_length = 64;
  if (name == "phi3") config.prompt_style = llmfs::PromptStyle::kPhi3;
  const auto splits = llmfs::prepare_instruction_data(config);
  const auto loaders = llmfs::make_instruction_loaders(splits, tokenizer, config, 8, 123, 1024);
  CHECK(loaders.train.size() == s.at("num_batches").get<int64_t>());

  const auto check_batch = [&](const llmfs::Batch& batch, const std::string& which) {
    INFO(which);
    const auto& expected = s.at("batches").at(which);
    CHECK(rows(batch.input) == expected.at("inputs").get<Rows>());
    CHECK(rows(batch.target) == expected.at("targets").get<Rows>());
  };
  // The fixture's order of passes: train, (train again, validation, test).
  std::vector<llmfs::Batch> first;
  for (const auto& batch : loaders.train) first.push_back(batch);
  std::vector<int64_t> lengths;
  for (const auto& b : first) lengths.push_back(b.input.size(1));
  CHECK(lengths == s.at("lengths").at(0).get<std::vector<int64_t>>());
  check_batch(first.at(0), "train_0");
  check_batch(first.at(1), "train_1");
  if (name != "book") return;
  check_batch(first.back(), "train_last");
  std::vector<int64_t> second;
  for (const auto& b : loaders.train) second.push_back(b.input.size(1));
  CHECK(second == s.at("lengths").at(1).get<std::vector<int64_t>>());
  check_batch(*loaders.validation.begin(), "val_0");
  llmfs::Batch last_test;
  for (const auto& b : loaders.test) last_test = b;
  check_batch(last_test, "test_last");
}
