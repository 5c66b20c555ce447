#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmfs {

class ZipReader;

/// A tensor as a PyTorch checkpoint describes it, before its bytes are read: which storage
/// (archive entry `<archive>/data/<storage_key>`), the dtype, and the view into the storage
/// (offset and strides in elements).
struct PickleTensor {
  std::string storage_key;
  torch::Dtype dtype = torch::kFloat32;
  uint64_t storage_nbytes = 0;
  int64_t storage_offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  bool requires_grad = false;
};

/// A value from a checkpoint's pickle, restricted to what state dicts and training checkpoints
/// hold: None, bool, int, float, str, bytes, tuple, list, dict (insertion order kept; plain dict
/// and OrderedDict alike) and tensors.
class PickleValue {
 public:
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Tensor };
  using Items = std::vector<PickleValue>;
  using Entries = std::vector<std::pair<PickleValue, PickleValue>>;

  PickleValue() = default;
  static PickleValue boolean(bool v);
  static PickleValue integer(int64_t v);
  static PickleValue floating(double v);
  static PickleValue string(std::string v);
  static PickleValue bytes(std::string v);
  static PickleValue tuple(Items items);
  static PickleValue list(Items items);
  static PickleValue dict(Entries entries);
  static PickleValue tensor(std::shared_ptr<const PickleTensor> t);

  Kind kind() const { return kind_; }
  /// "None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict", "tensor".
  std::string type_name() const;
  bool is_none() const { return kind_ == Kind::None; }

  // Accessors throw llmfs::Error on the wrong kind ("expected a str, got a list").
  bool as_bool() const;
  int64_t as_int() const;
  double as_double() const;              // int or float
  const std::string& as_string() const;  // str or bytes
  const Items& items() const;            // tuple or list
  const Entries& entries() const;        // dict
  const PickleTensor& as_tensor() const;
  /// The dict entry with this str key, or nullptr (dict only).
  const PickleValue* find(std::string_view key) const;

 private:
  Kind kind_ = Kind::None;
  bool bool_ = false;
  int64_t int_ = 0;
  double float_ = 0.0;
  std::string string_;
  std::shared_ptr<const Items> items_;
  std::shared_ptr<const Entries> entries_;
  std::shared_ptr<const PickleTensor> tensor_;
};

/// Options of PthReader.
struct PthReadOptions {
  /// Check each storage's CRC-32 when it is first used (the pickle's is always checked), which
  /// reads its bytes. PyTorch's own loader skips this check; with PCLMULQDQ it runs at several
  /// GB/s.
  bool verify_crc = true;
};

/// An open PyTorch checkpoint in the zip format torch.save has written since PyTorch 1.6
/// (`torch.save(model.state_dict(), "model.pth")`, the book's checkpoints, HF's
/// pytorch_model.bin). The archive is checked (core/zip_archive.h) and its `data.pkl` is run by a
/// restricted pickle machine that knows only the opcodes and globals such files use
/// (collections.OrderedDict, torch._utils._rebuild_tensor_v2/_v3, _rebuild_parameter, the storage
/// types and dtypes); anything else, such as a pickle that calls os.system, is refused with a
/// one-line llmfs::Error naming the file, the opcode or global, and its byte offset. Nothing in
/// the file is ever executed. Tensor bytes are read (CRC-checked) only when asked for.
///
///   PthReader pth("model.pth");
///   auto state = pth.state_dict();                      // {"tok_emb.weight": ..., ...}
///   auto model = pth.state_dict("model_state_dict");   // the book's model_and_optimizer.pth
class PthReader {
 public:
  explicit PthReader(const std::filesystem::path& path, const PthReadOptions& options = {});
  ~PthReader();
  PthReader(PthReader&&) noexcept;
  PthReader& operator=(PthReader&&) noexcept;

  const std::filesystem::path& path() const { return path_; }
  /// The unpickled object.
  const PickleValue& root() const { return root_; }
  /// The str -> tensor dict at the root (or under `key` of the root dict), as CPU tensors over
  /// the mapped file (no copy; copy-on-write; they keep the mapping alive); tensors that share
  /// a storage in the file share it here too. llmfs::Error naming the file
  /// and key when a value is not a tensor.
  std::map<std::string, torch::Tensor> state_dict(std::string_view key = {}) const;
  /// The names and descriptions of that dict's tensors, without reading tensor data.
  std::vector<std::pair<std::string, const PickleTensor*>> tensor_refs(
      std::string_view key = {}) const;
  /// One tensor (its view into its storage), over the mapped file like state_dict's.
  torch::Tensor tensor(const PickleTensor& t) const;

 private:
  torch::Tensor storage(const PickleTensor& t) const;

  std::filesystem::path path_;
  bool verify_crc_ = true;
  std::unique_ptr<ZipReader> zip_;
  std::string prefix_;  // the archive's top folder, e.g. "model/"
  PickleValue root_;
};

/// Every tensor of a state-dict checkpoint (see PthReader::state_dict).
std::map<std::string, torch::Tensor> load_pth(const std::filesystem::path& path,
                                              std::string_view key = {},
                                              const PthReadOptions& options = {});

/// Options of save_pth.
struct PthWriteOptions {
  /// Pickle the dict as collections.OrderedDict, like torch.save(model.state_dict()); a plain
  /// dict otherwise, which LibTorch's torch::pickle_load can read as well.
  bool ordered_dict = true;
};

/// Writes tensors (in the given order) as torch.save would: a zip archive with `data.pkl`
/// (pickle protocol 2, _rebuild_tensor_v2 with typed storages; _v3 for the newer dtypes),
/// one entry per storage (tensors sharing a storage share it in the file), `version`,
/// `byteorder`. Python reads it with torch.load(path, weights_only=True). Atomic (tmp + rename).
void save_pth(const std::filesystem::path& path,
              const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
              const PthWriteOptions& options = {});
void save_pth(const std::filesystem::path& path,
              const std::map<std::string, torch::Tensor>& tensors,
              const PthWriteOptions& options = {});

}  // namespace llmfs
