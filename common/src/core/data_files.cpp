// Named data files: found in LLMFS_DATA_DIR or the data cache, else downloaded from their source
// and checked against the SHA-256 of ../shared/data/README.md.
#include "llmfs/core/data_files.h"

#include <httplib.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <fstream>
#include <memory>

#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/http.h"
#include "llmfs/core/zip_archive.h"

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

std::filesystem::path cache_root() {
  if (const char* dir = std::getenv("LLMFS_CACHE_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    return std::filesystem::path(xdg) / "llmfs";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::filesystem::path(home) / ".cache" / "llmfs";
  }
  return ".llmfs-cache";
}

std::filesystem::path data_cache_dir() { return cache_root() / "data"; }

namespace {

std::string http_get(const std::string& url) {
  const UrlParts parts = split_url(url);
  httplib::Client client(parts.scheme_host_port);
  client.set_follow_location(true);
  client.set_connection_timeout(20);
  client.set_read_timeout(120);
  const auto result = client.Get(parts.path);
  if (!result) fail("download of {} failed: {}", url, httplib::to_string(result.error()));
  if (result->status != 200) fail("download of {} failed: HTTP status {}", url, result->status);
  return result->body;
}

}  // namespace

std::string extract_zip_member(std::string_view zip, std::string_view member, std::string_view what) {
  const auto archive = ZipReader::from_bytes(std::string(zip), std::string(what),
                                             ZipCompression::stored_or_deflated);
  const ZipEntry* entry = archive.find(member);
  if (entry == nullptr) fail("{}: the zip archive has no member {}", what, member);
  return archive.read(*entry);  // inflated, size and CRC-32 checked
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
