// Chapter 6's data preparation on small files: reading labelled texts, balancing N classes,
// splitting, the split files, ClassificationDataset padding and truncation, the loaders, and the
// `data:` config section.
#include <filesystem>
#include <string>
#include <vector>

#include "catch.h"
#include "llmfs/config/config_node.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/numpy_random.h"
#include "llmfs/data/classification_data.h"
#include "llmfs/data/text_table.h"

namespace fs = std::filesystem;
using llmfs::test::contains_text;

namespace {

fs::path scratch() {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_classification_data";
  fs::create_directories(dir);
  return dir;
}

fs::path write(const std::string& name, const std::string& bytes) {
  const fs::path path = scratch() / name;
  llmfs::write_file_atomic(path, bytes);
  return path;
}

llmfs::ClassificationDataConfig csv_config(const fs::path& path) {
  llmfs::ClassificationDataConfig c;
  c.file = path.string();
  c.format = "csv";
  return c;
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

std::vector<llmfs::LabeledText> texts_with_labels(const std::vector<int64_t>& labels) {
  std::vector<llmfs::LabeledText> out;
  for (size_t i = 0; i < labels.size(); ++i) {
    out.push_back({"text " + std::to_string(i), labels[i], static_cast<int64_t>(i),
                   static_cast<int64_t>(i) + 2});
  }
  return out;
}

std::vector<int64_t> rows_of(const std::vector<llmfs::LabeledText>& texts) {
  std::vector<int64_t> out;
  for (const auto& t : texts) out.push_back(t.row);
  return out;
}

}  // namespace

TEST_CASE("read_labeled_texts maps labels to class ids and keeps row and line", "[unit][data]") {
  const auto path =
      write("labels.csv", "Id,Label,Text\n7,spam,\"two\nlines\"\n8,ham,one\n9,1,id label\n");
  const auto texts = llmfs::read_labeled_texts(csv_config(path));
  REQUIRE(texts.size() == 3);
  CHECK(texts[0].text == "two\nlines");
  CHECK(texts[0].label == 1);
  CHECK(texts[0].row == 0);
  CHECK(texts[0].line == 2);
  CHECK(texts[1].label == 0);
  CHECK(texts[1].line == 4);
  CHECK(texts[2].label == 1);  // a class id written as a number (the split files)

  auto tsv = csv_config(write("labels.tsv", "category\tbody\nb\tx\n"));
  tsv.format = "tsv";
  tsv.text_column = "body";
  tsv.label_column = "category";
  tsv.classes = {"a", "b", "c"};
  const auto from_tsv = llmfs::read_labeled_texts(tsv);
  REQUIRE(from_tsv.size() == 1);
  CHECK(from_tsv[0].label == 1);
}

TEST_CASE("read_labeled_texts errors name file and line", "[unit][data]") {
  const auto missing = write("missing_column.csv", "Label,Message\nham,hi\n");
  CHECK_THROWS_WITH(llmfs::read_labeled_texts(csv_config(missing)),
                    contains_text("missing_column.csv") && contains_text("no column 'Text'") &&
                        contains_text("'Label', 'Message'"));
  const auto empty = write("empty_text.csv", "Label,Text\nham,hi\nspam,\"\"\n");
  CHECK_THROWS_WITH(llmfs::read_labeled_texts(csv_config(empty)),
                    contains_text("empty_text.csv:3:") && contains_text("empty text"));
  const auto label = write("bad_label.csv", "Label,Text\nham,hi\n\nspam,x\neggs,y\n");
  CHECK_THROWS_WITH(llmfs::read_labeled_texts(csv_config(label)),
                    contains_text("bad_label.csv:5:") && contains_text("label 'eggs'") &&
                        contains_text("ham, spam"));
  const auto out_of_range = write("bad_id.csv", "Label,Text\n2,hi\n");
  CHECK_THROWS_WITH(llmfs::read_labeled_texts(csv_config(out_of_range)),
                    contains_text("bad_id.csv:2:") && contains_text("label '2'"));
  const auto unreadable = write("unreadable.csv", "Label,Text\nham,hi\nspam,a,b\n");
  CHECK_THROWS_WITH(llmfs::read_labeled_texts(csv_config(unreadable)),
                    contains_text("unreadable.csv:3:") && contains_text("expected 2"));
  auto sms = csv_config(write("sms", "ham\tok\nspam\n"));
  sms.format = "sms";
  CHECK_THROWS_WITH(llmfs::read_labeled_texts(sms), contains_text("sms:2:"));
}

TEST_CASE("balance_classes undersamples N classes with numpy's legacy generator", "[unit][data]") {
  // Class 0: 7 rows, class 1: 3 rows (the smallest), class 2: 5 rows, interleaved.
  const std::vector<int64_t> labels = {0, 2, 0, 1, 0, 2, 0, 2, 1, 0, 2, 0, 1, 2, 0};
  const auto texts = texts_with_labels(labels);
  const auto balanced = llmfs::balance_classes(texts, 3, 123);
  REQUIRE(balanced.size() == 9);
  std::vector<int64_t> expected;
  const std::vector<int64_t> class0 = {0, 2, 4, 6, 9, 11, 14}, class1 = {3, 8, 12},
                             class2 = {1, 5, 7, 10, 13};
  for (const int64_t i : llmfs::NumpyRandomState(123).choice(7, 3)) expected.push_back(class0[i]);
  expected.insert(expected.end(), class1.begin(), class1.end());  // all rows, file order
  for (const int64_t i : llmfs::NumpyRandomState(123).choice(5, 3)) expected.push_back(class2[i]);
  CHECK(rows_of(balanced) == expected);
  for (size_t i = 0; i < balanced.size(); ++i)
    CHECK(balanced[i].label == static_cast<int64_t>(i / 3));

  CHECK_THROWS_WITH(llmfs::balance_classes(texts, 4, 123), contains_text("class 3 has no rows"));
  CHECK_THROWS_WITH(llmfs::balance_classes(texts, 2, 123), contains_text("outside [0, 2)"));
  CHECK_THROWS_WITH(llmfs::balance_classes(texts, 3, -1), contains_text("seed"));
}

TEST_CASE("split_dataset shuffles as pandas' sample(frac=1) and cuts at int(n * frac)",
          "[unit][data]") {
  const auto texts = texts_with_labels(std::vector<int64_t>(23, 0));
  const auto splits = llmfs::split_dataset(texts, 0.7, 0.1, 5);
  CHECK(splits.train.size() == 16);  // int(23 * 0.7)
  CHECK(splits.validation.size() == 2);
  CHECK(splits.test.size() == 5);
  const auto order = llmfs::NumpyRandomState(5).permutation(23);
  std::vector<int64_t> all = rows_of(splits.train);
  for (const auto* part : {&splits.validation, &splits.test}) {
    for (const auto r : rows_of(*part)) all.push_back(r);
  }
  CHECK(all == order);
  CHECK_THROWS_WITH(llmfs::split_dataset(texts_with_labels({0, 1, 0, 1, 0}), 0.7, 0.1, 1),
                    contains_text("validation split of 5 rows comes out empty"));
  CHECK_THROWS_WITH(llmfs::split_dataset(texts_with_labels({0, 1, 0, 1, 0}), 0.5, 0.5, 1),
                    contains_text("below 1"));
}

TEST_CASE("prepare_classification_data names a class without rows", "[unit][data]") {
  auto config = csv_config(write("two_classes.csv", "Label,Text\na,x\nb,y\n"));
  config.classes = {"a", "b", "c"};
  CHECK_THROWS_WITH(llmfs::prepare_classification_data(config),
                    contains_text("class 'c' has no rows"));
}

TEST_CASE("Split files round-trip Korean and awkward texts", "[unit][data]") {
  llmfs::ClassificationSplits splits;
  splits.classes = {"ham", "spam"};
  splits.train = {{"운수 좋은 날, \"김첨지\"는\n웃었다", 1, 0, 1}, {"plain", 0, 1, 2}};
  splits.validation = {{"comma, \"quote\"", 0, 2, 3}};
  splits.test = {{"새침하게 흐린 품이", 1, 3, 4}};
  const auto dir = scratch() / "splits";
  llmfs::write_split_csvs(dir, splits);
  CHECK(llmfs::read_file(dir / "validation.csv") == "Label,Text\n0,\"comma, \"\"quote\"\"\"\n");
  for (const auto& [name, part] :
       {std::pair{"train.csv", &splits.train}, std::pair{"validation.csv", &splits.validation},
        std::pair{"test.csv", &splits.test}}) {
    const auto back = llmfs::read_labeled_texts(csv_config(dir / name));
    REQUIRE(back.size() == part->size());
    for (size_t i = 0; i < back.size(); ++i) {
      CHECK(back[i].text == (*part)[i].text);
      CHECK(back[i].label == (*part)[i].label);
    }
  }
}

TEST_CASE("ClassificationDataset pads to the longest text or truncates to max_length",
          "[unit][data]") {
  const ByteTokenizer tokenizer;
  const std::vector<llmfs::LabeledText> texts = {
      {"abc", 1, 0, 1}, {"abcdefg", 0, 1, 2}, {"a", 1, 2, 3}};
  const llmfs::ClassificationDataset padded(texts, tokenizer, std::nullopt, 50256);
  CHECK(padded.max_length() == 7);
  CHECK(padded.truncated() == 0);
  CHECK(padded.size() == 3);
  const auto e = padded.get(0);
  CHECK(e.input.dtype() == torch::kInt64);
  CHECK(e.input.sizes() == torch::IntArrayRef{7});
  CHECK(torch::equal(e.input,
                     torch::tensor({97, 98, 99, 50256, 50256, 50256, 50256}, torch::kInt64)));
  CHECK(e.target.dim() == 0);
  CHECK(e.target.dtype() == torch::kInt64);
  CHECK(e.target.item<int64_t>() == 1);

  const llmfs::ClassificationDataset cut(texts, tokenizer, 2, 0);
  CHECK(cut.max_length() == 2);
  CHECK(cut.truncated() == 2);
  CHECK(torch::equal(cut.get(1).input, torch::tensor({97, 98}, torch::kInt64)));
  CHECK(torch::equal(cut.get(2).input, torch::tensor({97, 0}, torch::kInt64)));

  // Longer than the context: cut to it (and logged); an explicit max_length above it is refused.
  const llmfs::ClassificationDataset context(texts, tokenizer, std::nullopt, 50256, 5);
  CHECK(context.max_length() == 5);
  CHECK(context.truncated() == 1);
  CHECK(torch::equal(context.get(1).input, torch::tensor({97, 98, 99, 100, 101}, torch::kInt64)));
  CHECK_THROWS_WITH(llmfs::ClassificationDataset(texts, tokenizer, 6, 50256, 5),
                    contains_text("padding length 6 exceeds the model's context length 5"));
  CHECK_THROWS_WITH(llmfs::ClassificationDataset({{"a <|endoftext|>", 0, 4, 6}}, tokenizer, 8, 0),
                    contains_text("row 4 (file line 6)"));
  CHECK_THROWS_AS(llmfs::ClassificationDataset({}, tokenizer, std::nullopt, 0), llmfs::Error);
  CHECK_THROWS_AS(llmfs::ClassificationDataset(texts, tokenizer, 0, 0), llmfs::Error);
}

TEST_CASE("make_classification_loaders: shuffled drop_last train, padded like train",
          "[unit][data]") {
  const ByteTokenizer tokenizer;
  llmfs::ClassificationSplits splits;
  for (int i = 0; i < 10; ++i)
    splits.train.push_back({std::string(1 + i % 4, 'x'), i % 2, i, i + 1});
  splits.validation = {{"a long validation text", 0, 10, 11}, {"b", 1, 11, 12}, {"c", 1, 12, 13}};
  splits.test = {{"t", 0, 13, 14}};
  const llmfs::ClassificationDataConfig config;
  const auto loaders = llmfs::make_classification_loaders(splits, tokenizer, config, 4, 123, 1024);
  CHECK(loaders.max_length == 4);
  CHECK(loaders.train.size() == 2);
  CHECK(loaders.validation.size() == 1);
  CHECK(loaders.test.size() == 1);
  CHECK(loaders.train.options().shuffle());
  CHECK(loaders.train.options().drop_last());
  CHECK_FALSE(loaders.validation.options().shuffle());
  CHECK_FALSE(loaders.test.options().drop_last());
  for (const auto& [input, target] : loaders.validation) {
    CHECK(input.sizes() == torch::IntArrayRef{3, 4});
    CHECK(target.sizes() == torch::IntArrayRef{3});
  }
  CHECK_THROWS_WITH(llmfs::make_classification_loaders(splits, tokenizer, config, 11, 123, 1024),
                    contains_text("fewer than the batch size 11"));
}

TEST_CASE("parse_classification_data_config reads and checks the data section", "[unit][data]") {
  {
    auto doc = llmfs::ConfigDocument::from_string(
        "data:\n  file: reviews.csv\n  format: csv\n  text_column: review\n  label_column: stars\n"
        "  classes: [bad, ok, good]\n  balance: false\n  seed: 7\n  train_frac: 0.8\n"
        "  validation_frac: 0.05\n  max_length: 256\n",
        "demo.yaml");
    const auto c = llmfs::parse_classification_data_config(doc.root().child("data"));
    doc.finish();
    CHECK(c.file == "reviews.csv");
    CHECK(c.classes == std::vector<std::string>{"bad", "ok", "good"});
    CHECK_FALSE(c.balance);
    CHECK(c.seed == 7);
    CHECK(c.max_length == 256);
    CHECK(c.pad_token_id == 50256);
  }
  const auto problems = [](const std::string& yaml) {
    auto doc = llmfs::ConfigDocument::from_string(yaml, "bad.yaml");
    llmfs::parse_classification_data_config(doc.root().child("data"));
    try {
      doc.finish();
    } catch (const llmfs::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_THAT(problems("data:\n  format: json\n"), contains_text("data.format"));
  CHECK_THAT(problems("data:\n  read_mode: fast\n"), contains_text("data.read_mode"));
  CHECK_THAT(problems("data:\n  classes: [spam]\n"), contains_text("at least two"));
  CHECK_THAT(problems("data:\n  classes: [a, b, a]\n"), contains_text("unique"));
  CHECK_THAT(problems("data:\n  train_frac: 1.5\n"), contains_text("data.train_frac"));
  CHECK_THAT(problems("data:\n  train_frac: 0.7\n  validation_frac: 0.3\n"),
             contains_text("below 1"));
  CHECK_THAT(problems("data:\n  max_length: 0\n"), contains_text("data.max_length"));
  CHECK_THAT(problems("data:\n  seed: -1\n"), contains_text("data.seed"));
  CHECK_THAT(problems("data:\n  text_column: body\n"), contains_text("sms format"));
  CHECK(problems("data:\n  format: csv\n  text_column: body\n").empty());
}
