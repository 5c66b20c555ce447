// Chapter 6's data on the real SMS collection (BOOK.md §1.4, §7.1–7.3): the rows read with the
// book's quoting rule (also against Python's csv module, live), the balanced set, the splits,
// the padding length and the loaders' batch counts.
#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "catch.h"
#include "llmfs/core/data_files.h"
#include "llmfs/core/file_io.h"
#include "llmfs/data/classification_data.h"
#include "llmfs/data/text_table.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "run_python.h"

namespace fs = std::filesystem;

namespace {

std::vector<int64_t> rows_of(const std::vector<llmfs::LabeledText>& texts, size_t first,
                             size_t count) {
  std::vector<int64_t> out;
  for (size_t i = first; i < first + count && i < texts.size(); ++i) out.push_back(texts[i].row);
  return out;
}

std::array<int64_t, 2> class_counts(const std::vector<llmfs::LabeledText>& texts) {
  std::array<int64_t, 2> counts{0, 0};
  for (const auto& t : texts) ++counts.at(static_cast<size_t>(t.label));
  return counts;
}

}  // namespace

TEST_CASE("The SMS collection reads as the book's DataFrame (C6-01, C6-02)", "[golden][ch06]") {
  const auto path = llmfs::data_file("SMSSpamCollection");
  const auto book = llmfs::read_sms_collection(path, "book");
  REQUIRE(book.rows.size() == 5572);
  int64_t ham = 0, spam = 0;
  for (const auto& row : book.rows) (row[0] == "ham" ? ham : spam) += 1;
  CHECK(ham == 4825);
  CHECK(spam == 747);
  CHECK(book.rows[0][1].starts_with("Go until jurong point, crazy.. Available only "));
  CHECK(book.rows[5567][0] == "spam");
  CHECK(book.rows[5567][1].starts_with("This is the 2nd time we have tried 2 contact u"));
  CHECK(book.rows[5568][1] == "Will ü b going to esplanade fr home?");
  CHECK(book.rows.back() == std::vector<std::string>{"ham", "Rofl. Its true to its name"});
  // Row 5081 absorbs file lines 5083 and 5084 (BOOK.md §1.4).
  CHECK(book.lines[5081] == 5082);
  CHECK(book.lines[5082] == 5085);
  CHECK(book.rows[5081][1].find("\nham\tYeah, give me a call") != std::string::npos);
  CHECK(book.rows[5081][1].ends_with("I\u0092L CALL U\""));

  const auto plain = llmfs::read_sms_collection(path, "plain");
  CHECK(plain.rows.size() == 5574);
  CHECK(plain.lines.back() == 5574);

  // Python's csv module gives the same rows (BOOK.md §1.4): compared through a written CSV.
  llmfs::TextTable ours = book;
  const auto dir = fs::temp_directory_path() / "llmfs_golden_classification";
  llmfs::write_csv(dir / "ours.csv", ours);
  const auto [out, code] = llmfs::test::run_python(R"(
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    theirs = list(csv.reader(f, delimiter="\t"))
with open(sys.argv[2], newline="", encoding="utf-8") as f:
    ours = list(csv.reader(f))[1:]
print(len(theirs), len(ours))
bad = [i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b]
print("OK" if len(theirs) == len(ours) and not bad else f"differ at rows {bad[:5]}")
)",
                                                   {path.string(), (dir / "ours.csv").string()},
                                                   "llmfs_golden_sms_csv.py");
  INFO(out);
  CHECK(code == 0);
  CHECK(out == "5572 5572\nOK\n");
}

TEST_CASE("Balanced set and splits of chapter 6 (C6-03, C6-04, BOOK.md 7.2)", "[golden][ch06]") {
  llmfs::ClassificationDataConfig config;  // the book's defaults
  const auto texts = llmfs::read_labeled_texts(config);
  REQUIRE(texts.size() == 5572);
  CHECK(class_counts(texts) == std::array<int64_t, 2>{4825, 747});

  const auto balanced = llmfs::balance_classes(texts, 2, 123);
  REQUIRE(balanced.size() == 1494);
  CHECK(class_counts(balanced) == std::array<int64_t, 2>{747, 747});
  CHECK(rows_of(balanced, 0, 5) == std::vector<int64_t>{4307, 4138, 4831, 4461, 5440});
  CHECK(rows_of(balanced, 1489, 5) == std::vector<int64_t>{5537, 5540, 5547, 5566, 5567});
  CHECK(balanced[1].text == "Just got to  &lt;#&gt;");
  CHECK(balanced[4].text == "Thank you. do you generally date the brothas?");

  const auto splits = llmfs::prepare_classification_data(config);
  CHECK(splits.classes == std::vector<std::string>{"ham", "spam"});
  CHECK(splits.train.size() == 1045);
  CHECK(splits.validation.size() == 149);
  CHECK(splits.test.size() == 300);
  CHECK(class_counts(splits.train) == std::array<int64_t, 2>{528, 517});
  CHECK(class_counts(splits.validation) == std::array<int64_t, 2>{70, 79});
  CHECK(class_counts(splits.test) == std::array<int64_t, 2>{149, 151});
  CHECK(rows_of(splits.train, 0, 5) == std::vector<int64_t>{2087, 4694, 881, 1172, 2170});
  CHECK(splits.train[0].text == "Dude how do you like the buff wind.");
  CHECK(rows_of(splits.validation, 0, 3) == std::vector<int64_t>{3778, 1263, 990});
  CHECK(rows_of(splits.test, 0, 3) == std::vector<int64_t>{2079, 3230, 3720});

  // The book's split files read back unchanged.
  const auto dir = fs::temp_directory_path() / "llmfs_golden_classification_splits";
  llmfs::write_split_csvs(dir, splits);
  llmfs::ClassificationDataConfig from_csv;
  from_csv.file = (dir / "train.csv").string();
  from_csv.format = "csv";
  const auto train_back = llmfs::read_labeled_texts(from_csv);
  REQUIRE(train_back.size() == splits.train.size());
  for (size_t i = 0; i < train_back.size(); ++i) {
    CHECK(train_back[i].text == splits.train[i].text);
    CHECK(train_back[i].label == splits.train[i].label);
  }

  // Plain mode: every physical line is a row.
  config.read_mode = "plain";
  CHECK(llmfs::read_labeled_texts(config).size() == 5574);
}

TEST_CASE("GPT-2 padding length and loaders of chapter 6 (C6-06 … C6-08)", "[golden][ch06]") {
  const llmfs::ClassificationDataConfig config;
  const auto splits = llmfs::prepare_classification_data(config);
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  const auto loaders = llmfs::make_classification_loaders(splits, tokenizer, config, 8, 123, 1024);
  CHECK(loaders.max_length == 120);
  CHECK(loaders.train.size() == 130);
  CHECK(loaders.validation.size() == 19);
  CHECK(loaders.test.size() == 38);
  torch::Tensor last_input, last_target;
  int64_t batches = 0;
  for (const auto& [input, target] : loaders.train) {
    last_input = input;
    last_target = target;
    ++batches;
  }
  CHECK(batches == 130);
  CHECK(last_input.sizes() == torch::IntArrayRef{8, 120});
  CHECK(last_target.sizes() == torch::IntArrayRef{8});
  CHECK(last_input.dtype() == torch::kInt64);
  CHECK(last_target.dtype() == torch::kInt64);
  const auto& train = dynamic_cast<const llmfs::ClassificationDataset&>(loaders.train.dataset());
  CHECK(train.truncated() == 0);
  const auto& test = dynamic_cast<const llmfs::ClassificationDataset&>(loaders.test.dataset());
  CHECK(test.max_length() == 120);
}
