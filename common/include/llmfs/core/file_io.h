#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace llmfs {

/// The whole file as bytes. Throws llmfs::Error naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

/// Writes bytes to `path + ".tmp"`, flushes them to disk, and renames the file into place, so
/// that an interrupted write never leaves a partial file under the final name. Creates parent
/// folders. One AtomicFileWriter (atomic_writer.h) write and commit.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

}  // namespace llmfs
