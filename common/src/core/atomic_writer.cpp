#include "llmfs/core/atomic_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "llmfs/core/error.h"

namespace llmfs {
namespace {

// Small writes (zip headers, pickle bytes) are gathered; large ones go straight to the file.
constexpr size_t kBufferSize = size_t{1} << 20;

// write(2) until every byte is out (it may take fewer, or be interrupted by a signal).
void write_all(int fd, const char* p, uint64_t size, const std::filesystem::path& tmp) {
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("{}: write failed ({})", tmp.string(), std::strerror(errno));
    p += n;
    size -= static_cast<uint64_t>(n);
  }
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(const std::filesystem::path& path)
    : path_(path), tmp_(path.string() + ".tmp") {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("{}: cannot write ({})", tmp_.string(), std::strerror(errno));
  buffer_.reserve(kBufferSize);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFileWriter::write(std::string_view bytes) { write(bytes.data(), bytes.size()); }

void AtomicFileWriter::write(const void* data, uint64_t size) {
  if (fd_ < 0) fail("{}: write after commit", path_.string());
  position_ += size;
  if (buffer_.size() + size <= kBufferSize) {
    buffer_.append(static_cast<const char*>(data), size);
    return;
  }
  flush_buffer();
  write_all(fd_, static_cast<const char*>(data), size, tmp_);
}

void AtomicFileWriter::flush_buffer() {
  write_all(fd_, buffer_.data(), buffer_.size(), tmp_);
  buffer_.clear();
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) fail("{}: committed twice", path_.string());
  flush_buffer();
  // The data must be on disk before the rename makes it visible under the final name.
  if (::fsync(fd_) != 0) fail("{}: cannot flush to disk ({})", tmp_.string(), std::strerror(errno));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    ::unlink(tmp_.c_str());
    fail("{}: cannot flush to disk", tmp_.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) {
    ::unlink(tmp_.c_str());
    fail("{}: cannot rename into place ({})", path_.string(), ec.message());
  }
}

}  // namespace llmfs
