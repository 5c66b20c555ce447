#include <filesystem>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/tokenizer/bpe_trainer.h"

namespace {

llmfs::BPETrainerConfig config(int64_t vocab_size) {
  llmfs::BPETrainerConfig c;
  c.vocab_size = vocab_size;
  return c;
}

}  // namespace

TEST_CASE("train_bpe merges the most frequent pair first", "[unit][tokenizer]") {
  // " low" x5, " lower" x2, " newest" x6, " widest" x3 (the BPE paper's example, with spaces).
  std::string text;
  for (int i = 0; i < 5; ++i) text += " low";
  for (int i = 0; i < 2; ++i) text += " lower";
  for (int i = 0; i < 6; ++i) text += " newest";
  for (int i = 0; i < 3; ++i) text += " widest";
  const auto tok = llmfs::train_bpe(text, config(256 + 3 + 1));
  CHECK(tok.vocab_size() == 260);
  CHECK(tok.mergeable_count() == 259);
  // "es" and "st" (9 each) and " w"... the most frequent pairs: "e"+"s" = 9, "s"+"t" = 9, "
  // "+"n"... ties go to the smaller ids; both "es" and then "est" follow.
  CHECK(tok.token_bytes(256) == "es");
  CHECK(tok.token_bytes(257) == "est");
  CHECK(tok.special_token_id("<|endoftext|>") == 259);
  CHECK(tok.decode(tok.encode(text)) == text);
}

TEST_CASE("train_bpe is deterministic and never learns across special tokens",
          "[unit][tokenizer]") {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "ab<|endoftext|>cd 운수 좋은 날 ";
  const auto a = llmfs::train_bpe(text, config(300));
  const auto b = llmfs::train_bpe(text, config(300));
  CHECK(a.merges() == b.merges());
  for (int64_t id = 256; id < a.mergeable_count(); ++id) {
    CHECK(a.token_bytes(id).find("<|") == std::string::npos);
    CHECK(a.token_bytes(id).find("|>") == std::string::npos);
  }
  llmfs::EncodeOptions allow;
  allow.allow_all_special = true;
  CHECK(a.decode(a.encode(text, allow)) == text);
  // Korean syllables (3 bytes each) become single tokens.
  CHECK(a.encode(" 좋은").size() == 1);
}

TEST_CASE("train_bpe stops early when no pair is frequent enough", "[unit][tokenizer]") {
  auto c = config(1000);
  c.min_frequency = 3;
  const auto tok = llmfs::train_bpe("ab ab cd", c);
  CHECK(tok.mergeable_count() == 256);
  CHECK_THROWS_WITH(llmfs::train_bpe("x\xC3", c), "training text: invalid UTF-8 at byte 1 (0xC3)");
  CHECK_THROWS_WITH(llmfs::train_bpe("x", config(256)),
                    llmfs::test::contains_text("must hold the 256 bytes"));
}

TEST_CASE("A trained tokenizer saves in GPT-2's format and loads back", "[unit][tokenizer]") {
  std::string text;
  for (int i = 0; i < 20; ++i) text += "the theory of the thermal theme, 'the' then; ";
  const auto tok = llmfs::train_bpe(text, config(290));
  const auto dir = std::filesystem::temp_directory_path() / "llmfs_test_trained_bpe";
  std::filesystem::remove_all(dir);
  tok.save_gpt2(dir);
  const auto loaded = llmfs::BPETokenizer::from_gpt2_files(dir / "encoder.json", dir / "vocab.bpe");
  CHECK(loaded.vocab_size() == tok.vocab_size());
  CHECK(loaded.merges() == tok.merges());
  CHECK(loaded.encode(text) == tok.encode(text));
  std::filesystem::remove_all(dir);
}
