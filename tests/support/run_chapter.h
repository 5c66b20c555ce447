#pragma once
// Running a chapter executable as a user runs it (from the source folder, one OpenMP thread),
// for the chapter tests.

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "catch.h"
#include "llmfs_test_paths.h"

namespace llmfs::test {

struct ChapterRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

/// A shell command line run from the source folder, stderr merged into out.
inline ChapterRun run_shell(const std::string& command) {
  const auto line = fmt::format("cd \"{}\" && {} 2>&1", kSourceDir, command);
  FILE* pipe = popen(line.c_str(), "r");
  REQUIRE(pipe != nullptr);
  ChapterRun r;
  char buffer[4096];
  for (std::size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) r.out.append(buffer, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// build/bin/<chapter> with `args` (shell words), stderr merged into out.
inline ChapterRun run_chapter(const std::string& chapter, const std::string& args) {
  return run_shell(fmt::format("OMP_NUM_THREADS=1 \"{}/{}\" {}", kBinDir, chapter, args));
}

/// build/bin/<chapter> under torchrun (the venv's torch.distributed.run, one machine, one OpenMP
/// thread per process) with `processes` processes.
inline ChapterRun run_torchrun(int processes, const std::string& chapter, const std::string& args) {
  return run_shell(fmt::format(
      "OMP_NUM_THREADS=1 \"{}\" -m torch.distributed.run --standalone --nproc_per_node={} "
      "--no-python \"{}/{}\" {}",
      kPython, processes, kBinDir, chapter, args));
}

/// An empty folder <tmp>/llmfs_<prefix>_<name>_<pid>.
inline std::filesystem::path fresh_dir(const std::string& prefix, const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   fmt::format("llmfs_{}_{}_{}", prefix, name, ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace llmfs::test
