#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/tokenizer/simple_tokenizer.h"

namespace {

using Items = std::vector<std::string>;

std::size_t whitespace(std::string_view text, std::size_t pos) {
  return llmfs::is_python_space(static_cast<unsigned char>(text[pos])) ? 1 : 0;
}

}  // namespace

TEST_CASE("split_keep_delimiters behaves as Python's re.split with a capturing group",
          "[unit][tokenizer]") {
  const std::string text = "Hello, world. This, is a test.";
  // BOOK.md C2-02: re.split(r'(\s)', text)
  CHECK(llmfs::split_keep_delimiters(text, whitespace) ==
        Items{"Hello,", " ", "world.", " ", "This,", " ", "is", " ", "a", " ", "test."});
  // BOOK.md C2-03: re.split(r'([,.]|\s)', text), empty strings included
  const auto comma_period_space = [](std::string_view t, std::size_t pos) -> std::size_t {
    return t[pos] == ',' || t[pos] == '.' ? 1 : whitespace(t, pos);
  };
  const auto items = llmfs::split_keep_delimiters(text, comma_period_space);
  CHECK(items == Items{"Hello", ",", "", " ", "world", ".", "", " ", "This", ",", "", " ", "is",
                       " ", "a", " ", "test", ".", ""});
  // BOOK.md C2-04
  CHECK(llmfs::strip_and_drop_empty(items) ==
        Items{"Hello", ",", "world", ".", "This", ",", "is", "a", "test", "."});
}

TEST_CASE("simple_split applies the book's punctuation rule", "[unit][tokenizer]") {
  // BOOK.md C2-05
  CHECK(llmfs::simple_split("Hello, world. Is this-- a test?") ==
        Items{"Hello", ",", "world", ".", "Is", "this", "--", "a", "test", "?"});
  CHECK(llmfs::simple_split("a---b:c;d_e") == Items{"a", "--", "-b", ":", "c", ";", "d", "_", "e"});
  CHECK(llmfs::simple_split(" \u3000x\u00a0y\t") ==
        Items{"x", "y"});  // Unicode whitespace, as Python's \s
  CHECK(llmfs::simple_split("<|endoftext|>") == Items{"<|endoftext|>"});
}

TEST_CASE("build_vocabulary sorts unique tokens by code point and appends extras",
          "[unit][tokenizer]") {
  CHECK(llmfs::build_vocabulary({"b", "a", "B", "!", "a", "é"}, {"<|endoftext|>", "<|unk|>"}) ==
        Items{"!", "B", "a", "b", "é", "<|endoftext|>", "<|unk|>"});
  CHECK_THROWS_WITH(llmfs::build_vocabulary({"x"}, {"x"}),
                    llmfs::test::contains_text("'x' is already in the vocabulary"));
}

TEST_CASE("SimpleTokenizerV1 fails on an unknown token, naming it", "[unit][tokenizer]") {
  const llmfs::SimpleTokenizerV1 tok(
      llmfs::build_vocabulary(llmfs::simple_split("do you like tea?")));
  CHECK(tok.encode("you like tea") == std::vector<int64_t>{4, 2, 3});
  CHECK_THROWS_WITH(tok.encode("Hello, do you like tea?"),
                    llmfs::test::contains_text("unknown token 'Hello'"));
}

TEST_CASE("Simple tokenizers decode with the book's spacing rules", "[unit][tokenizer]") {
  const auto vocab = llmfs::build_vocabulary(llmfs::simple_split("It's a: b; (c) \"d\" e! f?"),
                                             {"<|endoftext|>", "<|unk|>"});
  const llmfs::SimpleTokenizerV1 v1(vocab);
  const llmfs::SimpleTokenizerV2 v2(vocab);
  const std::string text = "It's a: b; (c) \"d\" e! f?";
  CHECK(v1.decode(v1.encode(text)) == "It' s a : b ;( c)\" d\" e! f?");
  CHECK(v2.decode(v2.encode(text)) == "It' s a: b;( c)\" d\" e! f?");
  CHECK(v2.encode("zzz a") == std::vector<int64_t>{*v2.token_id("<|unk|>"), *v2.token_id("a")});
  CHECK(v2.special_token_id("<|endoftext|>") == static_cast<int64_t>(vocab.size()) - 2);
  CHECK_THROWS_WITH(v2.decode(std::vector<int64_t>{99}),
                    llmfs::test::contains_text("token id 99 out of range"));
  CHECK_THROWS_WITH(llmfs::SimpleTokenizerV2({"a"}),
                    llmfs::test::contains_text("no <|unk|> token"));
}
