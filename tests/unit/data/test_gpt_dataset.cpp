// GPTDatasetV1 (book §2.6): window counts and contents, input validation.
#include <numeric>
#include <optional>
#include <set>
#include <string>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/data/gpt_dataset.h"
#include "tensor_compare.h"

namespace {

std::vector<int64_t> iota_ids(int64_t n, int64_t first = 100) {
  std::vector<int64_t> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

// A byte tokenizer: every byte is its own id; "<|endoftext|>" is 50256 when allowed, an error
// otherwise (as tiktoken). Records the options it was called with.
class ByteTokenizer : public llmfs::Tokenizer {
 public:
  std::vector<int64_t> encode(std::string_view text,
                              const llmfs::EncodeOptions& options = {}) const override {
    last_options = options;
    std::vector<int64_t> ids;
    for (size_t i = 0; i < text.size();) {
      if (text.substr(i).starts_with(llmfs::kEndOfText)) {
        if (!options.allowed_special.contains(std::string(llmfs::kEndOfText))) {
          llmfs::fail("disallowed special token");
        }
        ids.push_back(50256);
        i += llmfs::kEndOfText.size();
      } else {
        ids.push_back(static_cast<unsigned char>(text[i++]));
      }
    }
    return ids;
  }
  std::string decode(std::span<const int64_t> ids) const override {
    return std::string(ids.begin(), ids.end());
  }
  int64_t vocab_size() const override { return 50257; }
  std::optional<int64_t> special_token_id(std::string_view token) const override {
    return token == llmfs::kEndOfText ? std::optional<int64_t>(50256) : std::nullopt;
  }
  std::string name() const override { return "bytes"; }

  mutable llmfs::EncodeOptions last_options;
};

}  // namespace

TEST_CASE("GPTDatasetV1 has floor((N - max_length - 1) / stride) + 1 windows", "[unit][data]") {
  for (const int64_t n : {2, 5, 9, 10, 11, 37}) {
    for (const int64_t max_length : {1, 2, 4, 8}) {
      for (const int64_t stride : {1, 2, 3, 4, 5, 8}) {
        if (n <= max_length) continue;
        int64_t expected = 0;  // the book's loop: range(0, N - max_length, stride)
        for (int64_t i = 0; i < n - max_length; i += stride) ++expected;
        const llmfs::GPTDatasetV1 dataset(iota_ids(n), max_length, stride);
        INFO("N=" << n << " max_length=" << max_length << " stride=" << stride);
        CHECK(dataset.size() == expected);
        CHECK(dataset.size() == (n - max_length - 1) / stride + 1);
      }
    }
  }
}

TEST_CASE("GPTDatasetV1 windows are the tokens at i*stride and the same shifted by one",
          "[unit][data]") {
  const llmfs::GPTDatasetV1 dataset(iota_ids(11), /*max_length=*/4, /*stride=*/3);
  REQUIRE(dataset.size() == 3);
  CHECK(dataset.num_tokens() == 11);
  for (int64_t i = 0; i < dataset.size(); ++i) {
    const auto example = dataset.get(i);
    CHECK(example.input.scalar_type() == torch::kInt64);
    CHECK(example.target.scalar_type() == torch::kInt64);
    CHECK(example.input.sizes() == torch::IntArrayRef{4});
    const int64_t s = 100 + 3 * i;
    CHECK(llmfs::test::to_vector(example.input) == std::vector<int64_t>{s, s + 1, s + 2, s + 3});
    CHECK(llmfs::test::to_vector(example.target) ==
          std::vector<int64_t>{s + 1, s + 2, s + 3, s + 4});
  }
  // Tokens 100..110: the last input window ends one before the last token, its target on it.
  CHECK(llmfs::test::to_vector(dataset.get(2).input).back() == 109);
  CHECK(llmfs::test::to_vector(dataset.get(2).target).back() == 110);
}

TEST_CASE("GPTDatasetV1 examples are copies: changing one leaves the dataset intact",
          "[unit][data]") {
  const llmfs::GPTDatasetV1 dataset(iota_ids(6), 2, 1);
  dataset.get(0).input.fill_(-1);
  CHECK(llmfs::test::to_vector(dataset.get(0).input) == std::vector<int64_t>{100, 101});
}

TEST_CASE("GPTDatasetV1 says how many tokens a too-short input needs", "[unit][data]") {
  REQUIRE_THROWS_AS(llmfs::GPTDatasetV1(iota_ids(4), 4, 1), llmfs::Error);
  REQUIRE_THROWS_WITH(
      llmfs::GPTDatasetV1(iota_ids(4), 4, 1),
      llmfs::test::contains_text("needs at least 5 tokens") && llmfs::test::contains_text("got 4"));
  REQUIRE_THROWS_WITH(llmfs::GPTDatasetV1(std::vector<int64_t>{}, 256, 128),
                      llmfs::test::contains_text("needs at least 257 tokens"));
  CHECK(llmfs::GPTDatasetV1(iota_ids(5), 4, 1).size() == 1);
}

TEST_CASE("GPTDatasetV1 rejects max_length or stride below 1", "[unit][data]") {
  REQUIRE_THROWS_WITH(llmfs::GPTDatasetV1(iota_ids(10), 0, 1),
                      llmfs::test::contains_text("max_length must be at least 1, got 0"));
  REQUIRE_THROWS_WITH(llmfs::GPTDatasetV1(iota_ids(10), 4, 0),
                      llmfs::test::contains_text("stride must be at least 1, got 0"));
  REQUIRE_THROWS_WITH(llmfs::GPTDatasetV1(iota_ids(10), 4, -2),
                      llmfs::test::contains_text("stride must be at least 1, got -2"));
}

TEST_CASE("GPTDatasetV1 from text encodes with <|endoftext|> allowed", "[unit][data]") {
  const ByteTokenizer tokenizer;
  const llmfs::GPTDatasetV1 dataset("ab<|endoftext|>cd", tokenizer, 2, 1);
  CHECK(tokenizer.last_options.allowed_special.contains("<|endoftext|>"));
  REQUIRE(dataset.num_tokens() == 5);
  CHECK(llmfs::test::to_vector(dataset.get(1).input) == std::vector<int64_t>{'b', 50256});
  CHECK(llmfs::test::to_vector(dataset.get(1).target) == std::vector<int64_t>{50256, 'c'});
  REQUIRE_THROWS_WITH(llmfs::GPTDatasetV1("abc", tokenizer, 4, 1),
                      llmfs::test::contains_text("needs at least 5 tokens"));
}

TEST_CASE("create_dataloader_v1 has the book's defaults", "[unit][data]") {
  const ByteTokenizer tokenizer;
  const std::string text(1000, 'x');
  const auto loader = llmfs::create_dataloader_v1(text, tokenizer);
  CHECK(loader.options().batch_size() == 4);
  CHECK(loader.options().shuffle());
  CHECK(loader.options().drop_last());
  const auto& dataset = dynamic_cast<const llmfs::GPTDatasetV1&>(loader.dataset());
  CHECK(dataset.max_length() == 256);
  CHECK(dataset.stride() == 128);
  CHECK(dataset.size() == (1000 - 256 - 1) / 128 + 1);  // 6 windows
  CHECK(loader.size() == 1);                            // 6 / 4, last partial batch dropped
}
