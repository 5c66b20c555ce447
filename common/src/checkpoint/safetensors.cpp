// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the
// data buffer, which the entries must cover exactly, with no holes and no overlaps. The reader
// checks all of it and names the file and tensor in one-line errors; the writer lays files out as
// the reference Python library does, so both produce the same bytes.
#include "llmfs/checkpoint/safetensors.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "llmfs/checkpoint/mapped_tensor.h"
#include "llmfs/core/atomic_writer.h"
#include "llmfs/core/error.h"
#include "llmfs/core/mapped_file.h"
#include "llmfs/core/utf8.h"

namespace llmfs {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; this reader copies bytes as they are");

// The reference implementation refuses headers above 100 MB; so do we (a corrupt length prefix
// would otherwise make us read gigabytes as JSON).
constexpr uint64_t kMaxHeaderSize = 100'000'000;

struct DtypeInfo {
  const char* name;
  torch::Dtype dtype;
  int rank;  // the reference library's dtype order; larger ranks are written first
};

// Ranks follow the order of the reference library's Dtype enum, measured with safetensors 0.8
// (tests/reference/fixtures_weights.py checks our bytes against it).
const std::vector<DtypeInfo>& dtype_table() {
  static const std::vector<DtypeInfo> table = {
      {"BOOL", torch::kBool, 0},
      {"U8", torch::kUInt8, 1},
      {"I8", torch::kInt8, 2},
      {"F8_E5M2", torch::kFloat8_e5m2, 3},
      {"F8_E4M3", torch::kFloat8_e4m3fn, 4},
      {"F8_E8M0", torch::kFloat8_e8m0fnu, 5},
      {"F8_E4M3FNUZ", torch::kFloat8_e4m3fnuz, 6},
      {"F8_E5M2FNUZ", torch::kFloat8_e5m2fnuz, 7},
      {"I16", torch::kInt16, 8},
      {"U16", torch::kUInt16, 9},
      {"F16", torch::kFloat16, 10},
      {"BF16", torch::kBFloat16, 11},
      {"I32", torch::kInt32, 12},
      {"U32", torch::kUInt32, 13},
      {"F32", torch::kFloat32, 14},
      {"C64", torch::kComplexFloat, 15},
      {"F64", torch::kFloat64, 16},
      {"I64", torch::kInt64, 17},
      {"U64", torch::kUInt64, 18},
  };
  return table;
}

const DtypeInfo* find_dtype(std::string_view name) {
  for (const auto& d : dtype_table()) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const DtypeInfo& dtype_info(torch::Dtype dtype, std::string_view tensor_name) {
  for (const auto& d : dtype_table()) {
    if (d.dtype == dtype) return d;
  }
  fail("tensor '{}': dtype {} cannot be stored in safetensors", tensor_name, c10::toString(dtype));
}

std::string supported_dtypes() {
  std::string out;
  for (const auto& d : dtype_table()) {
    if (!out.empty()) out += ", ";
    out += d.name;
  }
  return out;
}

uint64_t read_u64_le(const unsigned char* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, 8);
  return v;
}

// The error prefix of nlohmann's messages ("[json.exception.parse_error.101] ") says nothing to
// a user; drop it.
std::string json_message(const std::exception& e) {
  std::string m = e.what();
  if (m.rfind("[json.exception.", 0) == 0) {
    const auto close = m.find("] ");
    if (close != std::string::npos) m = m.substr(close + 2);
  }
  return m;
}

// Parses the JSON text, rejecting a name that appears twice in one object (nlohmann keeps the
// last silently; the format forbids duplicates).
nlohmann::json parse_json_strict(std::string_view text, const std::string& file) {
  std::vector<std::set<std::string>> keys;
  const nlohmann::json::parser_callback_t cb = [&](int, nlohmann::json::parse_event_t event,
                                                   nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      keys.emplace_back();
    } else if (event == E::object_end) {
      keys.pop_back();
    } else if (event == E::key) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!keys.back().insert(key).second) {
        fail("{}: malformed safetensors header: name '{}' appears twice", file, key);
      }
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), cb);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed safetensors header JSON: {}", file, json_message(e));
  }
}

// shape -> element count, refusing overflow.
uint64_t checked_numel(const std::vector<int64_t>& shape, const std::string& where) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    const auto u = static_cast<uint64_t>(d);
    if (u != 0 && n > std::numeric_limits<uint64_t>::max() / u) fail("{}: shape overflows", where);
    n *= u;
  }
  return n;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

SafetensorsEntry parse_entry(const std::string& file, const std::string& name,
                             const nlohmann::json& value, uint64_t buffer_size) {
  const std::string where = fmt::format("{}: tensor '{}'", file, name);
  if (!value.is_object()) fail("{}: header entry is not an object", where);
  for (const auto& [key, v] : value.items()) {
    (void)v;
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      fail("{}: unknown header field '{}' (expected dtype, shape, data_offsets)", where, key);
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(key)) fail("{}: header entry has no '{}'", where, key);
  }
  SafetensorsEntry e;
  e.name = name;
  const auto& dtype = value.at("dtype");
  if (!dtype.is_string()) fail("{}: dtype is not a string", where);
  e.dtype_name = dtype.get<std::string>();
  const DtypeInfo* info = find_dtype(e.dtype_name);
  if (info == nullptr) {
    fail("{}: unknown dtype '{}' (supported: {})", where, e.dtype_name, supported_dtypes());
  }
  e.dtype = info->dtype;

  const auto& shape = value.at("shape");
  if (!shape.is_array()) fail("{}: shape is not a list", where);
  for (const auto& d : shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t{1} << 62) {
      fail("{}: shape {} must hold non-negative integers", where, shape.dump());
    }
    e.shape.push_back(d.get<int64_t>());
  }
  const auto& offsets = value.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    fail("{}: data_offsets {} must be two non-negative integers [begin, end]", where,
         offsets.dump());
  }
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.begin > e.end)
    fail("{}: data_offsets [{}, {}] end before they begin", where, e.begin, e.end);
  if (e.end > buffer_size) {
    fail("{}: data_offsets [{}, {}] run past the end of the data buffer ({} bytes)", where, e.begin,
         e.end, buffer_size);
  }
  const uint64_t numel = checked_numel(e.shape, where);
  const auto elsize = static_cast<uint64_t>(c10::elementSize(e.dtype));
  if (numel > std::numeric_limits<uint64_t>::max() / elsize || numel * elsize != e.end - e.begin) {
    fail("{}: shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {}", where,
         shape_text(e.shape), e.dtype_name, numel * elsize, e.begin, e.end, e.end - e.begin);
  }
  return e;
}

// Validates a header's JSON against a data buffer of `buffer_size` bytes.
SafetensorsHeader parse_header(const std::string& file, std::string_view json, uint64_t data_start,
                               uint64_t buffer_size) {
  const auto first = json.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || json[first] != '{') {
    fail("{}: malformed safetensors header: the JSON is not an object", file);
  }
  const nlohmann::json root = parse_json_strict(json, file);
  if (!root.is_object()) fail("{}: malformed safetensors header: the JSON is not an object", file);

  SafetensorsHeader header;
  header.data_start = data_start;
  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail("{}: __metadata__ is not an object of strings", file);
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string()) {
          fail("{}: __metadata__ value for '{}' is not a string ({})", file, key, v.dump());
        }
        header.metadata.emplace(key, v.get<std::string>());
      }
      continue;
    }
    header.entries.push_back(parse_entry(file, name, value, buffer_size));
  }

  // The entries must tile the buffer: sorted by offset, each starts where the previous ended.
  auto& entries = header.entries;
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t covered = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const auto& e : entries) {
    if (e.begin < covered) {
      fail("{}: tensor '{}': data_offsets [{}, {}] overlap tensor '{}' [{}, {}]", file, e.name,
           e.begin, e.end, previous->name, previous->begin, previous->end);
    }
    if (e.begin > covered) {
      fail(
          "{}: tensor '{}': data_offsets [{}, {}] leave bytes {}..{} of the data buffer unused "
          "(the format allows no holes)",
          file, e.name, e.begin, e.end, covered, e.begin);
    }
    covered = e.end;
    previous = &e;
  }
  if (covered != buffer_size) {
    fail("{}: {} trailing bytes after the last tensor (data buffer {} bytes, tensors cover {})",
         file, buffer_size - covered, buffer_size, covered);
  }
  return header;
}

// Checks the length prefix against the file size; returns N.
uint64_t header_length(const std::string& file, const unsigned char* prefix, uint64_t file_size) {
  if (file_size < 8) {
    fail(
        "{}: file too short for safetensors ({} bytes; the format starts with an 8-byte header "
        "length)",
        file, file_size);
  }
  const uint64_t n = read_u64_le(prefix);
  if (n > kMaxHeaderSize) {
    fail(
        "{}: safetensors header length {} exceeds the {}-byte limit (corrupt or not a "
        "safetensors file)",
        file, n, kMaxHeaderSize);
  }
  if (n > file_size - 8) {
    fail("{}: safetensors header length {} runs past the end of the file ({} bytes; truncated?)",
         file, n, file_size);
  }
  return n;
}

// --- Writing ---

// JSON string as serde_json writes it: quotes, backslash and control characters escaped, the
// rest (including non-ASCII UTF-8) as is.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

struct PreparedTensor {
  std::string name;
  const DtypeInfo* info;
  torch::Tensor data;  // CPU, contiguous
  uint64_t nbytes;
};

// The header bytes (length prefix included) and the tensors in file order.
std::pair<std::string, std::vector<PreparedTensor>> prepare(
    const std::map<std::string, torch::Tensor>& tensors,
    const std::map<std::string, std::string>& metadata) {
  std::vector<PreparedTensor> order;
  for (const auto& [name, t] : tensors) {
    require_valid_utf8(name, "safetensors tensor name");
    if (name == "__metadata__") fail("'__metadata__' cannot be a tensor name in safetensors");
    if (!t.defined()) fail("tensor '{}' is undefined", name);
    const DtypeInfo& info = dtype_info(t.scalar_type(), name);
    auto data = t.detach().to(torch::kCPU).contiguous();
    const auto nbytes = static_cast<uint64_t>(data.numel()) * data.element_size();
    order.push_back({name, &info, std::move(data), nbytes});
  }
  // Largest dtype first, then by name: the reference library's order, which keeps every tensor
  // aligned to its element size.
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    if (a.info->rank != b.info->rank) return a.info->rank > b.info->rank;
    return a.name < b.name;
  });

  std::string json = "{";
  if (!metadata.empty()) {
    json += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      require_valid_utf8(key, "safetensors metadata key");
      require_valid_utf8(value, fmt::format("safetensors metadata value of '{}'", key));
      if (!first) json += ',';
      first = false;
      append_json_string(json, key);
      json += ':';
      append_json_string(json, value);
    }
    json += "}";
  }
  uint64_t offset = 0;
  for (const auto& t : order) {
    if (json.size() > 1) json += ',';
    append_json_string(json, t.name);
    json += fmt::format(R"(:{{"dtype":"{}","shape":[{}],"data_offsets":[{},{}]}})", t.info->name,
                        fmt::join(t.data.sizes(), ","), offset, offset + t.nbytes);
    offset += t.nbytes;
  }
  json += '}';
  json.append((8 - json.size() % 8) % 8, ' ');

  std::string header(8, '\0');
  const uint64_t n = json.size();
  std::memcpy(header.data(), &n, 8);
  header += json;
  return {std::move(header), std::move(order)};
}

}  // namespace

const std::vector<std::string>& safetensors_dtype_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& d : dtype_table()) out.emplace_back(d.name);
    return out;
  }();
  return names;
}

SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail("{}: is a folder, expected a file", file);
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) fail("{}: cannot open ({})", file, ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", file);
  unsigned char prefix[8] = {};
  in.read(reinterpret_cast<char*>(prefix), std::min<uint64_t>(size, 8));
  const uint64_t n = header_length(file, prefix, size);
  std::string json(n, '\0');
  in.read(json.data(), static_cast<std::streamsize>(n));
  if (!in) fail("{}: read error in the safetensors header", file);
  return parse_header(file, json, 8 + n, size - 8 - n);
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path)
    : path_(path), file_(std::make_shared<MappedFile>(path)) {
  const std::string file = path.string();
  const uint64_t n = header_length(file, file_->data(), file_->size());
  header_ = parse_header(file, file_->bytes().substr(8, n), 8 + n, file_->size() - 8 - n);
  for (size_t i = 0; i < header_.entries.size(); ++i) index_.emplace(header_.entries[i].name, i);
}

SafetensorsFile::~SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;

bool SafetensorsFile::contains(std::string_view name) const { return index_.count(name) > 0; }

const SafetensorsEntry& SafetensorsFile::entry(std::string_view name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) fail("{}: no tensor named '{}'", path_.string(), name);
  return header_.entries[it->second];
}

torch::Tensor SafetensorsFile::tensor(std::string_view name) const {
  const SafetensorsEntry& e = entry(name);
  return mapped_tensor(file_, header_.data_start + e.begin, e.shape, e.dtype);
}

std::map<std::string, torch::Tensor> load_safetensors(const std::filesystem::path& path) {
  const SafetensorsFile file(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : file.header().entries) out.emplace(e.name, file.tensor(e.name));
  return out;
}

std::string serialize_safetensors(const std::map<std::string, torch::Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  auto [out, order] = prepare(tensors, metadata);
  for (const auto& t : order) {
    out.append(static_cast<const char*>(t.data.data_ptr()), t.nbytes);
  }
  return out;
}

void save_safetensors(const std::filesystem::path& path,
                      const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const auto [header, order] = prepare(tensors, metadata);
  AtomicFileWriter out(path);
  out.write(header);
  for (const auto& t : order) out.write(t.data.data_ptr(), t.nbytes);
  out.commit();
  spdlog::debug("wrote {} ({} tensors, {} bytes)", path.string(), order.size(), out.position());
}

}  // namespace llmfs
