// Chapter executables, run as a user runs them (book ch04/01_main-chapter-code/tests.py compares
// stdout the same way): deterministic sections must print tests/chapters/expected/<file> byte for
// byte, configs must round-trip, and bad input must fail with the documented exit code.
//
// Add rows to the tables below; each row becomes its own section of the test case.
#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

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
    {"ch03", {"--section", "3.3"}, "ch03_3.3.txt"},
    {"ch03", {"--section", "3.4"}, "ch03_3.4.txt"},
    {"ch03", {"--section", "3.5"}, "ch03_3.5.txt"},
    {"ch03", {"--section", "3.6"}, "ch03_3.6.txt"},
    {"ch04", {"--section", "4.1"}, "ch04_4.1.txt"},
    {"ch04", {"--section", "4.2"}, "ch04_4.2.txt"},
    {"ch04", {"--section", "4.3"}, "ch04_4.3.txt"},
    {"ch04", {"--section", "4.4"}, "ch04_4.4.txt"},
    {"ch04", {"--section", "4.5"}, "ch04_4.5.txt"},
    {"ch04", {"--section", "4.6"}, "ch04_4.6.txt"},
    {"ch04", {"--section", "4.7"}, "ch04_4.7.txt"},
};

// Executables whose configs/<name>.yaml must equal the built-in defaults.
const std::vector<std::string> kConfigRoundTrips = {"ch03", "ch04"};

// A run that must fail: executable, arguments, exit code, text expected on stderr.
struct FailureCase {
  std::string binary;
  std::vector<std::string> args;
  int exit_code;
  std::string stderr_text;
};

const std::vector<FailureCase> kFailureCases = {
    {"ch03", {"--section", "9.9"}, 1, "unknown section '9.9'"},
    {"ch03", {"num_heads=3"}, 2, "d_out (2) must be divisible by num_heads (3)"},
    {"ch03", {"no_such_key=1"}, 2, "no_such_key"},
    {"ch04", {"model.n_heads=5"}, 2, "emb_dim (768) must be divisible by n_heads (5)"},
    {"ch04", {"model.attention=flash"}, 2, "model.attention"},
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
    result.out.insert(result.out.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
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
      const auto file = run(binary, {"--config",
                                     std::string(llmfs::test::kSourceDir) + "/configs/" + binary + ".yaml",
                                     "--print-config"});
      INFO("stderr: " << defaults.err << file.err);
      REQUIRE(defaults.exit_code == 0);
      REQUIRE(file.exit_code == 0);
      CHECK_FALSE(defaults.out.empty());
      CHECK(file.out == defaults.out);
    }
  }
}

TEST_CASE("Chapter executables reject bad input with an exit code and a message", "[chapter]") {
  for (const auto& c : kFailureCases) {
    DYNAMIC_SECTION(describe(c.binary, c.args)) {
      const auto result = run(c.binary, c.args);
      INFO("stderr: " << result.err);
      CHECK(result.exit_code == c.exit_code);
      CHECK(result.err.find(c.stderr_text) != std::string::npos);
    }
  }
}

TEST_CASE("ch04 info reports the parameters and memory of a model config", "[chapter]") {
  const std::string models = std::string(llmfs::test::kSourceDir) + "/configs/models/";
  const auto small = run("ch04", {"info", "--model-config", models + "gpt2-124M.yaml"});
  INFO("stderr: " << small.err);
  REQUIRE(small.exit_code == 0);
  CHECK(small.out.find("Total number of parameters: 163,009,536\n") != std::string::npos);  // C4-14
  CHECK(small.out.find("tied to the token embedding: 124,412,160\n") != std::string::npos);  // C4-16
  CHECK(small.out.find("621.83 MB (float32), 310.92 MB (bfloat16)") != std::string::npos);  // C4-17
  const auto tiny = run("ch04", {"info", "--model-config", models + "tiny.yaml", "--build"});
  REQUIRE(tiny.exit_code == 0);
  CHECK(tiny.out.find("Total number of parameters: 3,243,776\n") != std::string::npos);
}
