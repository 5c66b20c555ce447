#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"

namespace {

// A tiny byte-level vocabulary: the 256 bytes in GPT-2's order, then "ab", "abc", " ab".
llmfs::BPETokenizer tiny() {
  std::vector<std::string> tokens;
  for (int id = 0; id < 256; ++id)
    tokens.emplace_back(1, static_cast<char>(llmfs::kGpt2ByteOrder[id]));
  auto id_of = [&](char c) {
    for (int id = 0; id < 256; ++id) {
      if (tokens[id][0] == c) return static_cast<int64_t>(id);
    }
    return int64_t{-1};
  };
  tokens.emplace_back("ab");   // 256
  tokens.emplace_back("abc");  // 257
  tokens.emplace_back(" ab");  // 258
  return llmfs::BPETokenizer(tokens,
                             {{id_of('a'), id_of('b')}, {256, id_of('c')}, {id_of(' '), 256}},
                             {"<|endoftext|>"}, "tiny");
}

}  // namespace

TEST_CASE("BPETokenizer merges by rank and decodes losslessly", "[unit][tokenizer]") {
  const auto tok = tiny();
  CHECK(tok.vocab_size() == 260);
  CHECK(tok.special_token_id("<|endoftext|>") == 259);
  const auto ids = tok.encode("abc ab abd");
  CHECK(ids == std::vector<int64_t>{257, 258, 258, *tok.token_id("d")});
  CHECK(tok.decode(ids) == "abc ab abd");
}

TEST_CASE("BPETokenizer handles special tokens as tiktoken does", "[unit][tokenizer]") {
  const auto tok = tiny();
  llmfs::EncodeOptions allow;
  allow.allowed_special = {"<|endoftext|>"};
  CHECK(tok.encode("ab<|endoftext|>ab", allow) == std::vector<int64_t>{256, 259, 256});
  CHECK_THROWS_WITH(
      tok.encode("ab<|endoftext|>"),
      llmfs::test::contains_text("special token \"<|endoftext|>\" at byte 2 is not allowed"));
  llmfs::EncodeOptions as_text;
  as_text.special_as_text = true;
  const auto ids = tok.encode("<|endoftext|>", as_text);
  CHECK(ids.size() == 13);
  CHECK(tok.decode(ids) == "<|endoftext|>");
  llmfs::EncodeOptions unknown;
  unknown.allowed_special = {"<|pad|>"};
  CHECK_THROWS_WITH(tok.encode("x", unknown),
                    llmfs::test::contains_text("\"<|pad|>\" is not a special token"));
}

TEST_CASE("BPETokenizer rejects invalid UTF-8 with the byte offset and bad ids on decode",
          "[unit][tokenizer]") {
  const auto tok = tiny();
  CHECK_THROWS_WITH(tok.encode("ab\xFFx"), "text to encode: invalid UTF-8 at byte 2 (0xFF)");
  CHECK_THROWS_WITH(tok.decode(std::vector<int64_t>{1, 999}),
                    llmfs::test::contains_text("token id 999 out of range"));
}

TEST_CASE("BPETokenizer decodes a partial UTF-8 character to U+FFFD, decode_bytes keeps it raw",
          "[unit][tokenizer]") {
  const auto tok = tiny();
  const auto ids = tok.encode("é");  // two byte tokens
  REQUIRE(ids.size() == 2);
  CHECK(tok.decode(std::vector<int64_t>{ids[0]}) == "\xEF\xBF\xBD");
  CHECK(tok.decode_bytes(std::vector<int64_t>{ids[0]}) == "\xC3");
}

TEST_CASE("BPETokenizer gives long chunks the same merges as short ones", "[unit][tokenizer]") {
  const auto tok = tiny();
  std::string word;
  for (int i = 0; i < 100; ++i) word += "abcab";  // 500 bytes: the heap path
  const auto ids = tok.encode(word);
  std::vector<int64_t> expected;
  for (int i = 0; i < 100; ++i) expected.insert(expected.end(), {257, 256});
  CHECK(ids == expected);
}

TEST_CASE("BPETokenizer rejects vocabularies without all single bytes or with duplicates",
          "[unit][tokenizer]") {
  std::vector<std::string> tokens;
  for (int id = 0; id < 255; ++id)
    tokens.emplace_back(1, static_cast<char>(llmfs::kGpt2ByteOrder[id]));
  CHECK_THROWS_WITH(llmfs::BPETokenizer(tokens, {}, {}, "t", "t"),
                    llmfs::test::contains_text("needs at least the 256"));
  tokens.emplace_back("x");
  CHECK_THROWS_WITH(llmfs::BPETokenizer(tokens, {}, {}, "t", "t"),
                    llmfs::test::contains_text("are the same bytes"));
}
