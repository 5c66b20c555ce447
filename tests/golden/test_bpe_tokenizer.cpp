// BPETokenizer::gpt2() against tiktoken's GPT-2 encoding (tests/reference/fixtures_tokenizer.py)
// and the book's printed ids (BOOK.md C2-19 ... C2-21).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/data_files.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs_test_paths.h"

namespace {

std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(llmfs::test::kFixturesDir) / "tokenizer" / name;
}

std::vector<int64_t> read_ids(const std::filesystem::path& path) {
  std::istringstream in(llmfs::read_file(path));
  std::vector<int64_t> ids;
  for (int64_t id = 0; in >> id;) ids.push_back(id);
  return ids;
}

std::vector<int64_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int64_t>>(); }

llmfs::EncodeOptions allow(std::set<std::string> tokens) {
  llmfs::EncodeOptions o;
  o.allowed_special = std::move(tokens);
  return o;
}

}  // namespace

TEST_CASE("GPT-2 BPE reproduces the book's ids with <|endoftext|> allowed (C2-19, C2-20)",
          "[golden][book][tokenizer]") {
  const auto tok = llmfs::BPETokenizer::gpt2();
  const std::string text =
      "Hello, do you like tea? <|endoftext|> In the sunlit terracesof someunknownPlace.";
  const auto ids = tok.encode(text, allow({"<|endoftext|>"}));
  // BOOK.md C2-19
  CHECK(ids == std::vector<int64_t>{15496, 11,   466,   345,  588,  8887, 30,  220,   50256, 554,
                                    262,   4252, 18250, 8812, 2114, 1659, 617, 34680, 27271, 13});
  CHECK(tok.decode(ids) == text);  // C2-20
  CHECK(tok.vocab_size() == 50257);
}

TEST_CASE("GPT-2 BPE encodes the-verdict and middlemarch exactly as tiktoken (C2-21)",
          "[golden][tokenizer]") {
  const auto tok = llmfs::BPETokenizer::gpt2();
  llmfs::EncodeOptions all;
  all.allow_all_special = true;
  for (const std::string name : {"the-verdict.txt", "middlemarch.txt"}) {
    INFO(name);
    const std::string text = llmfs::read_file(llmfs::data_file(name));
    const auto ids = tok.encode(text, all);
    const auto expected = read_ids(fixture(name + ".ids"));
    CHECK(ids.size() == expected.size());
    CHECK(ids == expected);
    CHECK(tok.decode(ids) == text);
    if (name == "the-verdict.txt") CHECK(ids.size() == 5145);  // BOOK.md C2-21
  }
}

TEST_CASE("GPT-2 BPE equals tiktoken on generated multilingual strings and round-trips them",
          "[golden][tokenizer]") {
  const auto tok = llmfs::BPETokenizer::gpt2();
  const auto cases = nlohmann::json::parse(llmfs::read_file(fixture("cases.json")));
  REQUIRE(cases.size() >= 10000);
  llmfs::EncodeOptions as_text;
  as_text.special_as_text = true;
  std::size_t mismatches = 0, round_trip_failures = 0;
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    const auto ids = tok.encode(text, as_text);
    if (ids != ids_of(c.at("ids"))) {
      if (++mismatches <= 5) UNSCOPED_INFO("ids differ for " << c.at("text").dump());
    }
    if (tok.decode(ids) != text) {
      if (++round_trip_failures <= 5) UNSCOPED_INFO("round trip fails for " << c.at("text").dump());
    }
  }
  CHECK(mismatches == 0);
  CHECK(round_trip_failures == 0);
}

TEST_CASE("GPT-2 BPE treats special tokens as tiktoken: allowed, all, disallowed, as text",
          "[golden][tokenizer]") {
  const auto tok = llmfs::BPETokenizer::gpt2();
  const auto cases = nlohmann::json::parse(llmfs::read_file(fixture("special.json")));
  llmfs::EncodeOptions all, as_text;
  all.allow_all_special = true;
  as_text.special_as_text = true;
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    INFO(text);
    CHECK(tok.encode(text, allow({"<|endoftext|>"})) == ids_of(c.at("allowed")));
    CHECK(tok.encode(text, all) == ids_of(c.at("all")));
    CHECK(tok.encode(text, as_text) == ids_of(c.at("as_text")));
    if (c.at("default").is_null()) {
      CHECK_THROWS_WITH(tok.encode(text), llmfs::test::contains_text("is not allowed"));
    } else {
      CHECK(tok.encode(text) == ids_of(c.at("default")));
    }
  }
}

TEST_CASE("GPT-2 BPE loads from tiktoken's ranks file with the same ids", "[golden][tokenizer]") {
  const auto from_files = llmfs::BPETokenizer::gpt2();
  const auto from_ranks = llmfs::BPETokenizer::from_tiktoken_file(fixture("gpt2.tiktoken"));
  CHECK(from_ranks.vocab_size() == 50257);
  CHECK(from_ranks.special_token_id("<|endoftext|>") == 50256);
  const std::string text = llmfs::read_file(llmfs::data_file("the-verdict.txt"));
  CHECK(from_ranks.encode(text) == from_files.encode(text));
}

TEST_CASE("GPT-2 BPE saves GPT-2's files byte for byte, also from tiktoken ranks",
          "[golden][tokenizer]") {
  const auto dir = std::filesystem::temp_directory_path() / "llmfs_test_save_gpt2";
  std::filesystem::remove_all(dir);
  const auto original_json = llmfs::read_file(llmfs::data_file("gpt2/encoder.json"));
  const auto original_bpe = llmfs::read_file(llmfs::data_file("gpt2/vocab.bpe"));

  llmfs::BPETokenizer::gpt2().save_gpt2(dir / "a");
  CHECK(llmfs::read_file(dir / "a" / "encoder.json") == original_json);
  CHECK(llmfs::read_file(dir / "a" / "vocab.bpe") == original_bpe);

  // From ranks the merges are derived (not stored in the format): the same file again.
  llmfs::BPETokenizer::from_tiktoken_file(fixture("gpt2.tiktoken")).save_gpt2(dir / "b");
  CHECK(llmfs::read_file(dir / "b" / "vocab.bpe") == original_bpe);
  std::filesystem::remove_all(dir);
}
