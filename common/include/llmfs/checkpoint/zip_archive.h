#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llmfs {

class AtomicFileWriter;
class MappedFile;

/// CRC-32 (the zip / zlib polynomial) of `size` bytes, continuing from `crc` (0 to start).
/// Uses carry-less multiplication (PCLMULQDQ) where the CPU has it, else tables.
uint32_t crc32(const void* data, uint64_t size, uint32_t crc = 0);
/// The same CRC by tables only (to test the fast path against).
uint32_t crc32_portable(const void* data, uint64_t size, uint32_t crc = 0);

/// One stored entry of a zip archive: its name, where its bytes start in the file, their size
/// and the CRC-32 the central directory records.
struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;
  uint64_t size = 0;
  uint32_t crc = 0;
};

/// A strict reader for the uncompressed ("stored") zip archives that torch.save writes. It maps
/// the file, reads the end-of-central-directory record (zip64 where present), and checks every
/// central-directory entry against its local header: signatures, names, sizes, bounds,
/// overlaps, duplicates. Compressed, encrypted and multi-disk archives are refused. Errors are
/// one-line llmfs::Errors naming the file and the entry.
class ZipReader {
 public:
  explicit ZipReader(const std::filesystem::path& path);
  ~ZipReader();
  ZipReader(ZipReader&&) noexcept;
  ZipReader& operator=(ZipReader&&) noexcept;

  const std::filesystem::path& path() const { return path_; }
  /// Entries in central-directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  /// The entry with this exact name, or nullptr.
  const ZipEntry* find(std::string_view name) const;
  /// The entry's bytes (a view into the mapped file, valid while the reader lives). With
  /// verify_crc the CRC-32 is checked first (llmfs::Error naming the entry on a mismatch).
  std::string_view data(const ZipEntry& entry, bool verify_crc = true) const;
  /// The mapped file, for tensors that use entries' bytes in place.
  const std::shared_ptr<MappedFile>& mapped() const { return file_; }

 private:
  std::filesystem::path path_;
  std::shared_ptr<MappedFile> file_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, size_t, std::less<>> index_;
};

/// Writes a stored (uncompressed) zip archive atomically (tmp + rename), as torch.save lays it
/// out: each entry's data aligned to `alignment` bytes through padding in the local header's
/// extra field, zip64 records where sizes or offsets need them.
///
///   ZipWriter zip("model.pth");
///   zip.add("model/data.pkl", pickle_bytes);
///   zip.finish();
class ZipWriter {
 public:
  explicit ZipWriter(const std::filesystem::path& path, uint64_t alignment = 64);
  ~ZipWriter();
  ZipWriter(const ZipWriter&) = delete;
  ZipWriter& operator=(const ZipWriter&) = delete;

  void add(std::string_view name, std::string_view data);
  void add(std::string_view name, const void* data, uint64_t size);
  /// Writes the central directory and renames the file into place.
  void finish();

 private:
  struct Written {
    std::string name;
    uint64_t header_offset;
    uint64_t size;
    uint32_t crc;
  };
  std::unique_ptr<AtomicFileWriter> out_;
  uint64_t alignment_;
  std::vector<Written> written_;
};

}  // namespace llmfs
