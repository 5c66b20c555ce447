// PyTorch checkpoints (torch.save's zip format): a restricted pickle machine that reads state
// dicts without executing anything, and a writer that produces what torch.save would.
//
// What torch 2.x writes (found with pickletools on real files): protocol 2, the dict as
// `collections.OrderedDict()` (REDUCE on an empty tuple, then SETITEMS, then BUILD with its
// `_metadata`), each tensor as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
// requires_grad, OrderedDict())` where `storage` is a persistent id
// ('storage', torch.FloatStorage, key, location, numel); dtypes without a typed storage class
// (uint16, float8, ...) use `_rebuild_tensor_v3` with torch.storage.UntypedStorage (numel in
// bytes) and a dtype global; nn.Parameters go through `_rebuild_parameter`. Protocol 4/5 pickles
// (pickle_protocol=4) add FRAME, MEMOIZE, SHORT_BINUNICODE and STACK_GLOBAL.
#include "llmfs/checkpoint/pth.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <unordered_map>

#include "llmfs/checkpoint/mapped_tensor.h"
#include "llmfs/core/error.h"
#include "llmfs/core/utf8.h"
#include "llmfs/core/zip_archive.h"

namespace llmfs {

// --- PickleValue ---

PickleValue PickleValue::boolean(bool v) {
  PickleValue p;
  p.kind_ = Kind::Bool;
  p.bool_ = v;
  return p;
}
PickleValue PickleValue::integer(int64_t v) {
  PickleValue p;
  p.kind_ = Kind::Int;
  p.int_ = v;
  return p;
}
PickleValue PickleValue::floating(double v) {
  PickleValue p;
  p.kind_ = Kind::Float;
  p.float_ = v;
  return p;
}
PickleValue PickleValue::string(std::string v) {
  PickleValue p;
  p.kind_ = Kind::String;
  p.string_ = std::move(v);
  return p;
}
PickleValue PickleValue::bytes(std::string v) {
  PickleValue p;
  p.kind_ = Kind::Bytes;
  p.string_ = std::move(v);
  return p;
}
PickleValue PickleValue::tuple(Items items) {
  PickleValue p;
  p.kind_ = Kind::Tuple;
  p.items_ = std::make_shared<const Items>(std::move(items));
  return p;
}
PickleValue PickleValue::list(Items items) {
  PickleValue p;
  p.kind_ = Kind::List;
  p.items_ = std::make_shared<const Items>(std::move(items));
  return p;
}
PickleValue PickleValue::dict(Entries entries) {
  PickleValue p;
  p.kind_ = Kind::Dict;
  p.entries_ = std::make_shared<const Entries>(std::move(entries));
  return p;
}
PickleValue PickleValue::tensor(std::shared_ptr<const PickleTensor> t) {
  PickleValue p;
  p.kind_ = Kind::Tensor;
  p.tensor_ = std::move(t);
  return p;
}

std::string PickleValue::type_name() const {
  switch (kind_) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::Bytes:
      return "bytes";
    case Kind::Tuple:
      return "tuple";
    case Kind::List:
      return "list";
    case Kind::Dict:
      return "dict";
    case Kind::Tensor:
      return "tensor";
  }
  return "?";
}

namespace {
[[noreturn]] void wrong_kind(const PickleValue& v, std::string_view expected) {
  fail("expected {} in the checkpoint, got {}", expected, v.type_name());
}
}  // namespace

bool PickleValue::as_bool() const {
  if (kind_ != Kind::Bool) wrong_kind(*this, "a bool");
  return bool_;
}
int64_t PickleValue::as_int() const {
  if (kind_ != Kind::Int) wrong_kind(*this, "an int");
  return int_;
}
double PickleValue::as_double() const {
  if (kind_ == Kind::Int) return static_cast<double>(int_);
  if (kind_ != Kind::Float) wrong_kind(*this, "a float");
  return float_;
}
const std::string& PickleValue::as_string() const {
  if (kind_ != Kind::String && kind_ != Kind::Bytes) wrong_kind(*this, "a str");
  return string_;
}
const PickleValue::Items& PickleValue::items() const {
  if (kind_ != Kind::Tuple && kind_ != Kind::List) wrong_kind(*this, "a list or tuple");
  return *items_;
}
const PickleValue::Entries& PickleValue::entries() const {
  if (kind_ != Kind::Dict) wrong_kind(*this, "a dict");
  return *entries_;
}
const PickleTensor& PickleValue::as_tensor() const {
  if (kind_ != Kind::Tensor) wrong_kind(*this, "a tensor");
  return *tensor_;
}
const PickleValue* PickleValue::find(std::string_view key) const {
  for (const auto& [k, v] : entries()) {
    if (k.kind() == Kind::String && k.as_string() == key) return &v;
  }
  return nullptr;
}

namespace {

static_assert(std::endian::native == std::endian::little,
              "checkpoint data is little-endian; this reader copies bytes as they are");

// --- dtypes ---

struct StorageType {
  const char* name;  // torch.<name>
  torch::Dtype dtype;
};

// The typed storage classes torch.save names in persistent ids.
const std::vector<StorageType>& storage_types() {
  static const std::vector<StorageType> table = {
      {"FloatStorage", torch::kFloat32},
      {"DoubleStorage", torch::kFloat64},
      {"HalfStorage", torch::kFloat16},
      {"BFloat16Storage", torch::kBFloat16},
      {"LongStorage", torch::kInt64},
      {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16},
      {"CharStorage", torch::kInt8},
      {"ByteStorage", torch::kUInt8},
      {"BoolStorage", torch::kBool},
      {"ComplexFloatStorage", torch::kComplexFloat},
      {"ComplexDoubleStorage", torch::kComplexDouble},
  };
  return table;
}

struct DtypeName {
  const char* name;  // torch.<name>, as a dtype pickles
  torch::Dtype dtype;
};

const std::vector<DtypeName>& dtype_names() {
  static const std::vector<DtypeName> table = {
      {"float32", torch::kFloat32},
      {"float64", torch::kFloat64},
      {"float16", torch::kFloat16},
      {"bfloat16", torch::kBFloat16},
      {"int64", torch::kInt64},
      {"int32", torch::kInt32},
      {"int16", torch::kInt16},
      {"int8", torch::kInt8},
      {"uint8", torch::kUInt8},
      {"bool", torch::kBool},
      {"uint16", torch::kUInt16},
      {"uint32", torch::kUInt32},
      {"uint64", torch::kUInt64},
      {"complex64", torch::kComplexFloat},
      {"complex128", torch::kComplexDouble},
      {"float8_e4m3fn", torch::kFloat8_e4m3fn},
      {"float8_e5m2", torch::kFloat8_e5m2},
      {"float8_e4m3fnuz", torch::kFloat8_e4m3fnuz},
      {"float8_e5m2fnuz", torch::kFloat8_e5m2fnuz},
      {"float8_e8m0fnu", torch::kFloat8_e8m0fnu},
  };
  return table;
}

const StorageType* typed_storage_for(torch::Dtype dtype) {
  for (const auto& s : storage_types()) {
    if (s.dtype == dtype) return &s;
  }
  return nullptr;
}

const char* dtype_name(torch::Dtype dtype) {
  for (const auto& d : dtype_names()) {
    if (d.dtype == dtype) return d.name;
  }
  return nullptr;
}

// --- The pickle machine ---

// Objects on the machine's stack and in its memo have reference semantics (a dict is memoized
// before SETITEMS fills it), so they live behind shared pointers; the result is converted to
// value-semantics PickleValues at the end.
struct Obj;
using ObjPtr = std::shared_ptr<Obj>;

enum class ObjKind {
  None,
  Bool,
  Int,
  Float,
  String,
  Bytes,
  Tuple,
  List,
  Dict,
  Tensor,
  Global,   // a class or function named by GLOBAL / STACK_GLOBAL (from the allow-list)
  Storage,  // a persistent id: a storage in the archive
  Dtype,    // torch.<dtype>
};

struct Obj {
  ObjKind kind = ObjKind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0.0;
  std::string s;  // String, Bytes, Global ("module.name"), Storage key
  std::vector<ObjPtr> items;
  std::vector<std::pair<ObjPtr, ObjPtr>> entries;
  std::unordered_map<std::string, size_t> index;  // Dict: canonical key -> position
  torch::Dtype dtype = torch::kFloat32;           // Storage (typed), Dtype
  bool typed = true;                              // Storage: typed class or UntypedStorage
  uint64_t nbytes = 0;                            // Storage
  std::shared_ptr<PickleTensor> tensor;           // Tensor
};

ObjPtr make(ObjKind kind) {
  auto o = std::make_shared<Obj>();
  o->kind = kind;
  return o;
}

const char* kind_name(ObjKind k) {
  switch (k) {
    case ObjKind::None:
      return "None";
    case ObjKind::Bool:
      return "bool";
    case ObjKind::Int:
      return "int";
    case ObjKind::Float:
      return "float";
    case ObjKind::String:
      return "str";
    case ObjKind::Bytes:
      return "bytes";
    case ObjKind::Tuple:
      return "tuple";
    case ObjKind::List:
      return "list";
    case ObjKind::Dict:
      return "dict";
    case ObjKind::Tensor:
      return "tensor";
    case ObjKind::Global:
      return "global";
    case ObjKind::Storage:
      return "storage";
    case ObjKind::Dtype:
      return "dtype";
  }
  return "?";
}

// The globals a checkpoint of tensors may name. Everything else is refused when it is named,
// before anything could call it.
const std::set<std::string, std::less<>>& allowed_functions() {
  static const std::set<std::string, std::less<>> names = {
      "collections.OrderedDict",
      "torch._utils._rebuild_tensor_v2",
      "torch._utils._rebuild_tensor_v3",
      "torch._utils._rebuild_parameter",
      "torch._utils._rebuild_parameter_with_state",
  };
  return names;
}

constexpr size_t kMaxDepth = 1000;              // nesting of containers in the result
constexpr size_t kMaxResultNodes = 50'000'000;  // guards against memo-sharing blowups

class Unpickler {
 public:
  Unpickler(std::string_view data, std::string where,
            std::function<uint64_t(const std::string&)> storage_size)
      : data_(data), where_(std::move(where)), storage_size_(std::move(storage_size)) {}

  PickleValue run();

 private:
  [[noreturn]] void error(std::string_view message) const {
    fail("{}: {} (at byte {})", where_, message, op_pos_);
  }
  template <typename... Args>
  [[noreturn]] void errorf(fmt::format_string<Args...> f, Args&&... args) const {
    error(fmt::format(f, std::forward<Args>(args)...));
  }

  const unsigned char* take(uint64_t n) {
    if (n > data_.size() - pos_) error("pickle ends in the middle of an opcode's argument");
    const auto* p = reinterpret_cast<const unsigned char*>(data_.data()) + pos_;
    pos_ += n;
    return p;
  }
  template <typename T>
  T take_le() {
    T v{};
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  std::string take_line() {
    const auto end = data_.find('\n', pos_);
    if (end == std::string_view::npos) error("pickle ends in the middle of a GLOBAL name");
    std::string line(data_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return line;
  }
  std::string take_string(uint64_t n, bool utf8) {
    const auto* p = take(n);
    std::string s(reinterpret_cast<const char*>(p), n);
    if (utf8 && find_invalid_utf8(s) != std::string::npos) error("str is not valid UTF-8");
    return s;
  }

  void push(ObjPtr o) { stack_.push_back(std::move(o)); }
  ObjPtr pop() {
    if (stack_.size() <= mark_floor()) error("pickle stack underflow");
    auto o = std::move(stack_.back());
    stack_.pop_back();
    return o;
  }
  ObjPtr& top() {
    if (stack_.size() <= mark_floor()) error("pickle stack underflow");
    return stack_.back();
  }
  size_t mark_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // The objects pushed since the last MARK, which is removed.
  std::vector<ObjPtr> pop_mark() {
    if (marks_.empty()) error("pickle has no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ObjPtr> out(std::make_move_iterator(stack_.begin() + static_cast<ptrdiff_t>(m)),
                            std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return out;
  }

  void memo_put(uint64_t index) {
    // Picklers number memo entries from 0 up; an index beyond the pickle's length is corrupt
    // (and would make us allocate without bound).
    if (index > data_.size()) errorf("memo index {} out of range", index);
    if (index >= memo_.size()) memo_.resize(index + 1);
    memo_[index] = top();
  }
  void memo_get(uint64_t index) {
    if (index >= memo_.size() || !memo_[index]) errorf("memo index {} was never stored", index);
    push(memo_[index]);
  }

  ObjPtr make_int(int64_t v) {
    auto o = make(ObjKind::Int);
    o->i = v;
    return o;
  }
  ObjPtr make_string(std::string s, ObjKind kind = ObjKind::String) {
    auto o = make(kind);
    o->s = std::move(s);
    return o;
  }
  ObjPtr make_tuple(std::vector<ObjPtr> items) {
    auto o = make(ObjKind::Tuple);
    o->items = std::move(items);
    return o;
  }

  // A dict key's identity as Python compares it, for the kinds that can be keys here.
  std::string canonical_key(const ObjPtr& k, size_t depth = 0) {
    if (depth > 32) error("dict key nested too deeply");
    switch (k->kind) {
      case ObjKind::None:
        return "N";
      case ObjKind::Bool:
        return fmt::format("i{}", k->b ? 1 : 0);  // True == 1 in Python
      case ObjKind::Int:
        return fmt::format("i{}", k->i);
      case ObjKind::Float:
        if (k->f == std::floor(k->f) && std::abs(k->f) < 9e15) {
          return fmt::format("i{}", static_cast<int64_t>(k->f));  // 1.0 == 1 in Python
        }
        return fmt::format("f{}", k->f);
      case ObjKind::String:
        return "s" + k->s;
      case ObjKind::Bytes:
        return "b" + k->s;
      case ObjKind::Tuple: {
        std::string out = "(";
        for (const auto& item : k->items) {
          const std::string part = canonical_key(item, depth + 1);
          out += fmt::format("{}:{}", part.size(), part);
        }
        return out + ")";
      }
      default:
        errorf("a {} cannot be a dict key", kind_name(k->kind));
    }
  }
  void set_item(Obj& dict, ObjPtr key, ObjPtr value) {
    if (dict.kind != ObjKind::Dict)
      errorf("SETITEM on a {}, expected a dict", kind_name(dict.kind));
    const std::string id = canonical_key(key);
    const auto [it, inserted] = dict.index.emplace(id, dict.entries.size());
    if (inserted) {
      dict.entries.emplace_back(std::move(key), std::move(value));
    } else {
      dict.entries[it->second].second = std::move(value);  // Python keeps the first key, last value
    }
  }

  ObjPtr resolve_global(const std::string& module, const std::string& name);
  ObjPtr persistent_load(const ObjPtr& pid);
  ObjPtr call(const ObjPtr& callable, const ObjPtr& args);
  ObjPtr rebuild_tensor(const std::vector<ObjPtr>& a, const ObjPtr& storage, torch::Dtype dtype);
  std::vector<int64_t> int_tuple(const ObjPtr& o, std::string_view what);
  PickleValue convert(const ObjPtr& o, size_t depth);

  std::string_view data_;
  std::string where_;
  std::function<uint64_t(const std::string&)> storage_size_;
  uint64_t pos_ = 0;
  uint64_t op_pos_ = 0;
  std::vector<ObjPtr> stack_;
  std::vector<size_t> marks_;
  std::vector<ObjPtr> memo_;
  std::map<std::string, ObjPtr> storages_;
  size_t nodes_ = 0;
};

ObjPtr Unpickler::resolve_global(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  auto g = make(ObjKind::Global);
  g->s = full;
  if (allowed_functions().count(full) > 0) return g;
  if (module == "torch" || module == "torch.storage") {
    if (full == "torch.storage.UntypedStorage") {
      g->typed = false;
      g->dtype = torch::kUInt8;
      return g;
    }
    if (module == "torch") {
      for (const auto& s : storage_types()) {
        if (name == s.name) {
          g->dtype = s.dtype;
          return g;
        }
      }
      for (const auto& d : dtype_names()) {
        if (name == d.name) {
          auto dt = make(ObjKind::Dtype);
          dt->s = full;
          dt->dtype = d.dtype;
          return dt;
        }
      }
    }
  }
  errorf(
      "pickle global '{}' is not allowed (a checkpoint may hold only tensors, containers and "
      "numbers; this reader never runs code from a file)",
      full);
}

ObjPtr Unpickler::persistent_load(const ObjPtr& pid) {
  // ('storage', storage_type, key, location, numel)
  if (pid->kind != ObjKind::Tuple || pid->items.size() != 5 ||
      pid->items[0]->kind != ObjKind::String || pid->items[0]->s != "storage") {
    error("persistent id is not a ('storage', type, key, location, size) tuple");
  }
  const auto& type = pid->items[1];
  const auto& key = pid->items[2];
  const auto& location = pid->items[3];
  const auto& numel = pid->items[4];
  if (type->kind != ObjKind::Global || allowed_functions().count(type->s) > 0) {
    error("persistent id names no storage type");
  }
  if (key->kind != ObjKind::String || location->kind != ObjKind::String ||
      numel->kind != ObjKind::Int || numel->i < 0) {
    error("persistent id has a malformed key, location or size");
  }
  const uint64_t elsize = type->typed ? c10::elementSize(type->dtype) : 1;
  const auto count = static_cast<uint64_t>(numel->i);
  if (count > std::numeric_limits<uint64_t>::max() / elsize) error("storage size overflows");
  const uint64_t nbytes = count * elsize;

  const auto it = storages_.find(key->s);
  if (it != storages_.end()) {
    const Obj& seen = *it->second;
    if (seen.typed != type->typed || seen.dtype != type->dtype || seen.nbytes != nbytes) {
      errorf("storage '{}' is described twice with different types or sizes", key->s);
    }
    return it->second;
  }
  const uint64_t actual = storage_size_(key->s);  // throws when the entry is missing
  if (actual != nbytes) {
    errorf("storage '{}' holds {} bytes but the pickle says {} ({} x {})", key->s, actual, nbytes,
           count, type->s);
  }
  auto storage = make(ObjKind::Storage);
  storage->s = key->s;
  storage->typed = type->typed;
  storage->dtype = type->dtype;
  storage->nbytes = nbytes;
  storages_.emplace(key->s, storage);
  return storage;
}

std::vector<int64_t> Unpickler::int_tuple(const ObjPtr& o, std::string_view what) {
  if (o->kind != ObjKind::Tuple && o->kind != ObjKind::List)
    errorf("tensor {} is not a tuple", what);
  std::vector<int64_t> out;
  for (const auto& item : o->items) {
    if (item->kind != ObjKind::Int || item->i < 0) {
      errorf("tensor {} must hold non-negative ints", what);
    }
    out.push_back(item->i);
  }
  return out;
}

ObjPtr Unpickler::rebuild_tensor(const std::vector<ObjPtr>& a, const ObjPtr& storage,
                                 torch::Dtype dtype) {
  if (storage->kind != ObjKind::Storage) error("tensor storage is not a persistent storage id");
  if (a[1]->kind != ObjKind::Int || a[1]->i < 0) error("tensor storage offset is not an int >= 0");
  auto t = std::make_shared<PickleTensor>();
  t->storage_key = storage->s;
  t->dtype = dtype;
  t->storage_nbytes = storage->nbytes;
  t->storage_offset = a[1]->i;
  t->sizes = int_tuple(a[2], "size");
  t->strides = int_tuple(a[3], "stride");
  if (t->sizes.size() != t->strides.size()) error("tensor size and stride differ in length");
  if (a[4]->kind != ObjKind::Bool) error("tensor requires_grad is not a bool");
  t->requires_grad = a[4]->b;
  if (a[5]->kind != ObjKind::Dict || !a[5]->entries.empty()) {
    error("tensor has backward hooks, which a checkpoint cannot restore");
  }
  // The view must stay inside its storage: offset + sum((size - 1) * stride) < elements.
  const uint64_t elsize = c10::elementSize(dtype);
  const uint64_t elements = storage->nbytes / elsize;
  bool empty = false;
  uint64_t last = static_cast<uint64_t>(t->storage_offset);
  for (size_t d = 0; d < t->sizes.size(); ++d) {
    if (t->sizes[d] == 0) empty = true;
    const auto span = static_cast<uint64_t>(t->sizes[d] == 0 ? 0 : t->sizes[d] - 1);
    const auto stride = static_cast<uint64_t>(t->strides[d]);
    if (stride != 0 && span > (std::numeric_limits<uint64_t>::max() - last) / stride) {
      error("tensor view overflows");
    }
    last += span * stride;
  }
  if (!empty && last >= elements) {
    errorf(
        "tensor view (offset {}, size [{}], stride [{}]) runs past its storage '{}' of {} "
        "elements",
        t->storage_offset, fmt::join(t->sizes, ", "), fmt::join(t->strides, ", "), t->storage_key,
        elements);
  }
  auto o = make(ObjKind::Tensor);
  o->tensor = std::move(t);
  return o;
}

ObjPtr Unpickler::call(const ObjPtr& callable, const ObjPtr& args_obj) {
  if (callable->kind != ObjKind::Global || allowed_functions().count(callable->s) == 0) {
    errorf("REDUCE calls a {} ('{}'), which a checkpoint never needs", kind_name(callable->kind),
           callable->s);
  }
  if (args_obj->kind != ObjKind::Tuple) error("REDUCE arguments are not a tuple");
  const auto& a = args_obj->items;
  const std::string& f = callable->s;
  if (f == "collections.OrderedDict") {
    if (!a.empty()) error("OrderedDict(...) with arguments is not supported");
    return make(ObjKind::Dict);
  }
  if (f == "torch._utils._rebuild_tensor_v2") {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (a.size() != 6 && a.size() != 7) error("_rebuild_tensor_v2 expects 6 or 7 arguments");
    if (a.size() == 7 && a[6]->kind != ObjKind::None &&
        !(a[6]->kind == ObjKind::Dict && a[6]->entries.empty())) {
      error("_rebuild_tensor_v2 with tensor metadata is not supported");
    }
    if (a[0]->kind != ObjKind::Storage || !a[0]->typed) {
      error("_rebuild_tensor_v2 needs a typed storage");
    }
    return rebuild_tensor(a, a[0], a[0]->dtype);
  }
  if (f == "torch._utils._rebuild_tensor_v3") {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
    if (a.size() != 7 && a.size() != 8) error("_rebuild_tensor_v3 expects 7 or 8 arguments");
    if (a[6]->kind != ObjKind::Dtype) error("_rebuild_tensor_v3 argument 7 is not a dtype");
    if (a.size() == 8 && a[7]->kind != ObjKind::None &&
        !(a[7]->kind == ObjKind::Dict && a[7]->entries.empty())) {
      error("_rebuild_tensor_v3 with tensor metadata is not supported");
    }
    if (a[0]->kind != ObjKind::Storage) error("_rebuild_tensor_v3 needs a storage");
    if (a[0]->typed && a[0]->dtype != a[6]->dtype) {
      error("_rebuild_tensor_v3 dtype differs from its typed storage");
    }
    return rebuild_tensor(a, a[0], a[6]->dtype);
  }
  // _rebuild_parameter(data, requires_grad, backward_hooks[, state])
  const bool with_state = f == "torch._utils._rebuild_parameter_with_state";
  if (a.size() != (with_state ? 4u : 3u)) errorf("{} expects {} arguments", f, with_state ? 4 : 3);
  if (a[0]->kind != ObjKind::Tensor || a[1]->kind != ObjKind::Bool) {
    errorf("{} expects a tensor and a bool", f);
  }
  if (a[2]->kind != ObjKind::Dict || !a[2]->entries.empty()) {
    error("parameter has backward hooks, which a checkpoint cannot restore");
  }
  if (with_state && a[3]->kind != ObjKind::None &&
      !(a[3]->kind == ObjKind::Dict && a[3]->entries.empty())) {
    error("parameter with extra Python state is not supported");
  }
  auto o = make(ObjKind::Tensor);
  o->tensor = std::make_shared<PickleTensor>(*a[0]->tensor);
  o->tensor->requires_grad = a[1]->b;
  return o;
}

PickleValue Unpickler::convert(const ObjPtr& o, size_t depth) {
  if (depth > kMaxDepth) error("pickle nests containers too deeply (or refers to itself)");
  if (++nodes_ > kMaxResultNodes) error("pickle expands to too many objects");
  switch (o->kind) {
    case ObjKind::None:
      return {};
    case ObjKind::Bool:
      return PickleValue::boolean(o->b);
    case ObjKind::Int:
      return PickleValue::integer(o->i);
    case ObjKind::Float:
      return PickleValue::floating(o->f);
    case ObjKind::String:
      return PickleValue::string(o->s);
    case ObjKind::Bytes:
      return PickleValue::bytes(o->s);
    case ObjKind::Tuple:
    case ObjKind::List: {
      PickleValue::Items items;
      items.reserve(o->items.size());
      for (const auto& item : o->items) items.push_back(convert(item, depth + 1));
      return o->kind == ObjKind::Tuple ? PickleValue::tuple(std::move(items))
                                       : PickleValue::list(std::move(items));
    }
    case ObjKind::Dict: {
      PickleValue::Entries entries;
      entries.reserve(o->entries.size());
      for (const auto& [k, v] : o->entries) {
        entries.emplace_back(convert(k, depth + 1), convert(v, depth + 1));
      }
      return PickleValue::dict(std::move(entries));
    }
    case ObjKind::Tensor:
      return PickleValue::tensor(o->tensor);
    default:
      errorf("pickle result holds a bare {} ('{}')", kind_name(o->kind), o->s);
  }
}

PickleValue Unpickler::run() {
  while (true) {
    op_pos_ = pos_;
    const unsigned char op = *take(1);
    switch (op) {
      case 0x80: {  // PROTO
        const unsigned char proto = *take(1);
        if (proto < 2 || proto > 5) errorf("pickle protocol {} is not supported (2 to 5)", proto);
        break;
      }
      case 0x95:
        take_le<uint64_t>();
        break;     // FRAME: framing is only a read-ahead hint
      case '.': {  // STOP
        if (!marks_.empty() || stack_.size() != 1) error("pickle stops with a malformed stack");
        if (pos_ != data_.size()) errorf("{} bytes after the pickle's STOP", data_.size() - pos_);
        return convert(stack_.back(), 0);
      }
      case '(':
        marks_.push_back(stack_.size());
        break;  // MARK
      case '0':
        pop();
        break;  // POP
      case '1':
        pop_mark();
        break;  // POP_MARK
      case '2':
        push(top());
        break;  // DUP
      case 'N':
        push(make(ObjKind::None));
        break;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        auto o = make(ObjKind::Bool);
        o->b = op == 0x88;
        push(o);
        break;
      }
      case 'K':
        push(make_int(*take(1)));
        break;  // BININT1
      case 'M':
        push(make_int(take_le<uint16_t>()));
        break;  // BININT2
      case 'J':
        push(make_int(take_le<int32_t>()));
        break;      // BININT
      case 0x8a: {  // LONG1
        const unsigned n = *take(1);
        if (n > 8) error("LONG1 integer wider than 64 bits");
        const unsigned char* p = take(n);
        uint64_t v = 0;
        for (unsigned k = 0; k < n; ++k) v |= static_cast<uint64_t>(p[k]) << (8 * k);
        if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
        push(make_int(static_cast<int64_t>(v)));
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        const unsigned char* p = take(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];
        auto o = make(ObjKind::Float);
        o->f = std::bit_cast<double>(bits);
        push(o);
        break;
      }
      case 'X':
        push(make_string(take_string(take_le<uint32_t>(), true)));
        break;  // BINUNICODE
      case 0x8c:
        push(make_string(take_string(*take(1), true)));
        break;  // SHORT_BINUNICODE
      case 0x8d:
        push(make_string(take_string(take_le<uint64_t>(), true)));
        break;  // BINUNICODE8
      case 'B':
        push(make_string(take_string(take_le<uint32_t>(), false), ObjKind::Bytes));
        break;
      case 'C':
        push(make_string(take_string(*take(1), false), ObjKind::Bytes));
        break;
      case 0x8e:
        push(make_string(take_string(take_le<uint64_t>(), false), ObjKind::Bytes));
        break;
      case ')':
        push(make(ObjKind::Tuple));
        break;  // EMPTY_TUPLE
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        const size_t n = op - 0x84u;
        if (stack_.size() < mark_floor() + n) error("pickle stack underflow");
        std::vector<ObjPtr> items(stack_.end() - static_cast<ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        push(make_tuple(std::move(items)));
        break;
      }
      case 't':
        push(make_tuple(pop_mark()));
        break;  // TUPLE
      case ']':
        push(make(ObjKind::List));
        break;     // EMPTY_LIST
      case 'l': {  // LIST
        auto o = make(ObjKind::List);
        o->items = pop_mark();
        push(o);
        break;
      }
      case '}':
        push(make(ObjKind::Dict));
        break;     // EMPTY_DICT
      case 'd': {  // DICT
        auto items = pop_mark();
        if (items.size() % 2 != 0) error("DICT with an odd number of items");
        auto o = make(ObjKind::Dict);
        for (size_t k = 0; k < items.size(); k += 2) set_item(*o, items[k], items[k + 1]);
        push(o);
        break;
      }
      case 'a': {  // APPEND
        auto v = pop();
        auto& list = top();
        if (list->kind != ObjKind::List) errorf("APPEND to a {}", kind_name(list->kind));
        list->items.push_back(std::move(v));
        break;
      }
      case 'e': {  // APPENDS
        auto items = pop_mark();
        auto& list = top();
        if (list->kind != ObjKind::List) errorf("APPENDS to a {}", kind_name(list->kind));
        for (auto& item : items) list->items.push_back(std::move(item));
        break;
      }
      case 's': {  // SETITEM
        auto value = pop();
        auto key = pop();
        set_item(*top(), std::move(key), std::move(value));
        break;
      }
      case 'u': {  // SETITEMS
        auto items = pop_mark();
        if (items.size() % 2 != 0) error("SETITEMS with an odd number of items");
        auto& dict = top();
        for (size_t k = 0; k < items.size(); k += 2) set_item(*dict, items[k], items[k + 1]);
        break;
      }
      case 'q':
        memo_put(*take(1));
        break;  // BINPUT
      case 'r':
        memo_put(take_le<uint32_t>());
        break;  // LONG_BINPUT
      case 0x94:
        memo_put(memo_.size());
        break;  // MEMOIZE
      case 'h':
        memo_get(*take(1));
        break;  // BINGET
      case 'j':
        memo_get(take_le<uint32_t>());
        break;     // LONG_BINGET
      case 'c': {  // GLOBAL "module\nname\n"
        const std::string module = take_line();
        const std::string name = take_line();
        push(resolve_global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop();
        auto module = pop();
        if (module->kind != ObjKind::String || name->kind != ObjKind::String) {
          error("STACK_GLOBAL needs two str");
        }
        push(resolve_global(module->s, name->s));
        break;
      }
      case 'Q': {  // BINPERSID
        auto pid = pop();
        push(persistent_load(pid));
        break;
      }
      case 'R': {  // REDUCE
        auto args = pop();
        auto callable = pop();
        push(call(callable, args));
        break;
      }
      case 'b': {  // BUILD: the state of an OrderedDict (its _metadata attribute) is not needed
        auto state = pop();
        const auto& obj = top();
        if (obj->kind != ObjKind::Dict ||
            (state->kind != ObjKind::Dict && state->kind != ObjKind::None)) {
          errorf("BUILD on a {} is not supported", kind_name(obj->kind));
        }
        break;
      }
      default: {
        static const std::map<unsigned char, const char*> names = {
            {'i', "INST"},        {'o', "OBJ"},          {0x81, "NEWOBJ"},
            {0x92, "NEWOBJ_EX"},  {'P', "PERSID"},       {'I', "INT"},
            {'L', "LONG"},        {'F', "FLOAT"},        {'S', "STRING"},
            {'V', "UNICODE"},     {'T', "BINSTRING"},    {'U', "SHORT_BINSTRING"},
            {'p', "PUT"},         {'g', "GET"},          {0x82, "EXT1"},
            {0x83, "EXT2"},       {0x84, "EXT4"},        {0x8b, "LONG4"},
            {0x8f, "EMPTY_SET"},  {0x90, "ADDITEMS"},    {0x91, "FROZENSET"},
            {0x96, "BYTEARRAY8"}, {0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"}};
        const auto it = names.find(op);
        if (it != names.end()) {
          errorf("pickle opcode {} (0x{:02x}) is not supported in a checkpoint", it->second, op);
        }
        errorf("unknown pickle opcode 0x{:02x}", op);
      }
    }
  }
}

// --- Writing ---

class PickleWriter {
 public:
  PickleWriter() { out_ += "\x80\x02"; }  // protocol 2, as torch.save

  void global(const std::string& module, const std::string& name) {
    const std::string line = module + "\n" + name + "\n";
    const auto it = memo_.find("g" + line);
    if (it != memo_.end()) return get(it->second);
    out_ += 'c';
    out_ += line;
    put("g" + line);
  }
  void string(std::string_view s) {
    std::string key(1, 's');
    key.append(s);
    const auto it = memo_.find(key);
    if (it != memo_.end()) return get(it->second);
    out_ += 'X';
    le<uint32_t>(static_cast<uint32_t>(s.size()));
    out_ += s;
    put(key);
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      out_ += 'K';
      out_ += static_cast<char>(v);
    } else if (v >= 0 && v < 65536) {
      out_ += 'M';
      le<uint16_t>(static_cast<uint16_t>(v));
    } else if (v >= std::numeric_limits<int32_t>::min() &&
               v <= std::numeric_limits<int32_t>::max()) {
      out_ += 'J';
      le<int32_t>(static_cast<int32_t>(v));
    } else {  // LONG1: the shortest little-endian two's complement
      std::string bytes;
      auto u = static_cast<uint64_t>(v);
      for (int k = 0; k < 8; ++k) bytes += static_cast<char>((u >> (8 * k)) & 0xff);
      while (bytes.size() > 1) {
        const auto last = static_cast<unsigned char>(bytes.back());
        const auto prev = static_cast<unsigned char>(bytes[bytes.size() - 2]);
        if ((last == 0x00 && !(prev & 0x80)) || (last == 0xff && (prev & 0x80))) {
          bytes.pop_back();
        } else {
          break;
        }
      }
      out_ += '\x8a';
      out_ += static_cast<char>(bytes.size());
      out_ += bytes;
    }
  }
  void int_tuple(c10::IntArrayRef values) {
    if (values.size() > 3) out_ += '(';
    for (int64_t v : values) integer(v);
    static const char kTuple[] = {')', '\x85', '\x86', '\x87'};
    out_ += values.size() > 3 ? 't' : kTuple[values.size()];
  }
  void op(char c) { out_ += c; }
  std::string take() {
    out_ += '.';
    return std::move(out_);
  }

 private:
  template <typename T>
  void le(T v) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));
    out_.append(bytes, sizeof(T));
  }
  void put(const std::string& key) {
    const auto index = static_cast<uint32_t>(memo_.size());
    memo_.emplace(key, index);
    if (index < 256) {
      out_ += 'q';
      out_ += static_cast<char>(index);
    } else {
      out_ += 'r';
      le<uint32_t>(index);
    }
  }
  void get(uint32_t index) {
    if (index < 256) {
      out_ += 'h';
      out_ += static_cast<char>(index);
    } else {
      out_ += 'j';
      le<uint32_t>(index);
    }
  }

  std::string out_;
  std::map<std::string, uint32_t> memo_;
};

// The archive's folder name: the file's stem (as torch.save uses it), limited to safe characters.
std::string archive_name(const std::filesystem::path& path) {
  std::string name;
  for (const char c : path.stem().string()) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') name += c;
  }
  return name.empty() ? "archive" : name;
}

}  // namespace

// --- PthReader ---

PthReader::PthReader(const std::filesystem::path& path, const PthReadOptions& options)
    : path_(path), verify_crc_(options.verify_crc) {
  const std::string file = path.string();
  {
    // A legacy (PyTorch < 1.6) checkpoint is a bare pickle stream starting with a magic number.
    std::ifstream in(path, std::ios::binary);
    char head[4] = {};
    if (in.read(head, 4) && std::string_view(head, 4) == std::string_view("\x80\x02\x8a\x0a", 4)) {
      fail(
          "{}: legacy torch.save format (PyTorch < 1.6) is not supported; load it in Python and "
          "save it again with torch.save, or convert it to safetensors",
          file);
    }
  }
  zip_ = std::make_unique<ZipReader>(path);
  const ZipEntry* pickle = nullptr;
  for (const auto& e : zip_->entries()) {
    const auto slash = e.name.find('/');
    if (slash != std::string::npos && e.name.substr(slash + 1) == "data.pkl") {
      if (pickle != nullptr) fail("{}: archive holds two data.pkl entries", file);
      pickle = &e;
      prefix_ = e.name.substr(0, slash + 1);
    }
  }
  if (pickle == nullptr) {
    fail(
        "{}: no <archive>/data.pkl entry: not a torch.save checkpoint (a TorchScript archive or "
        "another zip file?)",
        file);
  }
  if (const ZipEntry* order = zip_->find(prefix_ + "byteorder")) {
    const auto value = zip_->data(*order);
    if (value != "little") fail("{}: byteorder '{}' is not supported (little only)", file, value);
  }
  const std::string where = fmt::format("{}: {}", file, pickle->name);
  Unpickler unpickler(zip_->data(*pickle), where, [&](const std::string& key) -> uint64_t {
    const ZipEntry* e = zip_->find(prefix_ + "data/" + key);
    if (e == nullptr) fail("{}: storage '{}' has no entry {}data/{}", where, key, prefix_, key);
    return e->size;
  });
  root_ = unpickler.run();
}

PthReader::~PthReader() = default;
PthReader::PthReader(PthReader&&) noexcept = default;
PthReader& PthReader::operator=(PthReader&&) noexcept = default;

std::vector<std::pair<std::string, const PickleTensor*>> PthReader::tensor_refs(
    std::string_view key) const {
  const std::string file = path_.string();
  const PickleValue* dict = &root_;
  if (!key.empty()) {
    if (root_.kind() != PickleValue::Kind::Dict) {
      fail("{}: the checkpoint is a {}, not a dict with '{}'", file, root_.type_name(), key);
    }
    dict = root_.find(key);
    if (dict == nullptr) fail("{}: the checkpoint has no '{}'", file, key);
  }
  const std::string what = key.empty() ? "the checkpoint" : fmt::format("'{}'", key);
  if (dict->kind() != PickleValue::Kind::Dict) {
    fail("{}: {} is a {}, not a state dict (name -> tensor)", file, what, dict->type_name());
  }
  std::vector<std::pair<std::string, const PickleTensor*>> out;
  for (const auto& [k, v] : dict->entries()) {
    if (k.kind() != PickleValue::Kind::String) {
      fail("{}: {} has a {} key, not a state dict (name -> tensor)", file, what, k.type_name());
    }
    if (v.kind() != PickleValue::Kind::Tensor) {
      fail("{}: {}: the value of '{}' is a {}, not a tensor", file, what, k.as_string(),
           v.type_name());
    }
    out.emplace_back(k.as_string(), &v.as_tensor());
  }
  return out;
}

torch::Tensor PthReader::storage(const PickleTensor& t) const {
  const ZipEntry* e = zip_->find(prefix_ + "data/" + t.storage_key);
  if (e == nullptr) fail("{}: storage '{}' is missing", path_.string(), t.storage_key);
  zip_->data(*e, verify_crc_);  // the CRC check, when asked for
  // An untyped storage may hold a few bytes past the last whole element; they are not needed.
  const auto elements = static_cast<int64_t>(e->size / c10::elementSize(t.dtype));
  return mapped_tensor(zip_->mapped(), e->data_offset, {elements}, t.dtype);
}

torch::Tensor PthReader::tensor(const PickleTensor& t) const {
  auto out = storage(t).as_strided(t.sizes, t.strides, t.storage_offset);
  if (t.requires_grad && out.is_floating_point()) out.set_requires_grad(true);
  return out;
}

std::map<std::string, torch::Tensor> PthReader::state_dict(std::string_view key) const {
  std::map<std::pair<std::string, int>, torch::Tensor> storages;
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, t] : tensor_refs(key)) {
    auto& s = storages[{t->storage_key, static_cast<int>(t->dtype)}];
    if (!s.defined()) s = storage(*t);
    auto view = s.as_strided(t->sizes, t->strides, t->storage_offset);
    out.emplace(name, view);
  }
  return out;
}

std::map<std::string, torch::Tensor> load_pth(const std::filesystem::path& path,
                                              std::string_view key, const PthReadOptions& options) {
  return PthReader(path, options).state_dict(key);
}

// --- save_pth ---

void save_pth(const std::filesystem::path& path,
              const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
              const PthWriteOptions& options) {
  struct Storage {
    std::string key;
    torch::Tensor owner;  // keeps the data alive until it is written
    const void* data;
    uint64_t nbytes;
    torch::Dtype dtype;
  };
  std::vector<Storage> storages;
  std::map<const void*, size_t> by_pointer;

  PickleWriter p;
  if (options.ordered_dict) {
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
  } else {
    p.op('}');
  }
  std::set<std::string> names;
  size_t in_batch = 0;
  for (const auto& [name, tensor] : tensors) {
    if (!names.insert(name).second) fail("save_pth: tensor '{}' given twice", name);
    require_valid_utf8(name, "save_pth: tensor name");
    if (!tensor.defined()) fail("save_pth: tensor '{}' is undefined", name);
    auto t = tensor.detach();
    if (!t.device().is_cpu()) t = t.to(torch::kCPU);
    const torch::Dtype dtype = t.scalar_type();
    const char* dname = dtype_name(dtype);
    if (dname == nullptr)
      fail("save_pth: tensor '{}' has unsupported dtype {}", name, c10::toString(dtype));
    const StorageType* typed = typed_storage_for(dtype);
    const auto elsize = static_cast<uint64_t>(t.element_size());

    // Tensors that share memory share one storage entry, as torch.save writes them. Empty
    // storages and storages reinterpreted with another dtype get an entry of their own.
    const c10::Storage st = t.storage();
    const void* data = st.data();
    uint64_t nbytes = st.nbytes();
    const bool shareable = nbytes > 0 && nbytes % elsize == 0;
    auto found = shareable ? by_pointer.find(data) : by_pointer.end();
    if (found != by_pointer.end() &&
        (storages[found->second].dtype != dtype || storages[found->second].nbytes != nbytes)) {
      found = by_pointer.end();
      t = t.contiguous().clone();
    } else if (!shareable) {
      t = t.contiguous().clone();
    }
    size_t index = 0;
    if (found != by_pointer.end()) {
      index = found->second;
    } else {
      index = storages.size();
      storages.push_back(
          {std::to_string(index), t, t.storage().data(), t.storage().nbytes(), dtype});
      if (shareable && t.storage().data() == data) by_pointer.emplace(data, index);
    }
    const Storage& s = storages[index];

    if (in_batch == 0) p.op('(');
    p.string(name);
    p.global("torch._utils", typed ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3");
    p.op('(');
    p.op('(');
    p.string("storage");
    if (typed) {
      p.global("torch", typed->name);
    } else {
      p.global("torch.storage", "UntypedStorage");
    }
    p.string(s.key);
    p.string("cpu");
    p.integer(static_cast<int64_t>(typed ? s.nbytes / elsize : s.nbytes));
    p.op('t');
    p.op('Q');
    p.integer(t.storage_offset());
    p.int_tuple(t.sizes());
    p.int_tuple(t.strides());
    p.op('\x89');  // requires_grad False: a state dict holds detached tensors
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
    if (!typed) p.global("torch", dname);
    p.op('t');
    p.op('R');
    if (++in_batch == 1000) {  // SETITEMS in batches of 1000, as Python's pickler does
      p.op('u');
      in_batch = 0;
    }
  }
  if (in_batch > 0) p.op('u');
  const std::string pickle = p.take();

  const std::string dir = archive_name(path) + "/";
  ZipWriter zip(path);
  zip.add(dir + "data.pkl", pickle);
  zip.add(dir + ".format_version", "1");
  zip.add(dir + ".storage_alignment", "64");
  zip.add(dir + "byteorder", "little");
  uint32_t checksum = crc32(pickle.data(), pickle.size());
  for (const auto& s : storages) {
    zip.add(dir + "data/" + s.key, s.data, s.nbytes);
    checksum = crc32(&s.nbytes, sizeof(s.nbytes), checksum);
  }
  zip.add(dir + "version", "3\n");
  // torch.save records a 40-digit id; ours is derived from the content, so output is reproducible.
  zip.add(dir + ".data/serialization_id",
          fmt::format("{:020}{:020}", uint64_t{checksum} * 2654435761u,
                      uint64_t{checksum} << 20 | storages.size()));
  zip.finish();
  spdlog::debug("wrote {} ({} tensors, {} storages)", path.string(), tensors.size(),
                storages.size());
}

void save_pth(const std::filesystem::path& path,
              const std::map<std::string, torch::Tensor>& tensors, const PthWriteOptions& options) {
  save_pth(path, std::vector<std::pair<std::string, torch::Tensor>>(tensors.begin(), tensors.end()),
           options);
}

}  // namespace llmfs
