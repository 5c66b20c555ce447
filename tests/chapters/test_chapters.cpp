// The chapter executables, run as a user runs them: each deterministic section prints exactly
// tests/chapters/expected/chNN_<section>.txt, and the subcommands behave (exit codes, errors,
// files written).
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "catch.h"
#include "llmfs/core/file_io.h"
#include "llmfs_test_paths.h"

namespace fs = std::filesystem;

namespace {

struct Result {
  int exit_code = -1;
  std::string out;  // stdout (stderr too when asked)
};

// Runs a shell command line in the source folder (so relative config paths work).
Result run(const std::string& command) {
  const std::string line = fmt::format("cd \"{}\" && {}", llmfs::test::kSourceDir, command);
  FILE* pipe = popen(line.c_str(), "r");
  REQUIRE(pipe != nullptr);
  Result r;
  char buffer[4096];
  for (std::size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) r.out.append(buffer, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string bin(const std::string& name) {
  return fmt::format("\"{}/{}\"", llmfs::test::kBinDir, name);
}

fs::path temp_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Whether two outputs are the same text, allowing numbers printed with their full float
// precision (9 or more significant digits: Python's repr of a float64 holding a float32 result)
// to differ by float32 rounding (relative 1e-6). Matrix products round differently on different
// CPUs (the BLAS kernel of an AMD EPYC and an Intel Xeon sum in other orders), so the last
// digits of such values move with the machine; every shorter number (the book's printed
// digits: losses to 3 places, tensors to 4) must match exactly, as must all other text.
bool same_up_to_float_rounding(const std::string& actual, const std::string& expected) {
  static const std::regex number(R"([-+]?[0-9]+\.[0-9]+(?:e[-+]?[0-9]+)?)");
  const auto significant = [](const std::string& s) {
    int digits = 0;
    bool leading = true;
    for (const char ch : s) {
      if (ch == 'e') break;
      if (ch < '0' || ch > '9') continue;
      if (leading && ch == '0') continue;
      leading = false;
      ++digits;
    }
    return digits;
  };
  std::sregex_iterator a(actual.begin(), actual.end(), number),
      b(expected.begin(), expected.end(), number), end;
  std::size_t pa = 0, pb = 0;
  for (; a != end && b != end; ++a, ++b) {
    if (actual.substr(pa, a->position() - pa) != expected.substr(pb, b->position() - pb))
      return false;
    const std::string x = a->str(), y = b->str();
    if (x != y) {
      if (significant(x) < 9 || significant(y) < 9) return false;
      const double dx = std::stod(x), dy = std::stod(y);
      if (std::abs(dx - dy) > 1e-6 * std::max(std::abs(dx), std::abs(dy))) return false;
    }
    pa = a->position() + a->length();
    pb = b->position() + b->length();
  }
  if ((a == end) != (b == end)) return false;
  return actual.substr(pa) == expected.substr(pb);
}

}  // namespace

TEST_CASE("Every chapter section prints its expected output exactly", "[chapter]") {
  const fs::path expected_dir = fs::path(llmfs::test::kSourceDir) / "tests/chapters/expected";
  const std::regex name_pattern(R"((ch\d\d|app[A-Z])_(.+)\.txt)");  // ch03_3.5.txt, appA_A.5.txt
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(expected_dir)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (!std::regex_match(file, m, name_pattern)) continue;
    const std::string chapter = m[1], section = m[2];
    if (!fs::exists(fs::path(llmfs::test::kBinDir) / chapter)) continue;  // not built in this tree
    DYNAMIC_SECTION(chapter << " --section " << section) {
      const auto r = run(bin(chapter) + " --section " + section);
      CHECK(r.exit_code == 0);
      const auto expected = llmfs::read_file(entry.path());
      INFO("expected:\n" << expected << "\nactual:\n" << r.out);
      CHECK(same_up_to_float_rounding(r.out, expected));
    }
    ++checked;
  }
  CHECK(checked > 0);
}

TEST_CASE("ch02's config file mirrors its built-in defaults", "[chapter][ch02]") {
  const auto defaults = run(bin("ch02") + " --print-config");
  const auto file = run(bin("ch02") + " --config configs/ch02.yaml --print-config");
  CHECK(defaults.exit_code == 0);
  CHECK(file.exit_code == 0);
  CHECK(file.out == defaults.out);
}

TEST_CASE("ch02 encode and decode round-trip a file with GPT-2's tokenizer", "[chapter][ch02]") {
  const auto dir = temp_dir("llmfs_ch02_encode");
  const auto text = dir / "text.txt";
  llmfs::write_file_atomic(
      text, "Hello, world! 운수 좋은 날 🙂\n  tabs\tand <|endoftext|> too\r\n");
  const auto ids =
      run(fmt::format("{} encode --tokenizer gpt2 --special allow --input \"{}\" > \"{}\"",
                      bin("ch02"), text.string(), (dir / "ids.txt").string()));
  REQUIRE(ids.exit_code == 0);
  const auto back = run(fmt::format("{} decode --tokenizer gpt2 --input \"{}\"", bin("ch02"),
                                    (dir / "ids.txt").string()));
  CHECK(back.exit_code == 0);
  CHECK(back.out == llmfs::read_file(text));
  // The book's C2-19 ids from stdin.
  const auto book = run(fmt::format(
      "printf 'Hello, do you like tea? <|endoftext|> In the sunlit terracesof someunknownPlace.' | "
      "{} encode --special allow",
      bin("ch02")));
  CHECK(book.out ==
        "15496 11 466 345 588 8887 30 220 50256 554 262 4252 18250 8812 2114 1659 617 34680 27271 "
        "13\n");
  fs::remove_all(dir);
}

TEST_CASE("ch02 encode refuses invalid UTF-8 and disallowed special tokens with one-line errors",
          "[chapter][ch02]") {
  const auto dir = temp_dir("llmfs_ch02_bad_input");
  const auto bad = dir / "bad.txt";
  llmfs::write_file_atomic(bad, "valid text, then \xFF\xFE bytes");
  const auto r = run(fmt::format("{} encode --input \"{}\" 2>&1", bin("ch02"), bad.string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out == fmt::format("error: {}: invalid UTF-8 at byte 17 (0xFF)\n", bad.string()));

  llmfs::write_file_atomic(dir / "special.txt", "a <|endoftext|> b");
  const auto s = run(
      fmt::format("{} encode --input \"{}\" 2>&1", bin("ch02"), (dir / "special.txt").string()));
  CHECK(s.exit_code == 1);
  CHECK_THAT(s.out, llmfs::test::contains_text(
                        "special token \"<|endoftext|>\" at byte 2 is not allowed"));

  const auto missing =
      run(fmt::format("{} encode --input \"{}\" 2>&1", bin("ch02"), (dir / "nope.txt").string()));
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.out, llmfs::test::contains_text("nope.txt: no such file"));

  llmfs::write_file_atomic(dir / "ids.txt", "1 2 x3");
  const auto ids =
      run(fmt::format("{} decode --input \"{}\" 2>&1", bin("ch02"), (dir / "ids.txt").string()));
  CHECK(ids.exit_code == 1);
  CHECK_THAT(ids.out, llmfs::test::contains_text("token 3 is 'x3', not an integer id"));

  const auto cfg = run(fmt::format("{} encode tokenizer.kind=sentencepiece --input \"{}\" 2>&1",
                                   bin("ch02"), bad.string()));
  CHECK(cfg.exit_code == 2);
  CHECK_THAT(cfg.out,
             llmfs::test::contains_text("tokenizer.model: required for kind: sentencepiece"));
  fs::remove_all(dir);
}

TEST_CASE("ch02 train-bpe and train-sentencepiece write a usable tokenizer and the resolved config",
          "[chapter][ch02]") {
  const auto dir = temp_dir("llmfs_ch02_train");
  const auto bpe =
      run(fmt::format("{} train-bpe train_bpe.vocab_size=600 train_bpe.output_dir=\"{}\"",
                      bin("ch02"), (dir / "bpe").string()));
  REQUIRE(bpe.exit_code == 0);
  CHECK_THAT(bpe.out, llmfs::test::contains_text(
                          "vocabulary: 600 tokens (256 bytes, 343 merges, 1 special)"));
  for (const char* f : {"encoder.json", "vocab.bpe", "tokenizer.yaml", "config.yaml"})
    CHECK(fs::exists(dir / "bpe" / f));
  CHECK_THAT(llmfs::read_file(dir / "bpe" / "config.yaml"),
             llmfs::test::contains_text("vocab_size: 600"));

  const auto sp =
      run(fmt::format("{} train-sentencepiece train_sentencepiece.vocab_size=1200 "
                      "train_sentencepiece.output_dir=\"{}\"",
                      bin("ch02"), (dir / "sp").string()));
  REQUIRE(sp.exit_code == 0);
  for (const char* f : {"tokenizer.model", "tokenizer.vocab", "tokenizer.yaml", "config.yaml"})
    CHECK(fs::exists(dir / "sp" / f));

  // Both load through `--config <dir>/tokenizer.yaml` and round-trip Korean text.
  llmfs::write_file_atomic(dir / "text.txt", "운수 좋은 날, the verdict.\n");
  for (const std::string which : {"bpe", "sp"}) {
    INFO(which);
    const auto tok = (dir / which / "tokenizer.yaml").string();
    const auto ids =
        run(fmt::format("{} encode --config \"{}\" --input \"{}\" > \"{}\"", bin("ch02"), tok,
                        (dir / "text.txt").string(), (dir / "ids.txt").string()));
    REQUIRE(ids.exit_code == 0);
    const auto back = run(fmt::format("{} decode --config \"{}\" --input \"{}\"", bin("ch02"), tok,
                                      (dir / "ids.txt").string()));
    CHECK(back.out == "운수 좋은 날, the verdict.\n");
  }
  fs::remove_all(dir);
}

// --- ch03 and ch04 ------------------------------------------------------------------------------

TEST_CASE("ch03's and ch04's config files mirror their built-in defaults",
          "[chapter][ch03][ch04]") {
  for (const std::string chapter : {"ch03", "ch04"}) {
    INFO(chapter);
    const auto defaults = run(bin(chapter) + " --print-config");
    const auto file = run(bin(chapter) + " --config configs/" + chapter + ".yaml --print-config");
    CHECK(defaults.exit_code == 0);
    CHECK(file.exit_code == 0);
    CHECK_FALSE(defaults.out.empty());
    CHECK(file.out == defaults.out);
  }
}

TEST_CASE("ch03 and ch04 reject bad input with an exit code and a one-line error",
          "[chapter][ch03][ch04]") {
  struct Case {
    std::string command;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {bin("ch03") + " --section 9.9", 1, "unknown section '9.9'"},
      {bin("ch03") + " num_heads=3", 2, "d_out (2) must be divisible by num_heads (3)"},
      {bin("ch03") + " no_such_key=1", 2, "no_such_key: unknown key"},
      {bin("ch04") + " model.n_heads=5", 2, "emb_dim (768) must be divisible by n_heads (5)"},
      {bin("ch04") + " model.attention=flash", 2, "model.attention"},
      {bin("ch04") + " info --model-config configs/ch03.yaml", 2, "unknown key"},
  };
  for (const auto& c : cases) {
    INFO(c.command);
    const auto r = run(c.command + " 2>&1");
    CHECK(r.exit_code == c.exit_code);
    CHECK_THAT(r.out, llmfs::test::contains_text(c.message));
  }
}

TEST_CASE("ch04 info reports the parameters and memory of a model config", "[chapter][ch04]") {
  const auto small = run(bin("ch04") + " info --model-config configs/models/gpt2-124M.yaml");
  REQUIRE(small.exit_code == 0);
  CHECK_THAT(small.out, llmfs::test::contains_text("Total number of parameters: 163,009,536\n"));
  CHECK_THAT(small.out, llmfs::test::contains_text("tied to the token embedding: 124,412,160\n"));
  CHECK_THAT(small.out, llmfs::test::contains_text("621.83 MB (float32), 310.92 MB (bfloat16)"));
  const auto tiny = run(bin("ch04") + " info --model-config configs/models/tiny.yaml --build");
  REQUIRE(tiny.exit_code == 0);
  CHECK_THAT(tiny.out, llmfs::test::contains_text("Total number of parameters: 3,243,776\n"));
}

TEST_CASE("ch04 generate continues a prompt as transformers does with the same weights",
          "[chapter][ch04]") {
  // A random GPT-2 (real vocabulary) saved by transformers, and its greedy continuation decoded
  // by tiktoken (tests/reference/fixtures_weights.py).
  const fs::path weights = fs::path(llmfs::test::kFixturesDir) / "weights";
  const auto expected =
      nlohmann::json::parse(llmfs::read_file(weights / "gpt2_vocab_generate.json"));
  for (const std::string cache : {"", " --no-kv-cache"}) {
    INFO("cache option: '" << cache << "'");
    const auto r =
        run(fmt::format("{} generate --weights \"{}\" --prompt \"Hello, I am\" "
                        "--max-new-tokens 10{}",
                        bin("ch04"), (weights / "gpt2_vocab").string(), cache));
    CHECK(r.exit_code == 0);
    CHECK(r.out == expected["text"].get<std::string>() + "\n");
  }
  // The book's .pth layout has no config.json beside it: the shape comes from --model-config.
  const auto pth =
      run(fmt::format("{} generate --weights \"{}\" --model-config \"{}\" --prompt \"Hello, I am\" "
                      "--max-new-tokens 10",
                      bin("ch04"), (weights / "gpt2_vocab_book.pth").string(),
                      (weights / "gpt2_vocab" / "config.json").string()));
  CHECK(pth.exit_code == 0);
  CHECK(pth.out == expected["text"].get<std::string>() + "\n");
}

TEST_CASE("ch04 generate rejects missing weights and weights of another model in one line",
          "[chapter][ch04]") {
  const fs::path weights = fs::path(llmfs::test::kFixturesDir) / "weights";
  const auto missing = run(bin("ch04") + " generate --weights /nonexistent/gpt2 2>&1");
  CHECK(missing.exit_code == 1);
  CHECK(missing.out == "error: --weights: /nonexistent/gpt2: no such file or folder\n");
  const auto other =
      run(fmt::format("{} generate --weights \"{}\" --model-config configs/models/tiny.yaml 2>&1",
                      bin("ch04"), (weights / "gpt2_vocab_book.pth").string()));
  CHECK(other.exit_code == 1);
  CHECK(std::count(other.out.begin(), other.out.end(), '\n') == 1);
  CHECK_THAT(other.out, llmfs::test::contains_text("gpt2_vocab_book.pth"));
}

TEST_CASE("no subcommand accepts a flag it would ignore", "[chapter]") {
  // Each of these was accepted and did nothing: now refused with a line naming the flag. No
  // model, data or run folder is needed for any of them (the line comes first).
  struct Case {
    std::string command;
    std::string message;
  };
  const std::vector<Case> cases = {
      {bin("ch07") + " chat --prompt hello", "--prompt"},
      {bin("ch07") + " chat --no-kv-cache", "--no-kv-cache"},
      {bin("ch07") + " chat --stop-at-eos", "--stop-at-eos"},
      {bin("ch05") + " --weights gpt2:124M generate", "--weights: for the narration"},
      {bin("ch05") + " --section 5.1 train", "--section: for the narration"},
      {bin("ch07") + " --weights x respond", "it does nothing for `respond`"},
      {bin("ch06") + " compare --configs configs/ch06.yaml --config configs/ch06.yaml",
       "name the runs' configs with --configs"},
      {bin("ch06") + " compare --configs configs/ch06.yaml --print-config", "--print-config"},
      {bin("ch01") + " fetch-data --config configs/ch01.yaml", "fetch-data takes no config"},
  };
  for (const auto& c : cases) {
    INFO(c.command);
    const auto r = run(c.command + " 2>&1 </dev/null");
    INFO(r.out);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.out, llmfs::test::contains_text(c.message));
  }
}
