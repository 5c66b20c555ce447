#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace llmfs {

/// Streams a large output (a checkpoint of several GB) to `path + ".tmp"` and renames it into
/// place on commit(), so an interrupted write never leaves a partial file under the final name.
/// Without commit() (an exception on the way) the destructor removes the temporary file.
/// For outputs that fit in memory, write_file_atomic (file_io.h) is simpler.
///
///   AtomicFileWriter out("model.pth");
///   out.write(header);
///   out.write(data);
///   out.commit();
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::filesystem::path& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(std::string_view bytes);
  void write(const void* data, uint64_t size);
  /// Bytes written so far.
  uint64_t position() const { return position_; }
  /// Flushes to disk and renames the temporary file to the final name.
  void commit();

 private:
  void flush_buffer();

  std::filesystem::path path_;
  std::filesystem::path tmp_;
  int fd_ = -1;
  uint64_t position_ = 0;
  std::string buffer_;
};

}  // namespace llmfs
