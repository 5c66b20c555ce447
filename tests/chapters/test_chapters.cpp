// Chapter executables, run as a user runs them (book ch04/01_main-chapter-code/tests.py compares
// stdout the same way): deterministic sections must print tests/chapters/expected/<file> byte for
// byte, configs must round-trip, and bad input must fail with the documented exit code.
//
// Add rows to the tables below; each row becomes its own section of the test case.
#include <fmt/format.h>
// The chapter executables, run as a user runs them: each deterministic section prints exactly
// tests/chapters/expected/chNN_<section>.txt, and the subcommands behave (exit codes, errors,
// files written).
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>
#include <regex>

#include "catch.h"
#include "llmfs/core/file_io.h"
#include "llmfs_test_paths.h"

namespace {

// One deterministic run: executable (in build/bin), arguments, expected stdout file.
struct OutputCase {
  std::string binary;
  std::vector<std::string> args;
  std::string expected;  // file name under tests/chapters/expected/
};
const std::vector<OutputCase> kOutputCases = {
    {"ch03", {"--section", "3.3"}, "ch03_3.3.txt"}, {"ch03", {"--section", "3.4"}, "ch03_3.4.txt"},
    {"ch03", {"--section", "3.5"}, "ch03_3.5.txt"}, {"ch03", {"--section", "3.6"}, "ch03_3.6.txt"},
    {"ch04", {"--section", "4.1"}, "ch04_4.1.txt"}, {"ch04", {"--section", "4.2"}, "ch04_4.2.txt"},
    {"ch04", {"--section", "4.3"}, "ch04_4.3.txt"}, {"ch04", {"--section", "4.4"}, "ch04_4.4.txt"},
    {"ch04", {"--section", "4.5"}, "ch04_4.5.txt"}, {"ch04", {"--section", "4.6"}, "ch04_4.6.txt"},
    {"ch04", {"--section", "4.7"}, "ch04_4.7.txt"},
// Executables whose configs/<name>.yaml must equal the built-in defaults.
const std::vector<std::string> kConfigRoundTrips = {"ch03", "ch04"};
// A run that must fail: executable, arguments, exit code, text expected on stderr.
struct FailureCase {
  int exit_code;
  std::string stderr_text;
const std::vector<FailureCase> kFailureCases = {
    {"ch03", {"--section", "9.9"}, 1, "unknown section '9.9'"},
    {"ch03", {"num_heads=3"}, 2, "d_out (2) must be divisible by num_heads (3)"},
    {"ch03", {"no_such_key=1"}, 2, "no_such_key"},
    {"ch04", {"model.n_heads=5"}, 2, "emb_dim (768) must be divisible by n_heads (5)"},
    {"ch04", {"model.attention=flash"}, 2, "model.attention"},
struct RunResult {
  int exit_code = -1;
  std::string out, err;
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
  return result;
std::string describe(const std::string& binary, const std::vector<std::string>& args) {
  return fmt::format("{} {}", binary, fmt::join(args, " "));
namespace fs = std::filesystem;
struct Result {
  std::string out;  // stdout (stderr too when asked)
// Runs a shell command line in the source folder (so relative config paths work).
Result run(const std::string& command) {
  const std::string line = fmt::format("cd \"{}\" && {}", llmfs::test::kSourceDir, command);
  FILE* pipe = popen(line.c_str(), "r");
  Result r;
  char buffer[4096];
  for (std::size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) r.out.append(buffer, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
std::string bin(const std::string& name) {
  return fmt::format("\"{}/{}\"", llmfs::test::kBinDir, name);
fs::path temp_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("Chapter sections print the expected output byte for byte", "[chapter]") {
  for (const auto& c : kOutputCases) {
    DYNAMIC_SECTION(describe(c.binary, c.args)) {
      const auto result = run(c.binary, c.args);
      INFO("stderr: " << result.err);
      REQUIRE(result.exit_code == 0);
      const auto expected = llmfs::read_file(std::string(llmfs::test::kSourceDir) +
                                             "/tests/chapters/expected/" + c.expected);
      CHECK(result.out == expected);
    }
  }
}

TEST_CASE("configs/chNN.yaml resolves to the built-in defaults", "[chapter][config]") {
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
TEST_CASE("Chapter executables reject bad input with an exit code and a message", "[chapter]") {
  for (const auto& c : kFailureCases) {
      CHECK(result.exit_code == c.exit_code);
      CHECK(result.err.find(c.stderr_text) != std::string::npos);
TEST_CASE("ch04 info reports the parameters and memory of a model config", "[chapter]") {
  const std::string models = std::string(llmfs::test::kSourceDir) + "/configs/models/";
  const auto small = run("ch04", {"info", "--model-config", models + "gpt2-124M.yaml"});
  INFO("stderr: " << small.err);
  REQUIRE(small.exit_code == 0);
  CHECK(small.out.find("Total number of parameters: 163,009,536\n") != std::string::npos);  // C4-14
  CHECK(small.out.find("tied to the token embedding: 124,412,160\n") !=
        std::string::npos);                                                                 // C4-16
  CHECK(small.out.find("621.83 MB (float32), 310.92 MB (bfloat16)") != std::string::npos);  // C4-17
  const auto tiny = run("ch04", {"info", "--model-config", models + "tiny.yaml", "--build"});
  REQUIRE(tiny.exit_code == 0);
  CHECK(tiny.out.find("Total number of parameters: 3,243,776\n") != std::string::npos);
TEST_CASE("Every chapter section prints its expected output exactly", "[chapter]") {
  const fs::path expected_dir = fs::path(llmfs::test::kSourceDir) / "tests/chapters/expected";
  const std::regex name_pattern(R"((ch\d\d)_(.+)\.txt)");
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
      CHECK(r.out == llmfs::read_file(entry.path()));
    ++checked;
  CHECK(checked > 0);
TEST_CASE("ch02's config file mirrors its built-in defaults", "[chapter][ch02]") {
  const auto defaults = run(bin("ch02") + " --print-config");
  const auto file = run(bin("ch02") + " --config configs/ch02.yaml --print-config");
  CHECK(defaults.exit_code == 0);
  CHECK(file.exit_code == 0);
  CHECK(file.out == defaults.out);
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
      run(fmt::format("{} decode --input \"{}\" 2>&1", bin("ch02"), (dir / "ids.txt").string()));
  CHECK(ids.exit_code == 1);
  CHECK_THAT(ids.out, llmfs::test::contains_text("token 3 is 'x3', not an integer id"));
  const auto cfg = run(fmt::format("{} encode tokenizer.kind=sentencepiece --input \"{}\" 2>&1",
                                   bin("ch02"), bad.string()));
  CHECK(cfg.exit_code == 2);
  CHECK_THAT(cfg.out,
             llmfs::test::contains_text("tokenizer.model: required for kind: sentencepiece"));
TEST_CASE("ch02 train-bpe and train-sentencepiece write a usable tokenizer and the resolved config",
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
      run(fmt::format("{} train-sentencepiece train_sentencepiece.vocab_size=600 "
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
