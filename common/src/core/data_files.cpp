// Named data files: found in LLMFS_DATA_DIR or the data cache, else downloaded from their source
// and checked against the SHA-256 of ../shared/data/README.md.
#include "llmfs/core/data_files.h"

#include <httplib.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <memory>

#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"

namespace llmfs {

const std::vector<DataFileInfo>& known_data_files() {
  static const std::vector<DataFileInfo> files = {
      {"the-verdict.txt",
       "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch02/01_main-chapter-code/"
       "the-verdict.txt",
       "b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f", ""},
      {"gpt2/encoder.json", "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
       "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783", ""},
      {"gpt2/vocab.bpe", "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
       "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5", ""},
      {"SMSSpamCollection", "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
       "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d", "SMSSpamCollection"},
      {"instruction-data.json",
       "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch07/01_main-chapter-code/"
       "instruction-data.json",
       "7e09a9af353722ca15c18bc580f093f9c39d3178335a75177319cb1e1d163944", ""},
      {"instruction-data-with-preference.json",
       "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch07/"
       "04_preference-tuning-with-dpo/instruction-data-with-preference.json",
       "305315abf14f65fa42c01a0877572f832606571c2a7d49f152ac1d758b16756e", ""},
      {"middlemarch.txt", "https://www.gutenberg.org/cache/epub/145/pg145.txt",
       "1135fae7dc0b510e58971bb56e4b15008023393125fed9107787426380d1c7c9", ""},
      {"unsu-joeun-nal.txt",
       "https://raw.githubusercontent.com/juuuuunyy/txt/master/"
       "%EC%9A%B4%EC%88%98%EC%A2%8B%EC%9D%80%EB%82%A0.txt",
       "3d67b8598c319cb231720810cf81d982755ad6b76dc9ba757d259b324ff0425c", ""},
  };
  return files;
}

const DataFileInfo& data_file_info(std::string_view name) {
  for (const auto& f : known_data_files()) {
    if (f.name == name) return f;
  }
  std::string names;
  for (const auto& f : known_data_files()) names += (names.empty() ? "" : ", ") + f.name;
  fail("unknown data file '{}' (known: {})", name, names);
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    fail("SHA-256 computation failed");
  }
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

std::string sha256_file(const std::filesystem::path& path) { return sha256_hex(read_file(path)); }

std::filesystem::path data_cache_dir() {
  std::filesystem::path base;
  if (const char* dir = std::getenv("LLMFS_CACHE_DIR"); dir && *dir) {
    base = dir;
  } else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    base = std::filesystem::path(xdg) / "llmfs";
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    base = std::filesystem::path(home) / ".cache" / "llmfs";
  } else {
    base = ".llmfs-cache";
  }
  return base / "data";
}

namespace {

struct Url {
  std::string scheme_host_port;  // "https://host:port", what httplib::Client takes
  std::string path;              // "/a/b.txt"
};

Url split_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) fail("malformed URL '{}'", url);
  const auto path_start = url.find('/', scheme_end + 3);
  if (path_start == std::string::npos) return {url, "/"};
  return {url.substr(0, path_start), url.substr(path_start)};
}

std::string http_get(const std::string& url) {
  const Url parts = split_url(url);
  httplib::Client client(parts.scheme_host_port);
  client.set_follow_location(true);
  client.set_connection_timeout(20);
  client.set_read_timeout(120);
  const auto result = client.Get(parts.path);
  if (!result) fail("download of {} failed: {}", url, httplib::to_string(result.error()));
  if (result->status != 200) fail("download of {} failed: HTTP status {}", url, result->status);
  return result->body;
}

uint32_t le32(std::string_view b, size_t at) {
  return static_cast<uint32_t>(static_cast<unsigned char>(b[at])) |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3])) << 24;
}
uint32_t le16(std::string_view b, size_t at) {
  return static_cast<uint32_t>(static_cast<unsigned char>(b[at])) |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8;
}

}  // namespace

std::string extract_zip_member(std::string_view zip, std::string_view member, std::string_view what) {
  // End of central directory record: signature 0x06054b50, at most 65535 + 22 bytes from the end.
  constexpr size_t kEocdSize = 22;
  if (zip.size() < kEocdSize) fail("{}: not a zip archive (too short)", what);
  size_t eocd = std::string_view::npos;
  const size_t lowest = zip.size() > kEocdSize + 65535 ? zip.size() - kEocdSize - 65535 : 0;
  for (size_t at = zip.size() - kEocdSize + 1; at-- > lowest;) {
    if (le32(zip, at) == 0x06054b50) {
      eocd = at;
      break;
    }
  }
  if (eocd == std::string_view::npos) fail("{}: not a zip archive (no end of central directory)", what);
  const uint32_t entries = le16(zip, eocd + 10);
  size_t at = le32(zip, eocd + 16);  // start of the central directory
  for (uint32_t i = 0; i < entries; ++i) {
    if (at + 46 > zip.size() || le32(zip, at) != 0x02014b50) fail("{}: corrupt zip central directory", what);
    const uint32_t method = le16(zip, at + 10), crc = le32(zip, at + 16);
    const uint32_t packed = le32(zip, at + 20), size = le32(zip, at + 24);
    const uint32_t name_len = le16(zip, at + 28), extra_len = le16(zip, at + 30), comment_len = le16(zip, at + 32);
    const uint32_t local = le32(zip, at + 42);
    if (at + 46 + name_len > zip.size()) fail("{}: corrupt zip central directory", what);
    const std::string_view name = zip.substr(at + 46, name_len);
    at += 46 + name_len + extra_len + comment_len;
    if (name != member) continue;

    if (local + 30 > zip.size() || le32(zip, local) != 0x04034b50) fail("{}: corrupt zip entry {}", what, member);
    const size_t data = local + 30 + le16(zip, local + 26) + le16(zip, local + 28);
    if (data + packed > zip.size()) fail("{}: zip entry {} runs past the end of the archive", what, member);
    std::string out;
    if (method == 0) {
      out.assign(zip.substr(data, packed));
    } else if (method == 8) {  // raw deflate
      out.resize(size);
      z_stream stream{};
      if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) fail("{}: zlib initialisation failed", what);
      stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zip.data() + data));
      stream.avail_in = packed;
      stream.next_out = reinterpret_cast<Bytef*>(out.data());
      stream.avail_out = size;
      const int rc = inflate(&stream, Z_FINISH);
      inflateEnd(&stream);
      if (rc != Z_STREAM_END || stream.total_out != size) fail("{}: zip entry {} does not inflate", what, member);
    } else {
      fail("{}: zip entry {} uses unsupported compression method {}", what, member, method);
    }
    if (crc32(0L, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(out.size())) != crc) {
      fail("{}: zip entry {} fails its CRC check", what, member);
    }
    return out;
  }
  fail("{}: the zip archive has no member {}", what, member);
}

std::filesystem::path download_data_file(const DataFileInfo& info, const std::filesystem::path& dir) {
  spdlog::info("downloading {} from {}", info.name, info.url);
  std::string body = http_get(info.url);
  if (!info.zip_member.empty()) body = extract_zip_member(body, info.zip_member, info.url);
  const std::string actual = sha256_hex(body);
  if (actual != info.sha256) {
    fail("download of {} from {}: SHA-256 mismatch (expected {}, got {}); file not saved", info.name,
         info.url, info.sha256, actual);
  }
  const auto path = dir / info.name;
  write_file_atomic(path, body);
  spdlog::info("saved {}", path.string());
  return path;
}

namespace {

// The places a data file may be, in order of preference.
std::vector<std::filesystem::path> candidate_paths(std::string_view name) {
  std::vector<std::filesystem::path> paths;
  if (const char* dir = std::getenv("LLMFS_DATA_DIR"); dir && *dir) paths.push_back(std::filesystem::path(dir) / name);
  paths.push_back(data_cache_dir() / name);
  return paths;
}

}  // namespace

std::optional<std::filesystem::path> find_data_file(std::string_view name) {
  for (const auto& path : candidate_paths(name)) {
    if (std::filesystem::is_regular_file(path)) return path;
  }
  return std::nullopt;
}

std::filesystem::path data_file(std::string_view name) {
  if (auto found = find_data_file(name)) return *found;
  std::vector<std::string> looked;
  for (const auto& path : candidate_paths(name)) looked.push_back(path.string());
  const DataFileInfo& info = data_file_info(name);
  const auto cached = data_cache_dir() / name;
  const std::string hint = fmt::format(
      "missing data file {} (looked in {}); set LLMFS_DATA_DIR to a folder holding it, or "
      "download {} to {}",
      name, fmt::join(looked, ", "), info.url, cached.string());
  const char* offline = std::getenv("LLMFS_OFFLINE");
  if (offline && std::string_view(offline) == "1") throw Error(hint + " (LLMFS_OFFLINE=1: not downloading)");
  try {
    return download_data_file(info, data_cache_dir());
  } catch (const Error& e) {
    throw Error(hint + ": " + e.what());
  }
}

std::filesystem::path input_file(std::string_view path_or_name) {
  const std::filesystem::path path(path_or_name);
  if (std::filesystem::is_regular_file(path)) return path;
  for (const auto& info : known_data_files()) {
    if (info.name == path_or_name) return data_file(path_or_name);
  }
  if (std::filesystem::exists(path)) fail("{}: not a regular file", path.string());
  fail("{}: no such file (nor a known data file name)", path.string());
}

}  // namespace llmfs
