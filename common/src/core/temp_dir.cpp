#include "llmfs/core/temp_dir.h"

#include <fmt/format.h>
#include <unistd.h>

namespace llmfs {

TempDir::TempDir(const std::string& name)
    : path_(std::filesystem::temp_directory_path() / fmt::format("llmfs-{}-{}", name, ::getpid())) {
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace llmfs
