// Tokenizers trained by our code, loaded by the Python libraries: tiktoken reads our GPT-2-format
// files (data_gym_to_mergeable_bpe_ranks), sentencepiece 0.2.x reads our .model, and both give
// the same ids as our encoder (tests/reference/check_trained_tokenizers.py).
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "catch.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/data_files.h"
#include "llmfs/tokenizer/bpe_trainer.h"
#include "llmfs/tokenizer/sentencepiece_tokenizer.h"
#include "llmfs_test_paths.h"

namespace fs = std::filesystem;

namespace {

std::string data(const std::string& name) { return llmfs::read_file(llmfs::data_file(name)); }

std::vector<std::string> test_texts() {
  const std::string middlemarch = data("middlemarch.txt");
  return {data("the-verdict.txt"),
          data("unsu-joeun-nal.txt"),
          middlemarch.substr(0, middlemarch.find('\n', 200000)),
          "Hello, world! It's 2024 -- 운수 좋은 날이었다. 🙂👍🏽 naïve café\r\n\ttabs  and   "
          "spaces ",
          "김첨지는 <|endoftext|> 인력거꾼 노릇을 하는<|endoftext|>",
          "",
          "   ",
          "숫자 12345 와 ＡＢＣ 와 漢字 そして かな"};
}

// Runs the Python side and returns its JSON answer.
nlohmann::json python_encode(const std::string& kind, const fs::path& path,
                             const std::vector<std::string>& texts, const fs::path& work) {
  const auto texts_file = work / "texts.json";
  const auto out_file = work / "python_ids.json";
  llmfs::write_file_atomic(texts_file, nlohmann::json(texts).dump());
  const std::string command = fmt::format(
      "\"{}\" \"{}/tests/reference/check_trained_tokenizers.py\" {} \"{}\" \"{}\" \"{}\"",
      llmfs::test::kPython, llmfs::test::kSourceDir, kind, path.string(), texts_file.string(),
      out_file.string());
  INFO(command);
  REQUIRE(std::system(command.c_str()) == 0);
  return nlohmann::json::parse(llmfs::read_file(out_file));
}

fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("A BPE vocabulary trained by train_bpe loads in tiktoken and gives our ids",
          "[golden][tokenizer]") {
  const auto texts = test_texts();
  struct Run {
    std::string corpus;
    int64_t vocab_size;
  };
  for (const Run& run : {Run{"the-verdict.txt", 1000}, Run{"unsu-joeun-nal.txt", 1500}}) {
    INFO(run.corpus);
    llmfs::BPETrainerConfig config;
    config.vocab_size = run.vocab_size;
    const auto tok = llmfs::train_bpe(data(run.corpus), config);
    CHECK(tok.vocab_size() == run.vocab_size);
    const auto dir = fresh_dir("llmfs_test_trained_bpe_python");
    tok.save_gpt2(dir);
    const auto python = python_encode("bpe", dir, texts, dir);
    llmfs::EncodeOptions all;
    all.allow_all_special = true;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      INFO("text " << i);
      const auto ids = tok.encode(texts[i], all);
      CHECK(ids == python.at("ids").at(i).get<std::vector<int64_t>>());
      CHECK(tok.decode(ids) == texts[i]);
      CHECK(python.at("decoded").at(i).get<std::string>() == texts[i]);
    }
    fs::remove_all(dir);
  }
}

TEST_CASE("A SentencePiece model trained by our code gives the same ids in Python's sentencepiece",
          "[golden][tokenizer]") {
  const auto texts = test_texts();
  for (const std::string model_type : {"unigram", "bpe"}) {
    INFO(model_type);
    llmfs::SentencePieceTrainerConfig config;
    config.model_type = model_type;
    config.vocab_size = 1000;
    const auto tok = llmfs::SentencePieceTokenizer::train(data("unsu-joeun-nal.txt"), config);
    const auto dir = fresh_dir("llmfs_test_trained_sp_python");
    tok.save(dir / "tokenizer.model");
    const auto python = python_encode("sentencepiece", dir / "tokenizer.model", texts, dir);
    llmfs::EncodeOptions as_text;  // Python's sentencepiece never matches control symbols in text
    as_text.special_as_text = true;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      INFO("text " << i);
      const auto ids = tok.encode(texts[i], as_text);
      CHECK(ids == python.at("ids").at(i).get<std::vector<int64_t>>());
      CHECK(tok.decode(ids) == texts[i]);
      CHECK(python.at("decoded").at(i).get<std::string>() == texts[i]);
    }
    fs::remove_all(dir);
  }
}
