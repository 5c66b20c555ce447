#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llmfs {

class MappedFile;

/// One tensor entry of a safetensors header: its name, dtype (the format's spelling, e.g. "F32",
/// and the torch dtype), shape, and byte range [begin, end) relative to the data buffer.
struct SafetensorsEntry {
  std::string name;
  std::string dtype_name;
  torch::Dtype dtype = torch::kFloat32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

/// A validated safetensors header: the entries in file order (by offset), the optional
/// `__metadata__` strings, and where the data buffer starts in the file (8 + header length).
struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;
};

/// The safetensors dtype names this reader and writer support (F64, F32, F16, BF16, I64, I32,
/// I16, I8, U64, U32, U16, U8, BOOL, C64, F8_E4M3, F8_E5M2, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ).
const std::vector<std::string>& safetensors_dtype_names();

/// Reads and validates only the header (8 + N bytes; the tensor data is not read): the
/// length prefix, the JSON (no duplicate names), dtypes, shapes against byte lengths, offsets
/// that cover the data buffer exactly with no holes or overlaps, and the file size. Throws a
/// one-line llmfs::Error naming the file and, where there is one, the tensor.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

/// An open, validated safetensors file (memory-mapped), for reading tensors one at a time:
/// loading a 6 GB checkpoint into a model then needs no second copy of the whole file.
/// Tensors use the file's bytes in place (see MappedFile: copy-on-write, loaded when touched).
///
///   SafetensorsFile file("model.safetensors");
///   for (const auto& e : file.header().entries) std::cout << e.name << '\n';
///   torch::Tensor wte = file.tensor("transformer.wte.weight");
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;

  const std::filesystem::path& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  bool contains(std::string_view name) const;
  /// The entry, or llmfs::Error naming the file and the missing tensor.
  const SafetensorsEntry& entry(std::string_view name) const;
  /// A CPU tensor over the file's bytes (no copy; it keeps the mapping alive, and writing to it
  /// never changes the file).
  torch::Tensor tensor(std::string_view name) const;

 private:
  std::filesystem::path path_;
  std::shared_ptr<MappedFile> file_;
  SafetensorsHeader header_;
  std::map<std::string, size_t, std::less<>> index_;
};

/// Every tensor of a safetensors file by name: CPU tensors over the mapped file, as
/// safetensors.torch.load_file gives them (no copy; pages are read when first touched).
std::map<std::string, torch::Tensor> load_safetensors(const std::filesystem::path& path);

/// The bytes of a safetensors file, laid out as the reference Python library (safetensors 0.8)
/// lays them out: tensors ordered by dtype size (largest first, as that library ranks dtypes)
/// then by name, so each tensor is aligned to its element size; the JSON header without spaces,
/// `__metadata__` first (keys sorted), padded with spaces to a multiple of 8 bytes. Tensors are
/// copied to CPU and made contiguous. Names must be non-empty valid UTF-8 and not
/// "__metadata__".
std::string serialize_safetensors(const std::map<std::string, torch::Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

/// Writes serialize_safetensors' layout to `path` atomically (tmp + rename), streaming the tensor
/// data instead of building the whole file in memory.
void save_safetensors(const std::filesystem::path& path,
                      const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace llmfs
