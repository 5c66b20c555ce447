// A strict zip reader and writer, one module for every zip the project touches: PyTorch's
// checkpoint container (torch.save since PyTorch 1.6: stored entries, zip64 for archives and
// entries past 4 GiB), read in place and written, and downloaded data archives (deflated
// entries, inflated by zlib). Record layouts follow PKWARE's APPNOTE.TXT (sections 4.3.7 local
// header, 4.3.12 central directory header, 4.3.14-16 zip64 end records, 4.5.3 zip64 extra field).
#include "llmfs/core/zip_archive.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LLMFS_CRC_CLMUL 1
#endif

#include "llmfs/core/atomic_writer.h"
#include "llmfs/core/error.h"
#include "llmfs/core/mapped_file.h"

namespace llmfs {
namespace {

static_assert(std::endian::native == std::endian::little, "zip fields are read as little-endian");

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kPaddingExtraId = 0x4246;  // "FB": the id PyTorch uses for alignment padding
constexpr uint16_t kStored = 0;
constexpr uint16_t kDeflated = 8;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kZip64EndSize = 56;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint32_t kMax32 = 0xffffffff;
constexpr uint16_t kMax16 = 0xffff;

template <typename T>
T read_le(const unsigned char* p) {
  T v{};
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void put_le(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}

std::string method_name(uint16_t method) {
  switch (method) {
    case kDeflated:
      return "deflate";
    case 9:
      return "deflate64";
    case 12:
      return "bzip2";
    case 14:
      return "lzma";
    case 93:
      return "zstd";
    default:
      return "method " + std::to_string(method);
  }
}

// Raw deflate (no zlib header, as zip stores it) of an entry that inflates to exactly `size`
// bytes. zlib counts in 32-bit lengths: input and output are handed over in chunks.
std::string inflate_raw(std::string_view packed, uint64_t size, const std::string& where) {
  std::string out(size, '\0');
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) fail("{}: zlib initialisation failed", where);
  constexpr uint64_t kChunk = std::numeric_limits<uInt>::max();
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  uint64_t in_left = packed.size();
  uint64_t out_left = size;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (stream.avail_in == 0) {
      stream.avail_in = static_cast<uInt>(std::min(in_left, kChunk));
      in_left -= stream.avail_in;
    }
    if (stream.avail_out == 0) {
      stream.avail_out = static_cast<uInt>(std::min(out_left, kChunk));
      out_left -= stream.avail_out;
    }
    rc = inflate(&stream, Z_NO_FLUSH);  // Z_BUF_ERROR: no progress (input or output used up)
  }
  const uint64_t produced = size - out_left - stream.avail_out;
  const std::string zlib_message = stream.msg != nullptr ? stream.msg : "";
  inflateEnd(&stream);
  if (rc == Z_STREAM_END && produced == size) return out;
  if (rc == Z_STREAM_END) {
    fail("{}: deflated data inflates to {} bytes, not the {} its header records", where, produced,
         size);
  }
  if (rc == Z_BUF_ERROR) {
    fail("{}: deflated data is truncated or inflates to more than the {} bytes its header records",
         where, size);
  }
  fail("{}: corrupt deflated data ({})", where, zlib_message.empty() ? zError(rc) : zlib_message);
}

// --- CRC-32 ---

#ifdef LLMFS_CRC_CLMUL
// CRC register update by carry-less multiplication (PCLMULQDQ), about three times as fast as
// zlib's crc32: fold 64 bytes at a time, then 16, then reduce 128 -> 64 -> 32 bits (Barrett). The
// method and constants are those of Intel's "Fast CRC Computation for Generic Polynomials Using
// PCLMULQDQ" for the bit-reflected zip polynomial 0xedb88320. Needs size >= 64, size % 16 == 0.
#define LLMFS_CLMUL_TARGET __attribute__((target("pclmul,sse4.1")))

LLMFS_CLMUL_TARGET inline __m128i load16(const unsigned char* q) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
}

// x * k (low and high halves by the matching halves of k), plus the next 16 bytes.
LLMFS_CLMUL_TARGET inline __m128i fold16(__m128i x, __m128i k, __m128i next) {
  return _mm_xor_si128(
      _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
}

LLMFS_CLMUL_TARGET uint32_t crc_clmul(uint32_t c, const unsigned char* p, uint64_t size) {
  const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);  // fold by 512 bits
  const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);  // fold by 128 bits
  const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124);              // fold 64 -> 32 bits
  const __m128i poly = _mm_set_epi64x(0x1f7011641, 0x1db710641);  // Barrett: u', P'
  const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
  __m128i x1 = _mm_xor_si128(load16(p), _mm_cvtsi32_si128(static_cast<int>(c)));
  __m128i x2 = load16(p + 16);
  __m128i x3 = load16(p + 32);
  __m128i x4 = load16(p + 48);
  p += 64;
  size -= 64;
  for (; size >= 64; p += 64, size -= 64) {
    x1 = fold16(x1, k1k2, load16(p));
    x2 = fold16(x2, k1k2, load16(p + 16));
    x3 = fold16(x3, k1k2, load16(p + 32));
    x4 = fold16(x4, k1k2, load16(p + 48));
  }
  x1 = fold16(x1, k3k4, x2);
  x1 = fold16(x1, k3k4, x3);
  x1 = fold16(x1, k3k4, x4);
  for (; size >= 16; p += 16, size -= 16) x1 = fold16(x1, k3k4, load16(p));
  // 128 -> 64 bits.
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), _mm_clmulepi64_si128(x1, k3k4, 0x10));
  // 64 -> 32 bits.
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 4),
                     _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k5, 0x00));
  // Barrett reduction to the 32-bit register.
  __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly, 0x10);
  t = _mm_clmulepi64_si128(_mm_and_si128(t, mask32), poly, 0x00);
  return static_cast<uint32_t>(_mm_extract_epi32(_mm_xor_si128(x1, t), 1));
}

bool have_clmul() {
  static const bool yes = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
  return yes;
}
#endif

}  // namespace

uint32_t crc32(const void* data, uint64_t size, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
#ifdef LLMFS_CRC_CLMUL
  if (size >= 64 && have_clmul()) {
    const uint64_t bulk = size & ~uint64_t{15};
    crc = ~crc_clmul(~crc, p, bulk);
    p += bulk;
    size -= bulk;
  }
#endif
  return crc32_portable(p, size, crc);
}

uint32_t crc32_portable(const void* data, uint64_t size, uint32_t crc) {
  return static_cast<uint32_t>(
      ::crc32_z(crc, static_cast<const Bytef*>(data), static_cast<z_size_t>(size)));
}

// --- Reading ---

ZipReader::ZipReader(const std::filesystem::path& path, ZipCompression accept)
    : path_(path), file_(std::make_shared<MappedFile>(path)), bytes_(file_->bytes()) {
  parse(accept);
}

ZipReader ZipReader::from_bytes(std::string bytes, std::string name, ZipCompression accept) {
  ZipReader zip;
  zip.path_ = std::move(name);
  zip.memory_ = std::make_shared<const std::string>(std::move(bytes));
  zip.bytes_ = *zip.memory_;
  zip.parse(accept);
  return zip;
}

void ZipReader::parse(ZipCompression accept) {
  const std::string file = path_.string();
  const auto* base = reinterpret_cast<const unsigned char*>(bytes_.data());
  const uint64_t size = bytes_.size();
  if (size < kEndSize) {
    fail("{}: not a zip archive ({} bytes, too short for an end-of-central-directory record)", file,
         size);
  }

  // The end record is the last 22 bytes plus its comment; search back over the longest comment.
  uint64_t end_pos = std::numeric_limits<uint64_t>::max();
  const uint64_t lowest = size >= kEndSize + kMax16 ? size - kEndSize - kMax16 : 0;
  for (uint64_t pos = size - kEndSize + 1; pos-- > lowest;) {
    if (read_le<uint32_t>(base + pos) == kEndSig &&
        pos + kEndSize + read_le<uint16_t>(base + pos + 20) == size) {
      end_pos = pos;
      break;
    }
  }
  if (end_pos == std::numeric_limits<uint64_t>::max()) {
    fail("{}: not a zip archive (no end-of-central-directory record; truncated, or {})", file,
         accept == ZipCompression::stored
             ? "a legacy torch.save file from PyTorch < 1.6, which this reader does not support"
             : "not a zip file");
  }
  const unsigned char* end = base + end_pos;
  uint64_t disk = read_le<uint16_t>(end + 4);
  uint64_t cd_disk = read_le<uint16_t>(end + 6);
  uint64_t count_disk = read_le<uint16_t>(end + 8);
  uint64_t count = read_le<uint16_t>(end + 10);
  uint64_t cd_size = read_le<uint32_t>(end + 12);
  uint64_t cd_offset = read_le<uint32_t>(end + 16);
  uint64_t records_start = end_pos;  // the central directory must end before this

  if (end_pos >= kZip64LocatorSize &&
      read_le<uint32_t>(base + end_pos - kZip64LocatorSize) == kZip64LocatorSig) {
    const unsigned char* loc = base + end_pos - kZip64LocatorSize;
    const uint64_t z64_pos = read_le<uint64_t>(loc + 8);
    if (read_le<uint32_t>(loc + 4) != 0 || read_le<uint32_t>(loc + 16) > 1) {
      fail("{}: multi-disk zip archives are not supported", file);
    }
    if (z64_pos > end_pos - kZip64LocatorSize ||
        end_pos - kZip64LocatorSize - z64_pos < kZip64EndSize ||
        read_le<uint32_t>(base + z64_pos) != kZip64EndSig) {
      fail("{}: corrupt zip archive (zip64 end-of-central-directory record missing at offset {})",
           file, z64_pos);
    }
    const unsigned char* z = base + z64_pos;
    disk = read_le<uint32_t>(z + 16);
    cd_disk = read_le<uint32_t>(z + 20);
    count_disk = read_le<uint64_t>(z + 24);
    count = read_le<uint64_t>(z + 32);
    cd_size = read_le<uint64_t>(z + 40);
    cd_offset = read_le<uint64_t>(z + 48);
    records_start = z64_pos;
  }
  if (disk != 0 || cd_disk != 0 || count_disk != count) {
    fail("{}: multi-disk zip archives are not supported", file);
  }
  if (cd_offset > records_start || cd_size > records_start - cd_offset) {
    fail(
        "{}: corrupt zip archive (central directory at {} + {} bytes runs past its end record "
        "at {})",
        file, cd_offset, cd_size, records_start);
  }
  if (count > cd_size / kCentralHeaderSize) {
    fail("{}: corrupt zip archive ({} entries cannot fit in a {}-byte central directory)", file,
         count, cd_size);
  }

  uint64_t pos = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  std::vector<uint64_t> header_offsets;
  for (uint64_t i = 0; i < count; ++i) {
    if (cd_end - pos < kCentralHeaderSize || read_le<uint32_t>(base + pos) != kCentralHeaderSig) {
      fail("{}: corrupt zip archive (central directory entry {} of {} is missing at offset {})",
           file, i + 1, count, pos);
    }
    const unsigned char* h = base + pos;
    const uint16_t flags = read_le<uint16_t>(h + 8);
    const uint16_t method = read_le<uint16_t>(h + 10);
    const uint32_t crc = read_le<uint32_t>(h + 16);
    uint64_t compressed = read_le<uint32_t>(h + 20);
    uint64_t uncompressed = read_le<uint32_t>(h + 24);
    const uint64_t name_len = read_le<uint16_t>(h + 28);
    const uint64_t extra_len = read_le<uint16_t>(h + 30);
    const uint64_t comment_len = read_le<uint16_t>(h + 32);
    uint64_t start_disk = read_le<uint16_t>(h + 34);
    uint64_t local = read_le<uint32_t>(h + 42);
    if (cd_end - pos - kCentralHeaderSize < name_len + extra_len + comment_len) {
      fail("{}: corrupt zip archive (central directory entry {} runs past the directory)", file,
           i + 1);
    }
    std::string name(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_len);
    const std::string where = fmt::format("{}: zip entry '{}'", file, name);

    // zip64 extra field: the 64-bit values of exactly those fields that hold 0xffffffff.
    const unsigned char* extra = h + kCentralHeaderSize + name_len;
    for (uint64_t e = 0; e + 4 <= extra_len;) {
      const uint16_t id = read_le<uint16_t>(extra + e);
      const uint16_t len = read_le<uint16_t>(extra + e + 2);
      if (e + 4 + len > extra_len) fail("{}: corrupt extra field in the central directory", where);
      if (id == kZip64ExtraId) {
        const unsigned char* v = extra + e + 4;
        uint64_t used = 0;
        auto take64 = [&](uint64_t& field) {
          if (used + 8 > len) fail("{}: zip64 extra field too short", where);
          field = read_le<uint64_t>(v + used);
          used += 8;
        };
        if (uncompressed == kMax32) take64(uncompressed);
        if (compressed == kMax32) take64(compressed);
        if (local == kMax32) take64(local);
        if (start_disk == kMax16) {
          if (used + 4 > len) fail("{}: zip64 extra field too short", where);
          start_disk = read_le<uint32_t>(v + used);
        }
      }
      e += 4 + len;
    }
    if (flags & 0x1) fail("{}: encrypted entries are not supported", where);
    if (accept == ZipCompression::stored && method != kStored) {
      fail(
          "{}: compressed ({}); only stored (uncompressed) entries are supported, which is what "
          "torch.save writes",
          where, method_name(method));
    }
    if (method != kStored && method != kDeflated) {
      fail("{}: compressed ({}); only stored and deflated entries are supported", where,
           method_name(method));
    }
    // Deflate encodes at most 258 bytes in one 1-bit code, about 1032:1: a larger claim is a
    // corrupt directory (and inflating it would allocate the claim first).
    if (method == kDeflated && uncompressed / 1032 > compressed + 1) {
      fail("{}: deflated entry of {} bytes cannot inflate to {} (corrupt directory?)", where,
           compressed, uncompressed);
    }
    if (method == kStored && compressed != uncompressed) {
      fail("{}: stored entry with compressed size {} != size {}", where, compressed, uncompressed);
    }
    if (start_disk != 0) fail("{}: multi-disk zip archives are not supported", file);

    // The local header repeats the name; the data follows its name and extra field.
    if (local > cd_offset || cd_offset - local < kLocalHeaderSize ||
        read_le<uint32_t>(base + local) != kLocalHeaderSig) {
      fail("{}: local header missing at offset {}", where, local);
    }
    const unsigned char* lh = base + local;
    const uint64_t local_name_len = read_le<uint16_t>(lh + 26);
    const uint64_t local_extra_len = read_le<uint16_t>(lh + 28);
    const uint64_t data_offset = local + kLocalHeaderSize + local_name_len + local_extra_len;
    if (data_offset > cd_offset ||
        std::string_view(reinterpret_cast<const char*>(lh + kLocalHeaderSize), local_name_len) !=
            name) {
      fail("{}: local header at offset {} does not match the central directory", where, local);
    }
    if (read_le<uint16_t>(lh + 8) != method) {
      fail("{}: local header and central directory disagree on the compression method", where);
    }
    if (compressed > cd_offset - data_offset) {
      fail("{}: {} bytes at offset {} run past the central directory at {} (truncated?)", where,
           compressed, data_offset, cd_offset);
    }
    if (!index_.emplace(name, entries_.size()).second) fail("{}: appears twice", where);
    entries_.push_back({std::move(name), data_offset, uncompressed, compressed, crc, method});
    header_offsets.push_back(local);
    pos += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
  if (pos != cd_end) {
    fail("{}: corrupt zip archive (central directory holds {} bytes after its {} entries)", file,
         cd_end - pos, count);
  }

  // No entry's data may run into the next entry's local header.
  std::vector<size_t> order(entries_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return header_offsets[a] < header_offsets[b]; });
  for (size_t k = 0; k + 1 < order.size(); ++k) {
    const ZipEntry& e = entries_[order[k]];
    if (e.data_offset + e.compressed_size > header_offsets[order[k + 1]]) {
      fail("{}: zip entry '{}' overlaps zip entry '{}'", file, e.name, entries_[order[k + 1]].name);
    }
  }
}

ZipReader::~ZipReader() = default;
ZipReader::ZipReader(ZipReader&&) noexcept = default;
ZipReader& ZipReader::operator=(ZipReader&&) noexcept = default;

const ZipEntry* ZipReader::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

void ZipReader::check_crc(const ZipEntry& entry, std::string_view bytes) const {
  const uint32_t actual = crc32(bytes.data(), bytes.size());
  if (actual != entry.crc) {
    fail("{}: zip entry '{}' is corrupt (CRC-32 {:08x}, expected {:08x})", path_.string(),
         entry.name, actual, entry.crc);
  }
}

std::string_view ZipReader::data(const ZipEntry& entry, bool verify_crc) const {
  if (!entry.stored()) {
    fail("{}: zip entry '{}' is compressed ({}): its bytes cannot be used in place", path_.string(),
         entry.name, method_name(entry.method));
  }
  const std::string_view bytes = bytes_.substr(entry.data_offset, entry.size);
  if (verify_crc) check_crc(entry, bytes);
  return bytes;
}

std::string ZipReader::read(const ZipEntry& entry, bool verify_crc) const {
  if (entry.stored()) return std::string(data(entry, verify_crc));
  const std::string bytes =
      inflate_raw(bytes_.substr(entry.data_offset, entry.compressed_size), entry.size,
                  fmt::format("{}: zip entry '{}'", path_.string(), entry.name));
  if (verify_crc) check_crc(entry, bytes);
  return bytes;
}

// --- Writing ---

ZipWriter::ZipWriter(const std::filesystem::path& path, uint64_t alignment)
    : out_(std::make_unique<AtomicFileWriter>(path)), alignment_(alignment) {
  if (alignment_ == 0) alignment_ = 1;
}

ZipWriter::~ZipWriter() = default;

void ZipWriter::add(std::string_view name, std::string_view data) {
  add(name, data.data(), data.size());
}

void ZipWriter::add(std::string_view name, const void* data, uint64_t size) {
  if (!out_) fail("zip entry '{}' added after finish()", name);
  if (name.size() > kMax16) fail("zip entry name too long ({} bytes)", name.size());
  const uint64_t offset = out_->position();
  const uint32_t crc = crc32(data, size);
  const bool zip64 = size >= kMax32;

  std::string header;
  put_le<uint32_t>(header, kLocalHeaderSig);
  put_le<uint16_t>(header, zip64 ? 45 : 20);  // version needed: 4.5 for zip64
  put_le<uint16_t>(header, 0);                // flags
  put_le<uint16_t>(header, 0);                // stored
  put_le<uint16_t>(header, 0);                // time
  put_le<uint16_t>(header, 0);                // date
  put_le<uint32_t>(header, crc);
  put_le<uint32_t>(header, zip64 ? kMax32 : static_cast<uint32_t>(size));
  put_le<uint32_t>(header, zip64 ? kMax32 : static_cast<uint32_t>(size));
  std::string extra;
  if (zip64) {
    put_le<uint16_t>(extra, kZip64ExtraId);
    put_le<uint16_t>(extra, 16);
    put_le<uint64_t>(extra, size);
    put_le<uint64_t>(extra, size);
  }
  // Pad through an extra field so the data starts on an alignment boundary (PyTorch's loader
  // can then use the bytes in place).
  const uint64_t unpadded = offset + kLocalHeaderSize + name.size() + extra.size();
  if (unpadded % alignment_ != 0) {
    uint64_t pad = alignment_ - unpadded % alignment_;
    while (pad < 4) pad += alignment_;  // room for the extra field's own id and length
    put_le<uint16_t>(extra, kPaddingExtraId);
    put_le<uint16_t>(extra, static_cast<uint16_t>(pad - 4));
    extra.append(pad - 4, 'Z');
  }
  put_le<uint16_t>(header, static_cast<uint16_t>(name.size()));
  put_le<uint16_t>(header, static_cast<uint16_t>(extra.size()));
  header += name;
  header += extra;
  out_->write(header);
  if (size > 0) out_->write(data, size);
  written_.push_back({std::string(name), offset, size, crc});
}

void ZipWriter::finish() {
  if (!out_) fail("zip archive finished twice");
  const uint64_t cd_offset = out_->position();
  std::string cd;
  for (const auto& w : written_) {
    const bool big_size = w.size >= kMax32;
    const bool big_offset = w.header_offset >= kMax32;
    std::string extra;
    if (big_size || big_offset) {
      put_le<uint16_t>(extra, kZip64ExtraId);
      put_le<uint16_t>(extra, static_cast<uint16_t>((big_size ? 16 : 0) + (big_offset ? 8 : 0)));
      if (big_size) {
        put_le<uint64_t>(extra, w.size);
        put_le<uint64_t>(extra, w.size);
      }
      if (big_offset) put_le<uint64_t>(extra, w.header_offset);
    }
    put_le<uint32_t>(cd, kCentralHeaderSig);
    put_le<uint16_t>(cd, 45);  // version made by
    put_le<uint16_t>(cd, big_size || big_offset ? 45 : 20);
    put_le<uint16_t>(cd, 0);
    put_le<uint16_t>(cd, 0);
    put_le<uint16_t>(cd, 0);
    put_le<uint16_t>(cd, 0);
    put_le<uint32_t>(cd, w.crc);
    put_le<uint32_t>(cd, big_size ? kMax32 : static_cast<uint32_t>(w.size));
    put_le<uint32_t>(cd, big_size ? kMax32 : static_cast<uint32_t>(w.size));
    put_le<uint16_t>(cd, static_cast<uint16_t>(w.name.size()));
    put_le<uint16_t>(cd, static_cast<uint16_t>(extra.size()));
    put_le<uint16_t>(cd, 0);  // comment
    put_le<uint16_t>(cd, 0);  // disk
    put_le<uint16_t>(cd, 0);  // internal attributes
    put_le<uint32_t>(cd, 0);  // external attributes
    put_le<uint32_t>(cd, big_offset ? kMax32 : static_cast<uint32_t>(w.header_offset));
    cd += w.name;
    cd += extra;
  }
  const uint64_t count = written_.size();
  const uint64_t z64_offset = cd_offset + cd.size();
  // Like torch.save, always write the zip64 end records; the classic record then says 0xffffffff
  // wherever a value does not fit.
  put_le<uint32_t>(cd, kZip64EndSig);
  put_le<uint64_t>(cd, kZip64EndSize - 12);
  put_le<uint16_t>(cd, 45);
  put_le<uint16_t>(cd, 45);
  put_le<uint32_t>(cd, 0);
  put_le<uint32_t>(cd, 0);
  put_le<uint64_t>(cd, count);
  put_le<uint64_t>(cd, count);
  put_le<uint64_t>(cd, z64_offset - cd_offset);
  put_le<uint64_t>(cd, cd_offset);
  put_le<uint32_t>(cd, kZip64LocatorSig);
  put_le<uint32_t>(cd, 0);
  put_le<uint64_t>(cd, z64_offset);
  put_le<uint32_t>(cd, 1);
  put_le<uint32_t>(cd, kEndSig);
  put_le<uint16_t>(cd, 0);
  put_le<uint16_t>(cd, 0);
  put_le<uint16_t>(cd, count >= kMax16 ? kMax16 : static_cast<uint16_t>(count));
  put_le<uint16_t>(cd, count >= kMax16 ? kMax16 : static_cast<uint16_t>(count));
  const uint64_t cd_size = z64_offset - cd_offset;
  put_le<uint32_t>(cd, cd_size >= kMax32 ? kMax32 : static_cast<uint32_t>(cd_size));
  put_le<uint32_t>(cd, cd_offset >= kMax32 ? kMax32 : static_cast<uint32_t>(cd_offset));
  put_le<uint16_t>(cd, 0);
  out_->write(cd);
  out_->commit();
  out_.reset();
}

}  // namespace llmfs
