// The pretraining data recipe: reading and splitting text, loader construction, bad input.
#include <filesystem>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/train/pretrain_data.h"

namespace fs = std::filesystem;

namespace {

// One id per byte: enough to test windowing without the GPT-2 vocabulary.
class ByteTokenizer : public llmfs::Tokenizer {
 public:
  std::vector<int64_t> encode(std::string_view text,
                              const llmfs::EncodeOptions& = {}) const override {
    std::vector<int64_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string decode(std::span<const int64_t> ids) const override {
    std::string s;
    for (auto id : ids) s += static_cast<char>(id);
    return s;
  }
  int64_t vocab_size() const override { return 256; }
  std::optional<int64_t> special_token_id(std::string_view) const override { return std::nullopt; }
  std::string name() const override { return "bytes"; }
};

fs::path write_temp(const std::string& name, const std::string& bytes) {
  const fs::path path = fs::temp_directory_path() / ("llmfs_test_pretrain_" + name);
  llmfs::write_file_atomic(path, bytes);
  return path;
}

}  // namespace

TEST_CASE("split_text splits by characters as Python does, never inside a UTF-8 character",
          "[unit][train]") {
  // 10 characters: 5 Hangul syllables (3 bytes each) and 5 ASCII letters.
  const std::string text = "운수좋은날abcde";
  const auto s = llmfs::split_text(text, 0.9);  // int(0.9 * 10) = 9 characters
  CHECK(s.train_chars == 9);
  CHECK(s.val_chars == 1);
  CHECK(s.train == "운수좋은날abcd");
  CHECK(s.val == "e");
  const auto k = llmfs::split_text(text, 0.3);  // 3 characters
  CHECK(k.train == "운수좋");
  // the-verdict's split (BOOK.md §6.3): int(0.90 * 20479) = 18431.
  CHECK(llmfs::split_text(std::string(20479, 'x'), 0.9).train_chars == 18431);
}

TEST_CASE("read_training_text reads UTF-8 with universal newlines and names bad files",
          "[unit][train]") {
  CHECK(llmfs::read_training_text(write_temp("crlf.txt", "a\r\nb\rc\n").c_str()) == "a\nb\nc\n");
  CHECK_THROWS_WITH(llmfs::read_training_text(write_temp("empty.txt", "").string()),
                    llmfs::test::contains_text("the training text is empty"));
  CHECK_THROWS_WITH(llmfs::read_training_text(write_temp("bad.txt", "ok\xff").string()),
                    llmfs::test::contains_text("bad.txt"));
  CHECK_THROWS_WITH(llmfs::read_training_text("/nonexistent/text.txt"),
                    llmfs::test::contains_text("/nonexistent/text.txt: no such file"));
}

TEST_CASE("make_pretrain_loaders builds the book's loaders and explains a too-short text",
          "[unit][train]") {
  const ByteTokenizer tokenizer;
  llmfs::PretrainDataConfig data;
  data.max_length = 4;
  data.stride = 4;
  const auto split = llmfs::split_text(std::string(90, 'a') + std::string(10, 'b'), 0.9);
  const auto loaders = llmfs::make_pretrain_loaders(split, tokenizer, data, 2, 123);
  CHECK(loaders.train_tokens == 90);
  CHECK(loaders.train.size() == 11);  // 22 windows of 4 (range(0, 86, 4)), batches of 2
  CHECK(loaders.train.options().shuffle());
  CHECK(loaders.train.options().drop_last());
  CHECK(loaders.val.size() == 1);  // 10 tokens: windows at 0 and 4, one batch
  CHECK_FALSE(loaders.val.options().shuffle());

  data.max_length = 10;
  CHECK_THROWS_WITH(llmfs::make_pretrain_loaders(split, tokenizer, data, 2, 123),
                    llmfs::test::contains_text("the validation split has 10 tokens, not more than "
                                               "data.max_length (10)"));
  data.max_length = 40;
  data.stride = 40;
  llmfs::TextSplit long_val{std::string(90, 'a'), std::string(50, 'b'), 90, 50};
  CHECK_THROWS_WITH(llmfs::make_pretrain_loaders(long_val, tokenizer, data, 4, 123),
                    llmfs::test::contains_text("fewer than train.batch_size (4)"));
}
