// Linked into every test binary: the process gets its own TMPDIR (removed at exit). CTest runs
// the test cases of one binary as parallel processes (ctest -j), and tests name their scratch
// folders after the test (temp_directory_path() / "llmfs_test_..."), so without this two cases
// of one file could share, and delete, each other's folder. Child processes (the chapter
// executables, Python references) inherit it.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace {

struct PerProcessTmp {
  std::filesystem::path dir;

  PerProcessTmp() {
    const char* base = std::getenv("TMPDIR");
    const std::filesystem::path root = base != nullptr && *base != '\0' ? base : "/tmp";
    dir = root / ("llmfs_tests_" + std::to_string(::getpid()));
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);  // a leftover of an earlier process with this pid
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      dir.clear();  // keep the inherited TMPDIR
      return;
    }
    ::setenv("TMPDIR", dir.c_str(), 1);
  }

  ~PerProcessTmp() {
    if (dir.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  PerProcessTmp(const PerProcessTmp&) = delete;
  PerProcessTmp& operator=(const PerProcessTmp&) = delete;
};

const PerProcessTmp per_process_tmp;

}  // namespace
