#include "catch.h"
#include "llmfs/config/config_node.h"
#include "llmfs/tokenizer/tokenizer_config.h"

namespace {

std::string problems(const std::string& yaml) {
  const auto doc = llmfs::ConfigDocument::from_string(yaml, "test.yaml");
  llmfs::parse_tokenizer_config(doc.root().child("tokenizer"));
  try {
    doc.finish();
  } catch (const llmfs::ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("The tokenizer config defaults to GPT-2 and checks each kind's files",
          "[unit][tokenizer][config]") {
  const auto doc = llmfs::ConfigDocument::from_string(
      "tokenizer:\n  kind: sentencepiece\n  model: m.model\n", "t.yaml");
  const auto c = llmfs::parse_tokenizer_config(doc.root().child("tokenizer"));
  doc.finish();
  CHECK(c.kind == "sentencepiece");
  CHECK(c.model == "m.model");
  CHECK(llmfs::parse_tokenizer_config(
            llmfs::ConfigDocument::from_string("{}", "t").root().child("tokenizer"))
            .kind == "gpt2");

  CHECK_THAT(problems("tokenizer:\n  kind: sentencepiece\n"),
             llmfs::test::contains_text("tokenizer.model: required for kind: sentencepiece"));
  CHECK_THAT(
      problems("tokenizer:\n  kind: bpe\n"),
      llmfs::test::contains_text("needs either encoder_json and vocab_bpe, or tiktoken_ranks"));
  CHECK_THAT(problems("tokenizer:\n  kind: bpe\n  encoder_json: e.json\n"),
             llmfs::test::contains_text("tokenizer.vocab_bpe: required"));
  CHECK_THAT(problems("tokenizer:\n  kind: wordpiece\n"),
             llmfs::test::contains_text("tokenizer.kind"));
  CHECK(problems("tokenizer:\n  kind: bpe\n  tiktoken_ranks: r.tiktoken\n").empty());
}

TEST_CASE("make_tokenizer reports a missing model file by name", "[unit][tokenizer][config]") {
  llmfs::TokenizerConfig c;
  c.kind = "sentencepiece";
  c.model = "/nonexistent/sp.model";
  CHECK_THROWS_WITH(llmfs::make_tokenizer(c),
                    llmfs::test::contains_text("/nonexistent/sp.model: no such file"));
}
