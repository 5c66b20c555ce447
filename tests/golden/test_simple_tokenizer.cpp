// The book's regex tokenizers on the-verdict against BOOK.md's printed values (C2-06 ... C2-18).
#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/data_files.h"
#include "llmfs/tokenizer/simple_tokenizer.h"

namespace {

std::vector<std::string> verdict_tokens() {
  return llmfs::simple_split(llmfs::read_file(llmfs::data_file("the-verdict.txt")));
}

}  // namespace

TEST_CASE("the-verdict splits into the book's 4690 tokens and 1130 vocabulary entries",
          "[golden][book][tokenizer]") {
  const auto tokens = verdict_tokens();
  CHECK(tokens.size() == 4690);  // C2-07
  CHECK(std::vector<std::string>(tokens.begin(), tokens.begin() + 12) ==
        std::vector<std::string>{"I", "HAD", "always", "thought", "Jack", "Gisburn", "rather", "a",
                                 "cheap", "genius", "--", "though"});  // C2-06 (start)
  const auto vocab = llmfs::build_vocabulary(tokens);
  CHECK(vocab.size() == 1130);  // C2-08
  CHECK(vocab[6] == "--");      // C2-09
  CHECK(vocab[50] == "Hermia");
}

TEST_CASE("SimpleTokenizerV1 reproduces the book's ids and decoding (C2-10 ... C2-13)",
          "[golden][book][tokenizer]") {
  const llmfs::SimpleTokenizerV1 tok(llmfs::build_vocabulary(verdict_tokens()));
  const std::string text =
      "\"It's the last he painted, you know,\" Mrs. Gisburn said with pardonable pride.";
  const auto ids = tok.encode(text);
  CHECK(ids == std::vector<int64_t>{1, 56, 2,  850, 988, 602, 533,  746, 5,   1126, 596,
                                    5, 1,  67, 7,   38,  851, 1108, 754, 793, 7});
  const std::string expected =
      "\" It' s the last he painted, you know,\" Mrs. Gisburn said with pardonable pride.";
  CHECK(tok.decode(ids) == expected);
  CHECK_THROWS_WITH(tok.encode("Hello, do you like tea?"), llmfs::test::contains_text("'Hello'"));
}

TEST_CASE(
    "SimpleTokenizerV2 reproduces the book's ids with <|unk|> and <|endoftext|> (C2-14 ... C2-18)",
    "[golden][book][tokenizer]") {
  const llmfs::SimpleTokenizerV2 tok(
      llmfs::build_vocabulary(verdict_tokens(), {"<|endoftext|>", "<|unk|>"}));
  CHECK(tok.vocab_size() == 1132);             // C2-14
  CHECK(tok.vocabulary()[1127] == "younger");  // C2-15
  CHECK(tok.special_token_id("<|endoftext|>") == 1130);
  CHECK(tok.special_token_id("<|unk|>") == 1131);
  const std::string text =
      "Hello, do you like tea? <|endoftext|> In the sunlit terraces of the palace.";  // C2-16
  const auto ids = tok.encode(text);
  CHECK(ids == std::vector<int64_t>{1131, 5, 355, 1126, 628, 975, 10, 1130, 55, 988, 956, 984, 722,
                                    988, 1131, 7});
  CHECK(tok.decode(ids) ==
        "<|unk|>, do you like tea? <|endoftext|> In the sunlit terraces of the <|unk|>.");
}
