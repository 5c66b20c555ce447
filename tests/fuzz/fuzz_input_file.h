#pragma once
// For harnesses of readers that take a path: the input written to a file of this process
// (under $TMPDIR, else /tmp), replaced by each input, removed at exit.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace llmfs::fuzz {

class InputFile {
 public:
  explicit InputFile(std::string_view extension) {
    const char* tmp = std::getenv("TMPDIR");
    path_ = std::filesystem::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") /
            ("llmfs_fuzz_" + std::to_string(::getpid()) + std::string(extension));
  }
  ~InputFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  const std::filesystem::path& write(std::string_view bytes) const {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path_;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

[[noreturn]] inline void broken(const char* property, std::size_t size) {
  std::fprintf(stderr, "property violated: %s (input %zu bytes)\n", property, size);
  std::abort();
}

}  // namespace llmfs::fuzz
