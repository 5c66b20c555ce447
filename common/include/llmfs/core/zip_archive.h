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
/// The bulk goes through carry-less multiplication (PCLMULQDQ) where the CPU has it, about three
/// times as fast as zlib (checkpoints are checked on every load); the rest through zlib's crc32.
uint32_t crc32(const void* data, uint64_t size, uint32_t crc = 0);
/// The same CRC by zlib's crc32 alone (to test the fast path against).
uint32_t crc32_portable(const void* data, uint64_t size, uint32_t crc = 0);

/// The compression methods a ZipReader accepts. An entry with another method is refused when
/// the archive is opened (llmfs::Error naming the file, the entry and the method).
enum class ZipCompression {
  /// Stored (uncompressed) entries only, which is what torch.save writes: every entry's bytes
  /// can then be used in place (ZipReader::data, tensors on the mapped file).
  stored,
  /// Stored or deflated entries, which is what zip tools write (downloaded data archives).
  stored_or_deflated,
};

/// One entry of a zip archive: its name, where its bytes (compressed, when deflated) start in the
/// archive, their sizes and the CRC-32 the central directory records.
struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;
  uint64_t size = 0;             // uncompressed
  uint64_t compressed_size = 0;  // the bytes at data_offset; equal to size when stored
  uint32_t crc = 0;              // of the uncompressed bytes
  uint16_t method = 0;           // 0 stored, 8 deflated

  bool stored() const { return method == 0; }
};

/// A strict zip reader: the uncompressed ("stored") archives that torch.save writes, and, when
/// asked, the deflated entries of any zip tool. It maps the file (or takes the archive's bytes),
/// reads the end-of-central-directory record (zip64 where present), and checks every
/// central-directory entry against its local header: signatures, names, methods, sizes, bounds,
/// overlaps, duplicates. Encrypted and multi-disk archives and other compression methods are
/// refused. Errors are one-line llmfs::Errors naming the file and the entry.
///
///   ZipReader zip("model.pth");                       // torch.save: stored entries only
///   std::string_view pickle = zip.data(*zip.find("model/data.pkl"));
///   auto sms = ZipReader::from_bytes(body, url, ZipCompression::stored_or_deflated);
///   std::string text = sms.read(*sms.find("SMSSpamCollection"));
class ZipReader {
 public:
  explicit ZipReader(const std::filesystem::path& path,
                     ZipCompression accept = ZipCompression::stored);
  /// An archive held in memory (a download); `name` stands for the file in errors.
  static ZipReader from_bytes(std::string bytes, std::string name,
                              ZipCompression accept = ZipCompression::stored);
  ~ZipReader();
  ZipReader(ZipReader&&) noexcept;
  ZipReader& operator=(ZipReader&&) noexcept;

  const std::filesystem::path& path() const { return path_; }
  /// Entries in central-directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  /// The entry with this exact name, or nullptr.
  const ZipEntry* find(std::string_view name) const;
  /// A stored entry's bytes, in place (a view into the archive, valid while the reader lives).
  /// With verify_crc the CRC-32 is checked first (llmfs::Error naming the entry on a mismatch).
  /// llmfs::Error for a deflated entry: read() inflates it.
  std::string_view data(const ZipEntry& entry, bool verify_crc = true) const;
  /// An entry's uncompressed bytes, stored or deflated (zlib's inflate; the size and, with
  /// verify_crc, the CRC-32 checked).
  std::string read(const ZipEntry& entry, bool verify_crc = true) const;
  /// The mapped file, for tensors that use entries' bytes in place (null for from_bytes).
  const std::shared_ptr<MappedFile>& mapped() const { return file_; }

 private:
  ZipReader() = default;
  void parse(ZipCompression accept);
  void check_crc(const ZipEntry& entry, std::string_view bytes) const;

  std::filesystem::path path_;
  std::shared_ptr<MappedFile> file_;            // a file's archive, or
  std::shared_ptr<const std::string> memory_;  // one held in memory
  std::string_view bytes_;                      // the archive: all of file_ or memory_
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
