#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace llmfs {

/// A whole file mapped into memory (mmap), for checkpoint readers that look at a few bytes of a
/// large file or hand out tensors that use its bytes in place. The mapping is private and
/// copy-on-write: writing to the memory (a tensor made from it, trained further) changes only
/// this process's copy of that page, never the file. Pages are read from disk when first touched.
/// Throws llmfs::Error naming the file when it cannot be opened or mapped. Move-only.
///
///   MappedFile file("model.safetensors");
///   std::string_view header = file.bytes().substr(8, n);
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  uint64_t size() const { return size_; }
  const unsigned char* data() const { return data_; }
  /// The same bytes, writable (copy-on-write), for tensors that use them in place.
  unsigned char* mutable_data() const { return data_; }
  std::string_view bytes() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  std::filesystem::path path_;
  unsigned char* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace llmfs
