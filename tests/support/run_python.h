#pragma once
// Runs the reference environment's Python on a script (written to the temporary folder as
// `file_name`) with arguments; returns stdout and stderr together, and the exit code.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "catch.h"
#include "llmfs/core/file_io.h"
#include "llmfs_test_paths.h"

namespace llmfs::test {

inline std::pair<std::string, int> run_python(const std::string& script,
                                              const std::vector<std::string>& args,
                                              const std::string& file_name) {
  const auto file = std::filesystem::temp_directory_path() / file_name;
  llmfs::write_file_atomic(file, script);
  std::string cmd = std::string(kPython) + " " + file.string();
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

}  // namespace llmfs::test
