// Loading GPT-2's files and tiktoken's ranks file: every malformed input is a one-line
// llmfs::Error naming the file and the line or key.
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"

namespace fs = std::filesystem;

namespace {

// A small tokenizer in GPT-2's byte order: 256 bytes, then "he", "ll", "hell", "hello".
llmfs::BPETokenizer small() {
  std::vector<std::string> tokens;
  for (int id = 0; id < 256; ++id)
    tokens.emplace_back(1, static_cast<char>(llmfs::kGpt2ByteOrder[id]));
  const auto id = [&](std::string_view s) {
    return static_cast<int64_t>(std::find(tokens.begin(), tokens.end(), s) - tokens.begin());
  };
  std::vector<std::pair<int64_t, int64_t>> merges;
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}}) {
    merges.emplace_back(id(a), id(b));
    tokens.push_back(a + b);
  }
  return llmfs::BPETokenizer(tokens, merges, {"<|endoftext|>"}, "small");
}

struct Files {
  fs::path dir = fs::temp_directory_path() / "llmfs_test_bpe_files";
  fs::path encoder = dir / "encoder.json";
  fs::path vocab = dir / "vocab.bpe";
  std::string json, bpe;

  Files() {
    fs::remove_all(dir);
    small().save_gpt2(dir);
    json = llmfs::read_file(encoder);
    bpe = llmfs::read_file(vocab);
  }
  ~Files() { fs::remove_all(dir); }

  std::string load_error(const std::string& new_json, const std::string& new_bpe) {
    llmfs::write_file_atomic(encoder, new_json);
    llmfs::write_file_atomic(vocab, new_bpe);
    try {
      llmfs::BPETokenizer::from_gpt2_files(encoder, vocab);
    } catch (const llmfs::Error& e) {
      return e.what();
    }
    return "(no error)";
  }
};

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("Saved GPT-2 files load back into the same tokenizer", "[unit][tokenizer]") {
  Files f;
  CHECK(f.bpe == "#version: 0.2\nh e\nl l\nhe ll\nhell o\n");
  const auto loaded = llmfs::BPETokenizer::from_gpt2_files(f.encoder, f.vocab);
  CHECK(loaded.vocab_size() == 261);
  CHECK(loaded.special_token_id("<|endoftext|>") == 260);
  CHECK(loaded.encode("hello hell") == small().encode("hello hell"));
  CHECK(loaded.encode("hello") == std::vector<int64_t>{259});
}

TEST_CASE("A corrupt encoder.json is an error naming the file and the position or key",
          "[unit][tokenizer]") {
  Files f;
  const std::string e = f.encoder.string();
  CHECK(f.load_error(f.json.substr(0, 100), f.bpe)
            .rfind(e + ": malformed JSON at line 1, column", 0) == 0);
  CHECK(f.load_error("[1, 2]", f.bpe) ==
        e + ": expected a JSON object of token -> id, found an array");
  CHECK(f.load_error(replace(f.json, "\"!\": 0", "\"!\": \"zero\""), f.bpe) ==
        e + ": key \"!\": expected an integer id, found a string");
  CHECK(f.load_error(replace(f.json, "\"!\": 0", "\"!\": -1"), f.bpe) ==
        e + ": key \"!\": expected an integer id, found the negative number -1");
  CHECK(f.load_error(replace(f.json, "\"#\": 2", "\"!\": 2"), f.bpe) ==
        e + ": duplicate key \"!\"");
  CHECK(f.load_error(replace(f.json, "\"#\": 2", "\"#\": 1"), f.bpe) ==
        e + ": id 1 is used by both \"\\\"\" and \"#\"");
  CHECK(f.load_error(replace(f.json, "\"#\": 2", "\"#\": 999"), f.bpe) ==
        e + ": key \"#\": id 999 out of range (ids must be 0..260 for 261 entries)");
  CHECK(f.load_error(replace(f.json, "\"#\": 2", "\"\\u4e00\": 2"), f.bpe) ==
        e + ": key \"一\": character U+4E00 is not in GPT-2's byte alphabet");
  CHECK(f.load_error(replace(f.json, "\"<|endoftext|>\": 260", "\"junk\": 260"), f.bpe) ==
        e + ": \"junk\" (id 260) is neither a single byte, a merge of " + f.vocab.string() +
            ", nor a special token <|...|>");
}

TEST_CASE("A malformed vocab.bpe is an error naming the file and line", "[unit][tokenizer]") {
  Files f;
  const std::string v = f.vocab.string();
  CHECK(f.load_error(f.json, "h e\n") ==
        v + ":1: expected the version line '#version: 0.2', found \"h e\"");
  CHECK(f.load_error(f.json, "#version: 0.2\nh e\nll\n") ==
        v + ":3: expected a merge 'left right' (two symbols and one space), found \"ll\"");
  CHECK(f.load_error(f.json, "#version: 0.2\nh e\nl l\nhe lll\nhell o\n") ==
        v + ":4: unknown symbol \"lll\" (not in " + f.encoder.string() + ")");
  CHECK(f.load_error(f.json, "#version: 0.2\nh e\nl l\nhe l\nhell o\n") ==
        v + ":4: merging \"he\" and \"l\" gives \"hel\", which is not in " + f.encoder.string());
  CHECK(f.load_error(f.json, "#version: 0.2\nl l\nh e\nhe ll\nhell o\n") ==
        v + ":2: \"ll\" has id 257 in " + f.encoder.string() +
            ", but this merge makes it token 256 (ids must follow the merge order)");
  CHECK(f.load_error(f.json, "#version: 0.2\nh e\nl l\nhe ll\n") ==
        f.encoder.string() + ": \"hello\" (id 259) is neither a single byte, a merge of " + v +
            ", nor a special token <|...|>");
}

TEST_CASE("Missing tokenizer files are errors naming the file", "[unit][tokenizer]") {
  const auto dir = fs::temp_directory_path() / "llmfs_no_such_dir";
  CHECK_THROWS_WITH(llmfs::BPETokenizer::from_gpt2_files(dir / "encoder.json", dir / "vocab.bpe"),
                    llmfs::test::contains_text("encoder.json"));
  CHECK_THROWS_WITH(llmfs::BPETokenizer::from_tiktoken_file(dir / "x.tiktoken"),
                    llmfs::test::contains_text("x.tiktoken"));
}

TEST_CASE("A malformed tiktoken ranks file is an error naming the line", "[unit][tokenizer]") {
  const auto dir = fs::temp_directory_path() / "llmfs_test_tiktoken_files";
  fs::remove_all(dir);
  const auto path = dir / "r.tiktoken";
  const std::string p = path.string();
  std::string good;
  const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int b = 0; b < 256; ++b) {
    // base64 of one byte: two characters and "=="
    good += fmt::format("{}{}== {}\n", b64[b >> 2], b64[(b & 3) << 4], b);
  }
  const auto error = [&](const std::string& text) {
    llmfs::write_file_atomic(path, text);
    try {
      llmfs::BPETokenizer::from_tiktoken_file(path);
    } catch (const llmfs::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK(error(good) == "(no error)");
  CHECK(error(good + "aGU= 256\n") == "(no error)");  // "he"
  CHECK(error(good + "aGU=256\n") ==
        p + ":257: expected '<base64 token> <rank>', found \"aGU=256\"");
  CHECK(error(good + "a*U= 256\n") == p + ":257: invalid base64 \"a*U=\"");
  CHECK(error(good + "aGU= x\n") == p + ":257: invalid rank \"x\"");
  CHECK(error(good + "aGU= 5\n") == p + ":257: rank 5 already given on line 6");
  CHECK(error(good + "\naGU= 257\n") == p + ": rank 256 is missing (ranks must be 0..257)");
  // A rank no file of this length can reach is refused before memory is taken for it.
  CHECK(error(good + "aGU= 257\n") ==
        p + ":257: rank 257 is beyond the file's line count (257; ranks must be 0..n-1, one a "
                "line)");
  CHECK(error("AA== 777777777") ==
        p + ":1: rank 777777777 is beyond the file's line count (1; ranks must be 0..n-1, one a "
                "line)");
  fs::remove_all(dir);
}

TEST_CASE("A Hugging Face tokenizer.json of GPT-2's kind loads as its two files do",
          "[unit][tokenizer]") {
  Files f;
  const fs::path file = f.dir / "tokenizer.json";
  // As transformers 5 writes it: the vocab, merges as pairs, the special token as an added token.
  const auto write = [&](const std::string& model_type, const std::string& pre,
                         const std::string& merges) {
    auto vocab = nlohmann::json::parse(f.json);
    vocab.erase("<|endoftext|>");
    const auto j = nlohmann::json{
        {"version", "1.0"},
        {"added_tokens", {{{"id", 260}, {"content", "<|endoftext|>"}, {"special", true}}}},
        {"pre_tokenizer", {{"type", pre}, {"add_prefix_space", false}, {"use_regex", true}}},
        {"model", {{"type", model_type}, {"vocab", vocab}, {"merges", nlohmann::json::parse(merges)}}}};
    llmfs::write_file_atomic(file, j.dump());
  };
  const auto error = [&]() -> std::string {
    try {
      llmfs::BPETokenizer::from_hf_tokenizer_json(file);
    } catch (const llmfs::Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  write("BPE", "ByteLevel", R"([["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"]])");
  const auto pairs = llmfs::BPETokenizer::from_hf_tokenizer_json(file);
  CHECK(pairs.vocab_size() == 261);
  CHECK(pairs.special_token_id("<|endoftext|>") == 260);
  CHECK(pairs.encode("hello hell<|endoftext|>", {.allowed_special = {"<|endoftext|>"}}) ==
        small().encode("hello hell<|endoftext|>", {.allowed_special = {"<|endoftext|>"}}));
  CHECK(pairs.name() == "bpe llmfs_test_bpe_files (261 tokens)");
  write("BPE", "ByteLevel", R"(["h e", "l l", "he ll", "hell o"])");  // tokenizers < 0.20
  CHECK(llmfs::BPETokenizer::from_hf_tokenizer_json(file).encode("hello") ==
        std::vector<int64_t>{259});

  const std::string name = file.string();
  write("WordPiece", "ByteLevel", "[]");
  CHECK_THAT(error(), llmfs::test::contains_text(name + ": a WordPiece model"));
  write("BPE", "Metaspace", "[]");
  CHECK_THAT(error(), llmfs::test::contains_text(name + ": pre_tokenizer Metaspace"));
  write("BPE", "ByteLevel", R"([["h", "e"], ["l", "x"]])");
  CHECK_THAT(error(), llmfs::test::contains_text(name + " (model.merges):3: merging"));
  write("BPE", "ByteLevel", R"([["h", "e"], 7])");
  CHECK_THAT(error(), llmfs::test::contains_text(name + ": model.merges[1]: expected"));
  llmfs::write_file_atomic(file, "{\"model\": ");
  CHECK_THAT(error(), llmfs::test::contains_text(name + ": malformed JSON at"));
}
