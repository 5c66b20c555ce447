#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmfs {

/// A data file the project knows by name: where it comes from and the SHA-256 it must have.
struct DataFileInfo {
  std::string name;        // relative name, e.g. "the-verdict.txt", "gpt2/encoder.json"
  std::string url;         // source URL (http or https)
  std::string sha256;      // lowercase hex of the file's bytes
  std::string zip_member;  // when the URL is a zip archive: the member to extract ("" otherwise)
};

/// The files of ../shared/data/README.md: the-verdict.txt, gpt2/encoder.json, gpt2/vocab.bpe,
/// SMSSpamCollection, instruction-data.json, instruction-data-with-preference.json,
/// middlemarch.txt, unsu-joeun-nal.txt.
const std::vector<DataFileInfo>& known_data_files();

/// The entry of known_data_files() with this name; llmfs::Error when there is none.
const DataFileInfo& data_file_info(std::string_view name);

/// Where a named data file is, downloading it when needed:
///   1. $LLMFS_DATA_DIR/<name> when LLMFS_DATA_DIR is set and the file is there;
///   2. the project's data cache (~/.cache/llmfs/data/<name>, or $LLMFS_CACHE_DIR/data);
///   3. otherwise it is downloaded from its source URL into the cache and its SHA-256 checked
///      (not when LLMFS_OFFLINE=1).
/// A file that cannot be had is an llmfs::Error that says where it looked and how to get it.
std::filesystem::path data_file(std::string_view name);

/// An input file given by the user: the path itself when that file exists, otherwise the data file
/// of that name (data_file: LLMFS_DATA_DIR, the cache, or a download), so configs can say
/// `input: the-verdict.txt`. Neither is an llmfs::Error naming the path.
std::filesystem::path input_file(std::string_view path_or_name);

/// Where a named data file is found locally (steps 1 and 2 above), without downloading.
std::optional<std::filesystem::path> find_data_file(std::string_view name);

/// The project's cache folder, for every caller: $LLMFS_CACHE_DIR, else $XDG_CACHE_HOME/llmfs, else
/// ~/.cache/llmfs. Data files live in its data/, GPT-2 weights in gpt2/<SIZE>/
/// (scripts/download_gpt2.sh, llmfs::gpt2_weights_dir), the Python venv in venv/.
std::filesystem::path cache_root();

/// The data cache folder, cache_root()/data (created on demand).
std::filesystem::path data_cache_dir();

/// Downloads `info` into `dir/<info.name>` (atomically), checking the SHA-256; returns the path.
/// Throws llmfs::Error naming the URL on a network failure or a hash mismatch.
std::filesystem::path download_data_file(const DataFileInfo& info, const std::filesystem::path& dir);

/// One member of a zip archive held in memory (stored or deflated; CRC checked). `what` names the
/// archive in errors.
std::string extract_zip_member(std::string_view zip, std::string_view member, std::string_view what);

/// Lowercase hex SHA-256 of bytes, and of a file's contents.
std::string sha256_hex(std::string_view bytes);
std::string sha256_file(const std::filesystem::path& path);

}  // namespace llmfs
