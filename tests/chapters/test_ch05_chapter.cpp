// ch05 run as a user runs it: its config round-trips, bad input fails with the documented exit
// code, and generate/evaluate/narration work from a training checkpoint. (Its deterministic
// sections are compared with tests/chapters/expected/ch05_*.txt by test_chapters.cpp.)
//
// Add rows to the tables below; each row becomes its own section of the test case.
#include <fmt/format.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "catch.h"
#include "llmfs/train/training_checkpoint.h"
#include "llmfs/core/file_io.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/train/adamw.h"
#include "llmfs_test_paths.h"

namespace {

// Executables whose configs/<name>.yaml must equal the built-in defaults.
const std::vector<std::string> kConfigRoundTrips = {"ch05"};

// A run that must fail: executable, arguments, exit code, text expected on stderr.
struct FailureCase {
  std::string binary;
  std::vector<std::string> args;
  int exit_code;
  std::string stderr_text;
};

const std::vector<FailureCase> kFailureCases = {
    {"ch05", {"--section", "9.9"}, 1, "unknown section '9.9'"},
    {"ch05", {"generate", "--temperature", "-1"}, 1, "temperature must be a number >= 0 (0 = greedy), got -1"},
    {"ch05", {"generate", "--top-k", "0"}, 1, "top_k must be >= 1, got 0"},
    {"ch05", {"generate", "--top-p", "0"}, 1, "top_p must be in (0, 1], got 0"},
    {"ch05", {"generate", "--top-p", "1.5"}, 1, "top_p must be in (0, 1], got 1.5"},
    {"ch05", {"generate", "--max-new-tokens", "-3"}, 1, "--max-new-tokens must be >= 0, got -3"},
    {"ch05", {"generate", "--checkpoint", "/nonexistent/run"}, 1, "--checkpoint: /nonexistent/run: no such file or folder"},
    {"ch05", {"generate", "train.output_dir=/nonexistent/run"}, 1, "no trained model in /nonexistent/run"},
    {"ch05", {"generate", "--weights", "/nonexistent/gpt2"}, 1, "/nonexistent/gpt2: no such file or folder"},
    {"ch05", {"evaluate", "--checkpoint", "/nonexistent/run", "--input", "the-verdict.txt"}, 1,
     "--checkpoint: /nonexistent/run: no such file or folder"},
    {"ch05", {"evaluate", "--input", "/nonexistent/text.txt"}, 1, "/nonexistent/text.txt"},
    {"ch05", {"generate", "generate.top_k=0"}, 2, "generate.top_k: must be >= 1 or null, got 0"},
    {"ch05", {"generate.temperature=-1"}, 2, "generate.temperature"},
};

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

RunResult run(const std::string& binary, const std::vector<std::string>& args) {
  const auto err_path = std::filesystem::temp_directory_path() /
                        fmt::format("llmfs_chapter_{}_{}.err", binary, ::getpid());
  std::string command = shell_quote(std::string(llmfs::test::kBinDir) + "/" + binary);
  for (const auto& a : args) command.append(" ").append(shell_quote(a));
  command.append(" 2>").append(shell_quote(err_path.string()));
  RunResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::vector<char> buffer(4096);
  for (size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0;) {
    result.out.insert(result.out.end(), buffer.begin(),
                      buffer.begin() + static_cast<std::ptrdiff_t>(n));
  }
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (std::filesystem::exists(err_path)) {
    result.err = llmfs::read_file(err_path);
    std::filesystem::remove(err_path);
  }
  return result;
}

std::string describe(const std::string& binary, const std::vector<std::string>& args) {
  return fmt::format("{} {}", binary, fmt::join(args, " "));
}

}  // namespace

TEST_CASE("configs/ch05.yaml resolves to the built-in defaults", "[chapter][ch05][config]") {
  for (const auto& binary : kConfigRoundTrips) {
    DYNAMIC_SECTION(binary) {
      const auto defaults = run(binary, {"--print-config"});
      const auto file =
          run(binary,
              {"--config", std::string(llmfs::test::kSourceDir) + "/configs/" + binary + ".yaml",
               "--print-config"});
      INFO("stderr: " << defaults.err << file.err);
      REQUIRE(defaults.exit_code == 0);
      REQUIRE(file.exit_code == 0);
      CHECK_FALSE(defaults.out.empty());
      CHECK(file.out == defaults.out);
    }
  }
}

TEST_CASE("ch05 rejects bad input with an exit code and a message", "[chapter][ch05]") {
  for (const auto& c : kFailureCases) {
    DYNAMIC_SECTION(describe(c.binary, c.args)) {
      const auto result = run(c.binary, c.args);
      INFO("stderr: " << result.err);
      CHECK(result.exit_code == c.exit_code);
      CHECK(result.err.find(c.stderr_text) != std::string::npos);
    }
  }
}

// --- ch05: training checkpoints ----------------------------------------------------------------

namespace {

// A run folder as `ch05 train` leaves it: <dir>/checkpoints/step_000000 with the weights of a
// tiny GPT (GPT-2 vocabulary, context 32, emb_dim `weights_emb_dim`) and a config.yaml whose
// model section says emb_dim `config_emb_dim`.
std::filesystem::path write_tiny_run(const std::string& name, int64_t config_emb_dim,
                                     int64_t weights_emb_dim) {
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("{}_{}", name, ::getpid());
  std::filesystem::remove_all(dir);
  llmfs::GPTConfig cfg;
  cfg.context_length = 32;
  cfg.emb_dim = weights_emb_dim;
  cfg.n_heads = 2;
  cfg.n_layers = 1;
  torch::manual_seed(1);
  llmfs::GPTModel model(cfg);
  llmfs::TrainingCheckpoint checkpoint;
  checkpoint.model = llmfs::model_state_dict(*model);
  checkpoint.optimizer = llmfs::AdamW(model->named_parameters(), {}).state_dict();
  checkpoint.state.global_step = 0;
  checkpoint.config_yaml = fmt::format(
      "model:\n  vocab_size: 50257\n  context_length: 32\n  emb_dim: {}\n  n_heads: 2\n"
      "  n_layers: 1\ntrain:\n  output_dir: {}\n",
      config_emb_dim, dir.string());
  llmfs::save_checkpoint(dir / "checkpoints", checkpoint);
  return dir;
}

}  // namespace

TEST_CASE("ch05 generate continues a prompt from a training checkpoint", "[chapter][ch05]") {
  const auto dir = write_tiny_run("llmfs_ch05_run", 16, 16);
  const auto greedy = run("ch05", {"generate", "--checkpoint", dir.string(), "--max-new-tokens", "5"});
  INFO("stderr: " << greedy.err);
  REQUIRE(greedy.exit_code == 0);
  CHECK(greedy.out.rfind("Every effort moves you", 0) == 0);
  CHECK(greedy.out.size() > std::string("Every effort moves you\n").size());

  // Without --checkpoint: the latest checkpoint of train.output_dir.
  const auto by_default =
      run("ch05", {"generate", "train.output_dir=" + dir.string(), "--max-new-tokens", "5"});
  CHECK(by_default.exit_code == 0);
  CHECK(by_default.out == greedy.out);

  // Sampling: the seed decides; the KV cache changes nothing.
  const std::vector<std::string> sampled = {"generate", "--checkpoint", dir.string(),
                                            "--max-new-tokens", "40", "--temperature", "1.5",
                                            "--top-k", "200", "--top-p", "0.95", "--seed", "7"};
  auto uncached_args = sampled;
  uncached_args.push_back("--no-kv-cache");
  const auto cached = run("ch05", sampled);
  const auto uncached = run("ch05", uncached_args);
  REQUIRE(cached.exit_code == 0);
  CHECK(cached.out == uncached.out);
  CHECK(cached.out == run("ch05", sampled).out);

  // --model-config gives the shape of weights that do not say theirs: a checkpoint's config.yaml
  // does, so it would be ignored, and is refused.
  const auto tiny = fmt::format("{}/configs/models/tiny.yaml", llmfs::test::kSourceDir);
  const auto shaped =
      run("ch05", {"generate", "--checkpoint", dir.string(), "--model-config", tiny});
  INFO("stderr: " << shaped.err);
  CHECK(shaped.exit_code == 1);
  CHECK(shaped.err.find("--model-config " + tiny + ": ") != std::string::npos);
  CHECK(shaped.err.find("is a training checkpoint") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("ch05 generate refuses a checkpoint of another model", "[chapter][ch05]") {
  const auto dir = write_tiny_run("llmfs_ch05_other", 32, 16);  // config says 32, weights are 16
  const auto result = run("ch05", {"generate", "--checkpoint", dir.string()});
  CHECK(result.exit_code == 1);
  CHECK(result.err.find("a checkpoint of another model?") != std::string::npos);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);  // one line
  const auto empty = std::filesystem::temp_directory_path() / fmt::format("llmfs_ch05_empty_{}", ::getpid());
  std::filesystem::create_directories(empty);
  const auto not_a_checkpoint = run("ch05", {"generate", "--checkpoint", empty.string()});
  CHECK(not_a_checkpoint.exit_code == 1);
  CHECK(not_a_checkpoint.err.find("not a checkpoint folder") != std::string::npos);
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(empty);
}

TEST_CASE("ch05 evaluate predicts every token of a text after the first, once", "[chapter][ch05]") {
  const auto dir = write_tiny_run("llmfs_ch05_eval", 16, 16);
  std::string text;
  for (int i = 0; i < 40; ++i) text += fmt::format("Line {} of a small test text.\n", i);
  const auto input = dir / "input.txt";
  llmfs::write_file_atomic(input, text);
  const auto tokens = static_cast<int64_t>(llmfs::BPETokenizer::gpt2().encode(text).size());
  const auto result = run("ch05", {"evaluate", "--checkpoint", dir.string(), "--input",
                                   input.string(), "--batch-size", "3"});
  INFO("stderr: " << result.err << "\nstdout: " << result.out);
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.find(fmt::format("Tokens evaluated: {}\n", tokens - 1)) != std::string::npos);
  CHECK(result.out.find(fmt::format("Windows: {} of up to 32 tokens (stride 32), batch size 3\n",
                                    (tokens - 1 + 31) / 32)) != std::string::npos);
  CHECK(result.out.find("Loss: ") != std::string::npos);
  CHECK(result.out.find("Perplexity: ") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("ch05 narrates 5.3 and 5.4 with the model of a training run", "[chapter][ch05]") {
  const auto dir = write_tiny_run("llmfs_ch05_narrate", 16, 16);
  const auto decoding = run("ch05", {"--section", "5.3.3", "train.output_dir=" + dir.string()});
  INFO("stderr: " << decoding.err);
  REQUIRE(decoding.exit_code == 0);
  CHECK(decoding.out.find("Output text:\n Every effort moves you") != std::string::npos);
  const auto saving = run("ch05", {"--section", "5.4", "train.output_dir=" + dir.string()});
  REQUIRE(saving.exit_code == 0);
  CHECK(saving.out.find("Model: the trained model of") != std::string::npos);
  CHECK(saving.out.find("Loaded into a new GPTModel: 18 of 18 parameter tensors equal.") !=
        std::string::npos);
  std::filesystem::remove_all(dir);
}
