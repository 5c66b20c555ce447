#include <filesystem>
#include <random>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/tokenizer/sentencepiece_tokenizer.h"

namespace {

// Pseudo-Korean text: words of 1-3 syllables from a small set, in lines.
std::string korean_text() {
  const std::vector<std::string> syllables = {"운", "수", "좋", "은", "날", "김", "첨", "지", "인",
                                              "력", "거", "비", "가", "오", "고", "다", "이", "었"};
  std::mt19937 rng(7);
  std::string text;
  for (int line = 0; line < 300; ++line) {
    for (int w = 0; w < 12; ++w) {
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int s = 0; s < n; ++s) text += syllables[rng() % syllables.size()];
      text += w == 11 ? ".\n" : " ";
    }
  }
  return text;
}

llmfs::SentencePieceTrainerConfig small_config() {
  llmfs::SentencePieceTrainerConfig c;
  c.vocab_size = 400;
  return c;
}

}  // namespace

TEST_CASE("SentencePiece trained in memory round-trips text, unseen characters included",
          "[unit][tokenizer]") {
  const std::string text = korean_text();
  const auto tok = llmfs::SentencePieceTokenizer::train(text, small_config());
  CHECK(tok.vocab_size() == 400);
  CHECK(tok.special_token_id("<|endoftext|>") == 1);
  const auto ids = tok.encode(text);
  CHECK(ids.size() < text.size() / 3);  // fewer tokens than syllables
  CHECK(tok.decode(ids) == text);
  // Characters never seen in training come back through byte pieces.
  for (const std::string s : {"  spaced\ttext \n", "🙂 emoji", "", "x"})
    CHECK(tok.decode(tok.encode(s)) == s);
}

TEST_CASE("SentencePiece special tokens follow tiktoken's rules", "[unit][tokenizer]") {
  const auto tok = llmfs::SentencePieceTokenizer::train(korean_text(), small_config());
  const std::string text = "운수 좋은 날<|endoftext|>김첨지";
  CHECK_THROWS_WITH(
      tok.encode(text),
      llmfs::test::contains_text("special token '<|endoftext|>' at byte 17 is not allowed"));
  llmfs::EncodeOptions allow;
  allow.allowed_special = {"<|endoftext|>"};
  const auto ids = tok.encode(text, allow);
  CHECK(std::count(ids.begin(), ids.end(), 1) == 1);
  CHECK(tok.decode(ids) == text);
  llmfs::EncodeOptions as_text;
  as_text.special_as_text = true;
  const auto plain = tok.encode(text, as_text);
  CHECK(std::count(plain.begin(), plain.end(), 1) == 0);
  CHECK(tok.decode(plain) == text);
  CHECK_THROWS_WITH(tok.decode(std::vector<int64_t>{400}),
                    llmfs::test::contains_text("token id 400 out of range"));
}

TEST_CASE("SentencePiece models save and load, and a bad model file is an error naming it",
          "[unit][tokenizer]") {
  const auto tok = llmfs::SentencePieceTokenizer::train(korean_text(), small_config());
  const auto dir = std::filesystem::temp_directory_path() / "llmfs_test_sentencepiece";
  std::filesystem::remove_all(dir);
  tok.save(dir / "tokenizer.model");
  CHECK(std::filesystem::exists(dir / "tokenizer.vocab"));
  const auto loaded = llmfs::SentencePieceTokenizer::load(dir / "tokenizer.model");
  CHECK(loaded.encode("운수 좋은 날") == tok.encode("운수 좋은 날"));
  llmfs::write_file_atomic(dir / "bad.model", "not a model");
  CHECK_THROWS_WITH(
      llmfs::SentencePieceTokenizer::load(dir / "bad.model"),
      llmfs::test::contains_text((dir / "bad.model").string() + ": not a SentencePiece model"));
  CHECK_THROWS_WITH(llmfs::SentencePieceTokenizer::load(dir / "missing.model"),
                    llmfs::test::contains_text("missing.model"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("SentencePiece training reports bad settings", "[unit][tokenizer]") {
  auto c = small_config();
  c.vocab_size = 100;  // cannot hold the 256 byte pieces
  CHECK_THROWS_WITH(llmfs::SentencePieceTokenizer::train(korean_text(), c),
                    llmfs::test::contains_text("SentencePiece training failed"));
  CHECK_THROWS_WITH(llmfs::SentencePieceTokenizer::train("a\xFF", small_config()),
                    "training text: invalid UTF-8 at byte 1 (0xFF)");
}
