// GPT-2 weights in and out of the book's GPTModel (book §5.5, BOOK.md §6.8): the book's own
// state-dict layout and Hugging Face's GPT2LMHeadModel layout, from safetensors files, torch.save
// files or Hugging Face model folders.
//
// Hugging Face GPT-2 uses Conv1D layers, whose weight is stored (in, out), the transpose of
// torch.nn.Linear's (out, in); its c_attn fuses the query, key and value projections along the
// output dimension: columns [0, C) are the query, [C, 2C) the key, [2C, 3C) the value.
#include "llmfs/checkpoint/gpt2_weights.h"

#include <array>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "llmfs/checkpoint/pth.h"
#include "llmfs/checkpoint/safetensors.h"
#include "llmfs/config/config_node.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"

namespace llmfs {
namespace {

namespace fs = std::filesystem;

std::string shape_text(c10::IntArrayRef shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// --- Where tensors come from ---

struct SourceInfo {
  std::vector<int64_t> shape;
  torch::Dtype dtype;
};

// A checkpoint's tensors by name, read one at a time.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  const std::string& where() const { return where_; }
  const std::map<std::string, SourceInfo>& tensors() const { return tensors_; }
  bool contains(const std::string& name) const { return tensors_.count(name) > 0; }
  virtual torch::Tensor read(const std::string& name) const = 0;

 protected:
  std::string where_;
  std::map<std::string, SourceInfo> tensors_;
};

class SafetensorsSource : public TensorSource {
 public:
  explicit SafetensorsSource(const fs::path& file) {
    where_ = file.string();
    add_file(file, nullptr);
  }

  // model.safetensors.index.json: {"weight_map": {name: shard file}} beside the shards.
  static std::unique_ptr<SafetensorsSource> sharded(const fs::path& index_file) {
    auto source = std::unique_ptr<SafetensorsSource>(new SafetensorsSource());
    source->where_ = index_file.string();
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(read_file(index_file));
    } catch (const nlohmann::json::exception& e) {
      std::string m = e.what();
      const auto close = m.find("] ");
      fail("{}: malformed JSON: {}", index_file.string(),
           close == std::string::npos ? m : m.substr(close + 2));
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      fail("{}: no \"weight_map\" object (not a safetensors shard index)", index_file.string());
    }
    std::map<std::string, std::set<std::string>> by_shard;
    for (const auto& [name, shard] : index["weight_map"].items()) {
      if (!shard.is_string())
        fail("{}: weight_map['{}'] is not a file name", index_file.string(), name);
      by_shard[shard.get<std::string>()].insert(name);
    }
    for (const auto& [shard, names] : by_shard) {
      if (shard.find('/') != std::string::npos || shard == "..") {
        fail("{}: shard '{}' is not a file beside the index", index_file.string(), shard);
      }
      source->add_file(index_file.parent_path() / shard, &names);
    }
    return source;
  }

  torch::Tensor read(const std::string& name) const override {
    return files_[file_of_.at(name)].tensor(name);
  }

 private:
  SafetensorsSource() = default;

  void add_file(const fs::path& file, const std::set<std::string>* expected) {
    files_.emplace_back(file);
    const auto& f = files_.back();
    for (const auto& e : f.header().entries) {
      if (expected != nullptr && expected->count(e.name) == 0) {
        fail("{}: tensor '{}' of shard {} is not in the index", where_, e.name,
             file.filename().string());
      }
      if (!tensors_.emplace(e.name, SourceInfo{e.shape, e.dtype}).second) {
        fail("{}: tensor '{}' appears in two shards", where_, e.name);
      }
      file_of_[e.name] = files_.size() - 1;
    }
    if (expected != nullptr) {
      for (const auto& name : *expected) {
        if (!f.contains(name)) {
          fail("{}: the index puts tensor '{}' in {}, which does not hold it", where_, name,
               file.filename().string());
        }
      }
    }
  }

  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> file_of_;
};

class PthSource : public TensorSource {
 public:
  explicit PthSource(const fs::path& file) : reader_(file) {
    where_ = file.string();
    // The book's model_and_optimizer.pth (and most training checkpoints) keep the weights under
    // a key next to the optimizer state.
    std::string key;
    if (reader_.root().kind() == PickleValue::Kind::Dict) {
      for (const char* candidate : {"model_state_dict", "state_dict"}) {
        const PickleValue* v = reader_.root().find(candidate);
        if (v != nullptr && v->kind() == PickleValue::Kind::Dict) {
          key = candidate;
          break;
        }
      }
    }
    for (const auto& [name, ref] : reader_.tensor_refs(key)) {
      tensors_.emplace(name, SourceInfo{ref->sizes, ref->dtype});
      refs_.emplace(name, ref);
    }
  }

  torch::Tensor read(const std::string& name) const override {
    return reader_.tensor(*refs_.at(name));
  }

 private:
  PthReader reader_;
  std::map<std::string, const PickleTensor*> refs_;
};

std::unique_ptr<TensorSource> open_source(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const char* name :
         {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"}) {
      if (fs::exists(path / name)) return open_source(path / name);
    }
    fail(
        "{}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin in this "
        "folder",
        path.string());
  }
  if (!fs::exists(path, ec)) fail("{}: no such file or folder", path.string());
  const std::string name = path.filename().string();
  if (name.size() > 11 && name.substr(name.size() - 11) == ".index.json") {
    return SafetensorsSource::sharded(path);
  }
  const std::string ext = path.extension().string();
  if (ext == ".safetensors") return std::make_unique<SafetensorsSource>(path);
  if (ext == ".pth" || ext == ".pt" || ext == ".bin" || ext == ".ckpt") {
    return std::make_unique<PthSource>(path);
  }
  // Unknown extension: torch.save files are zip archives ("PK"); try safetensors otherwise.
  char head[2] = {};
  std::ifstream(path, std::ios::binary).read(head, 2);
  if (head[0] == 'P' && head[1] == 'K') return std::make_unique<PthSource>(path);
  return std::make_unique<SafetensorsSource>(path);
}

// --- The Hugging Face <-> book name table ---

// How a Hugging Face tensor holds book parameters.
enum class Op {
  Copy,       // the same tensor
  Transpose,  // Conv1D weight: (in, out), the transpose of nn.Linear's (out, in)
  QkvWeight,  // c_attn.weight: the transposed query, key and value weights side by side
  QkvBias,    // c_attn.bias: the query, key and value biases one after the other
};

// A dimension of a Hugging Face tensor, in terms of the config.
enum class Dim { None, C, C3, C4, V, T };  // emb_dim, 3 emb_dim, 4 emb_dim, vocab, context

// One Hugging Face tensor and the book parameter(s) it holds. Block tensors' names follow
// "h.<N>." and "trf_blocks.<N>."; QkvWeight and QkvBias hold three parameters (query, key,
// value), the others one.
struct HfTensor {
  std::string_view hf;
  std::array<std::string_view, 3> book;
  Op op;
  std::array<Dim, 2> shape;
};

// transformers' GPT2LMHeadModel state_dict order: embeddings, the blocks, the final norm, then
// lm_head (which sits outside "transformer.").
constexpr HfTensor kEmbeddingTensors[] = {
    {"wte.weight", {"tok_emb.weight"}, Op::Copy, {Dim::V, Dim::C}},
    {"wpe.weight", {"pos_emb.weight"}, Op::Copy, {Dim::T, Dim::C}},
};
constexpr HfTensor kBlockTensors[] = {
    {"ln_1.weight", {"norm1.scale"}, Op::Copy, {Dim::C}},
    {"ln_1.bias", {"norm1.shift"}, Op::Copy, {Dim::C}},
    {"attn.c_attn.weight",
     {"att.W_query.weight", "att.W_key.weight", "att.W_value.weight"},
     Op::QkvWeight,
     {Dim::C, Dim::C3}},
    {"attn.c_attn.bias",
     {"att.W_query.bias", "att.W_key.bias", "att.W_value.bias"},
     Op::QkvBias,
     {Dim::C3}},
    {"attn.c_proj.weight", {"att.out_proj.weight"}, Op::Transpose, {Dim::C, Dim::C}},
    {"attn.c_proj.bias", {"att.out_proj.bias"}, Op::Copy, {Dim::C}},
    {"ln_2.weight", {"norm2.scale"}, Op::Copy, {Dim::C}},
    {"ln_2.bias", {"norm2.shift"}, Op::Copy, {Dim::C}},
    {"mlp.c_fc.weight", {"ff.layers.0.weight"}, Op::Transpose, {Dim::C, Dim::C4}},
    {"mlp.c_fc.bias", {"ff.layers.0.bias"}, Op::Copy, {Dim::C4}},
    {"mlp.c_proj.weight", {"ff.layers.2.weight"}, Op::Transpose, {Dim::C4, Dim::C}},
    {"mlp.c_proj.bias", {"ff.layers.2.bias"}, Op::Copy, {Dim::C}},
};
constexpr HfTensor kFinalTensors[] = {
    {"ln_f.weight", {"final_norm.scale"}, Op::Copy, {Dim::C}},
    {"ln_f.bias", {"final_norm.shift"}, Op::Copy, {Dim::C}},
};
constexpr HfTensor kHeadTensor = {
    "lm_head.weight", {"out_head.weight"}, Op::Copy, {Dim::V, Dim::C}};

// One entry of the table for one model: full names and shape.
struct HfName {
  std::string hf;                 // with the "transformer." prefix (not for lm_head.weight)
  std::vector<std::string> book;  // one name, or three for QkvWeight / QkvBias
  Op op;
  std::vector<int64_t> shape;
  bool head;  // lm_head.weight: optional (tied to wte when absent)
};

// The table expanded for a config, in transformers' state_dict order.
std::vector<HfName> hf_names(const GPTConfig& c) {
  const auto size = [&](Dim d) -> int64_t {
    switch (d) {
      case Dim::C:
        return c.emb_dim;
      case Dim::C3:
        return 3 * c.emb_dim;
      case Dim::C4:
        return 4 * c.emb_dim;
      case Dim::V:
        return c.vocab_size;
      case Dim::T:
        return c.context_length;
      case Dim::None:
        break;
    }
    return 0;
  };
  std::vector<HfName> out;
  const auto add = [&](const HfTensor& t, const std::string& hf_prefix,
                       const std::string& book_prefix, bool head) {
    HfName n{hf_prefix + std::string(t.hf), {}, t.op, {}, head};
    for (const auto& b : t.book) {
      if (!b.empty()) n.book.push_back(book_prefix + std::string(b));
    }
    for (const Dim d : t.shape) {
      if (d != Dim::None) n.shape.push_back(size(d));
    }
    out.push_back(std::move(n));
  };
  const std::string p = "transformer.";
  for (const auto& t : kEmbeddingTensors) add(t, p, "", false);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    for (const auto& t : kBlockTensors) {
      add(t, fmt::format("{}h.{}.", p, i), fmt::format("trf_blocks.{}.", i), false);
    }
  }
  for (const auto& t : kFinalTensors) add(t, p, "", false);
  add(kHeadTensor, "", "", true);
  return out;
}

// --- Loading ---

// How one model parameter is computed from one checkpoint tensor.
struct Target {
  std::string param;   // the book's name
  std::string source;  // the checkpoint's name
  Op op = Op::Copy;
  int64_t part = 0;  // QkvWeight, QkvBias: 0 query, 1 key, 2 value
};

// A tensor the checkpoint must (or may) hold, with the shape the model needs.
struct Expected {
  std::vector<int64_t> shape;
  bool required = true;
};

std::string model_text(const GPTConfig& c) {
  return fmt::format("vocab_size {}, context_length {}, emb_dim {}, n_layers {}", c.vocab_size,
                     c.context_length, c.emb_dim, c.n_layers);
}

// "trf_blocks.7.att.mask" -> 7 for names `<prefix><N><suffix>`, else nullopt.
std::optional<int64_t> layer_index(const std::string& name, const std::string& prefix,
                                   const std::string& suffix) {
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  const std::string digits =
      name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.empty() || digits.size() > 6 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoll(digits);
}

// Any `<prefix><N>.` name: the layer it belongs to (to explain unexpected tensors).
std::optional<int64_t> any_layer(const std::string& name, const std::string& prefix) {
  if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const auto dot = name.find('.', prefix.size());
  if (dot == std::string::npos) return std::nullopt;
  return layer_index(name.substr(0, dot + 1), prefix, ".");
}

// Expected tensors in the model's order (embeddings first), so that a checkpoint for another
// model size is reported at its token embedding.
class ExpectedTensors {
 public:
  Expected& operator[](const std::string& name) {
    const auto [it, added] = index_.emplace(name, items_.size());
    if (added) items_.emplace_back(name, Expected{});
    return items_[it->second].second;
  }
  bool count(const std::string& name) const { return index_.count(name) > 0; }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<std::pair<std::string, Expected>> items_;
  std::map<std::string, size_t> index_;
};

struct Plan {
  ExpectedTensors expected;
  std::vector<Target> targets;
  std::string layer_prefix;                                  // "transformer.h." or "trf_blocks."
  std::vector<std::pair<std::string, std::string>> ignored;  // (prefix, suffix) of buffers
  std::string embedding;                                     // source name of the token embedding
  std::string head;                                          // source name of the output head
};

Plan book_plan(const GPTModelImpl& model) {
  Plan plan;
  plan.layer_prefix = "trf_blocks.";
  plan.ignored = {{"trf_blocks.", ".att.mask"}};
  plan.embedding = "tok_emb.weight";
  plan.head = "out_head.weight";
  for (const auto& p : model.named_parameters(true)) {
    plan.expected[p.key()] = {p.value().sizes().vec(), p.key() != "out_head.weight"};
    if (p.key() != "out_head.weight") plan.targets.push_back({p.key(), p.key()});
  }
  // A tied model's checkpoint may still carry the head (equal to the embedding).
  const auto& c = model.config();
  if (!plan.expected.count("out_head.weight")) {
    plan.expected["out_head.weight"] = {{c.vocab_size, c.emb_dim}, false};
  }
  return plan;
}

Plan hf_plan(const GPTModelImpl& model, const std::string& prefix) {
  const auto& c = model.config();
  Plan plan;
  plan.layer_prefix = prefix + "h.";
  plan.ignored = {{prefix + "h.", ".attn.bias"}, {prefix + "h.", ".attn.masked_bias"}};
  plan.embedding = prefix + "wte.weight";
  plan.head = "lm_head.weight";
  const std::string full = "transformer.";
  for (const auto& n : hf_names(c)) {
    const bool in_transformer = n.hf.compare(0, full.size(), full) == 0;
    const std::string local = in_transformer ? prefix + n.hf.substr(full.size()) : n.hf;
    plan.expected[local] = {n.shape, !n.head};
    if (n.head) continue;  // the output head is copied last, from lm_head or the embedding
    // A model without qkv_bias has no query/key/value biases to fill (load_from checks that the
    // checkpoint's are zero).
    if (n.op == Op::QkvBias && !c.qkv_bias) continue;
    for (size_t k = 0; k < n.book.size(); ++k) {
      plan.targets.push_back({n.book[k], local, n.op, static_cast<int64_t>(k)});
    }
  }
  return plan;
}

torch::Tensor apply(const Target& t, const torch::Tensor& source, int64_t C) {
  switch (t.op) {
    case Op::Copy:
      return source;
    case Op::Transpose:
      return source.t();
    case Op::QkvWeight:
      return source.narrow(1, t.part * C, C).t();
    case Op::QkvBias:
      return source.narrow(0, t.part * C, C);
  }
  return source;
}

void load_from(GPTModelImpl& model, const TensorSource& src) {
  const GPTConfig& cfg = model.config();
  const std::string& where = src.where();

  WeightLayout layout;
  std::string prefix;
  if (src.contains("tok_emb.weight")) {
    layout = WeightLayout::Book;
  } else if (src.contains("transformer.wte.weight")) {
    layout = WeightLayout::HuggingFace;
    prefix = "transformer.";
  } else if (src.contains("wte.weight")) {
    layout = WeightLayout::HuggingFace;
  } else {
    std::vector<std::string> some;
    for (const auto& [name, info] : src.tensors()) {
      if (some.size() == 3) break;
      some.push_back(name);
    }
    fail(
        "{}: not GPT weights: no tok_emb.weight (the book's layout) or transformer.wte.weight "
        "(Hugging Face GPT-2); the first tensors are [{}]",
        where, fmt::join(some, ", "));
  }
  const Plan plan = layout == WeightLayout::Book ? book_plan(model) : hf_plan(model, prefix);
  const std::string layout_name =
      layout == WeightLayout::Book ? "the book's layout" : "Hugging Face GPT-2 layout";

  // 1. Shapes and dtypes of everything the model needs: a checkpoint for another size fails here,
  //    at the first tensor whose shape differs, before any parameter changes.
  for (const auto& [name, want] : plan.expected) {
    const auto it = src.tensors().find(name);
    if (it == src.tensors().end()) continue;
    if (it->second.shape != want.shape) {
      fail(
          "{}: tensor '{}' has shape {} but the model ({}) needs {}: a checkpoint for another "
          "model size?",
          where, name, shape_text(it->second.shape), model_text(cfg), shape_text(want.shape));
    }
    if (!c10::isFloatingType(it->second.dtype)) {
      fail("{}: tensor '{}' has dtype {}; weights must be floating point", where, name,
           c10::toString(it->second.dtype));
    }
  }
  // 2. Missing tensors.
  for (const auto& [name, want] : plan.expected) {
    if (want.required && !src.contains(name)) {
      fail("{}: missing tensor '{}' ({}, model with {} layers)", where, name, layout_name,
           cfg.n_layers);
    }
  }
  // 3. Tensors the model has no place for (another layer count, another architecture).
  for (const auto& [name, info] : src.tensors()) {
    if (plan.expected.count(name) > 0) continue;
    bool ignored = false;
    for (const auto& [p, s] : plan.ignored) {
      const auto layer = layer_index(name, p, s);
      if (layer && *layer < cfg.n_layers) ignored = true;
    }
    if (ignored) continue;
    const auto layer = any_layer(name, plan.layer_prefix);
    if (layer && *layer >= cfg.n_layers) {
      fail(
          "{}: unexpected tensor '{}': the checkpoint has more layers than the model's {} (a "
          "checkpoint for another model size?)",
          where, name, cfg.n_layers);
    }
    fail("{}: unexpected tensor '{}' with shape {}: not part of the model ({})", where, name,
         shape_text(info.shape), layout_name);
  }

  // 4. Checks that need values: zero query/key/value biases for a model without them, an
  //    output head equal to the embedding for a tied model.
  std::string cached_name;
  torch::Tensor cached;
  const auto read = [&](const std::string& name) {
    if (name != cached_name) {
      cached = src.read(name);
      cached_name = name;
    }
    return cached;
  };
  if (layout == WeightLayout::HuggingFace && !cfg.qkv_bias) {
    // Hugging Face GPT-2 always has query/key/value biases; a model without them can take the
    // checkpoint only when they are zero.
    for (int64_t i = 0; i < cfg.n_layers; ++i) {
      const std::string name = fmt::format("{}h.{}.attn.c_attn.bias", prefix, i);
      if (read(name).abs().max().item<double>() != 0.0) {
        fail(
            "{}: tensor '{}' holds non-zero query/key/value biases but the model has qkv_bias "
            "false (set model.qkv_bias=true)",
            where, name);
      }
    }
  }
  const bool has_head = src.contains(plan.head);
  if (cfg.tie_weights && has_head && !torch::equal(src.read(plan.head), src.read(plan.embedding))) {
    fail("{}: tensor '{}' differs from '{}' but the model ties them (set model.tie_weights=false)",
         where, plan.head, plan.embedding);
  }

  // 5. Copy, one checkpoint tensor at a time (c_attn serves three parameters: keep the last).
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters(true);
  for (const auto& target : plan.targets) {
    torch::Tensor* param = params.find(target.param);
    if (param == nullptr)
      fail("model has no parameter '{}' (expected by the {})", target.param, layout_name);
    param->copy_(apply(target, read(target.source), cfg.emb_dim));
  }
  // The output head: its own tensor when the checkpoint has one, else the token embedding.
  if (!cfg.tie_weights) {
    torch::Tensor* head = params.find("out_head.weight");
    if (head == nullptr) fail("model has no parameter 'out_head.weight'");
    head->copy_(read(has_head ? plan.head : plan.embedding));
  }
  spdlog::debug("loaded {} ({}, {} tensors)", where, layout_name, src.tensors().size());
}

// --- Config files ---

template <typename T>
T json_get(const nlohmann::json& j, const std::string& key, const std::string& file) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail("{}: \"{}\" {}", file, key, j.contains(key) ? "has the wrong type" : "is missing");
  }
}

}  // namespace

GPTConfig read_hf_gpt2_config(const fs::path& config_json) {
  const std::string file = config_json.string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(config_json));
  } catch (const nlohmann::json::parse_error& e) {
    std::string m = e.what();
    const auto close = m.find("] ");
    fail("{}: malformed JSON: {}", file, close == std::string::npos ? m : m.substr(close + 2));
  }
  if (!j.is_object()) fail("{}: not a JSON object", file);
  if (j.contains("model_type") && j["model_type"] != "gpt2") {
    fail("{}: model_type {} is not gpt2", file, j["model_type"].dump());
  }
  GPTConfig c;
  c.emb_dim = json_get<int64_t>(j, "n_embd", file);
  c.n_layers = json_get<int64_t>(j, "n_layer", file);
  c.n_heads = json_get<int64_t>(j, "n_head", file);
  c.vocab_size = json_get<int64_t>(j, "vocab_size", file);
  c.context_length = j.contains("n_positions") ? json_get<int64_t>(j, "n_positions", file)
                                               : json_get<int64_t>(j, "n_ctx", file);
  c.drop_rate = j.contains("resid_pdrop") ? json_get<double>(j, "resid_pdrop", file) : 0.1;
  c.qkv_bias = j.contains("qkv_bias") ? json_get<bool>(j, "qkv_bias", file) : true;
  c.tie_weights = false;
  if (c.emb_dim < 1 || c.n_layers < 0 || c.n_heads < 1 || c.vocab_size < 1 ||
      c.context_length < 1) {
    fail("{}: n_embd, n_head, vocab_size and n_positions must be positive", file);
  }
  if (c.emb_dim % c.n_heads != 0) {
    fail("{}: n_embd ({}) must be divisible by n_head ({})", file, c.emb_dim, c.n_heads);
  }
  if (c.drop_rate < 0.0 || c.drop_rate > 1.0) fail("{}: resid_pdrop must be in [0, 1]", file);
  // What GPTModel computes: tanh GELU, LayerNorm eps 1e-5, a 4x MLP, plain 1/sqrt(d) scaling.
  if (j.contains("activation_function") && j["activation_function"] != "gelu_new") {
    fail("{}: activation_function {} is not supported (GPTModel uses gelu_new, the tanh GELU)",
         file, j["activation_function"].dump());
  }
  if (j.contains("layer_norm_epsilon") &&
      std::abs(json_get<double>(j, "layer_norm_epsilon", file) - 1e-5) > 1e-12) {
    fail("{}: layer_norm_epsilon {} is not supported (GPTModel's LayerNorm uses 1e-5)", file,
         j["layer_norm_epsilon"].dump());
  }
  if (j.contains("n_inner") && !j["n_inner"].is_null() &&
      json_get<int64_t>(j, "n_inner", file) != 4 * c.emb_dim) {
    fail("{}: n_inner {} is not supported (GPTModel's feed-forward is 4 * n_embd = {})", file,
         j["n_inner"].dump(), 4 * c.emb_dim);
  }
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, bool>>{{"scale_attn_weights", true},
                                                 {"scale_attn_by_inverse_layer_idx", false},
                                                 {"reorder_and_upcast_attn", false}}) {
    if (j.contains(key) && json_get<bool>(j, key, file) != value) {
      fail("{}: {} {} is not supported", file, key, j[key].dump());
    }
  }
  return c;
}

std::string hf_gpt2_config_json(const GPTConfig& c) {
  nlohmann::ordered_json j;
  j["activation_function"] = "gelu_new";
  j["architectures"] = {"GPT2LMHeadModel"};
  j["attn_pdrop"] = c.drop_rate;
  j["embd_pdrop"] = c.drop_rate;
  j["resid_pdrop"] = c.drop_rate;
  if (c.vocab_size > 50256) {  // GPT-2's <|endoftext|>
    j["bos_token_id"] = 50256;
    j["eos_token_id"] = 50256;
  }
  j["initializer_range"] = 0.02;
  j["layer_norm_epsilon"] = 1e-5;
  j["model_type"] = "gpt2";
  j["n_ctx"] = c.context_length;
  j["n_embd"] = c.emb_dim;
  j["n_head"] = c.n_heads;
  j["n_inner"] = nullptr;
  j["n_layer"] = c.n_layers;
  j["n_positions"] = c.context_length;
  if (!c.qkv_bias)
    j["qkv_bias"] = false;  // ours: transformers ignores it, read_hf_gpt2_config reads it
  j["tie_word_embeddings"] = c.tie_weights;
  j["vocab_size"] = c.vocab_size;
  return j.dump(2) + "\n";
}

GPTConfig read_model_config(const fs::path& file) {
  const std::string ext = file.extension().string();
  if (ext == ".json") return read_hf_gpt2_config(file);
  if (ext == ".yaml" || ext == ".yml") {
    ConfigDocument document(file.string(), {});
    const ConfigNode root = document.root();
    const GPTConfig c = parse_gpt_config(root.has("model") ? root.child("model") : root);
    document.finish();
    return c;
  }
  fail("{}: a model config is a config.json (Hugging Face) or a .yaml file", file.string());
}

GPTConfig model_config_for(const fs::path& path) {
  std::error_code ec;
  const fs::path dir = fs::is_directory(path, ec) ? path : path.parent_path();
  const fs::path config = (dir.empty() ? fs::path(".") : dir) / "config.json";
  if (!fs::exists(config, ec)) {
    fail(
        "{}: no config.json beside the weights; give the model config (a config.json or a YAML "
        "model file)",
        path.string());
  }
  return read_hf_gpt2_config(config);
}

void load_weights(GPTModelImpl& model, const fs::path& path) {
  const auto source = open_source(path);
  load_from(model, *source);
}

std::vector<std::pair<std::string, std::vector<int64_t>>> hf_gpt2_shapes(const GPTConfig& c) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (auto& n : hf_names(c)) out.emplace_back(std::move(n.hf), std::move(n.shape));
  return out;
}

GPTModel load_gpt_model(const fs::path& path, const std::optional<GPTConfig>& config) {
  GPTModel model(config ? *config : model_config_for(path));
  load_weights(model, path);
  model->eval();
  return model;
}

std::vector<std::pair<std::string, torch::Tensor>> gpt_state_dict(const GPTModelImpl& model,
                                                                  WeightLayout layout) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (layout == WeightLayout::Book) {
    // PyTorch's state_dict order: each module's own parameters, then its buffers, then its
    // children, depth first.
    for (const auto& item : model.named_modules("", /*include_self=*/true)) {
      const std::string prefix = item.key().empty() ? "" : item.key() + ".";
      for (const auto& p : item.value()->named_parameters(false))
        out.emplace_back(prefix + p.key(), p.value());
      for (const auto& b : item.value()->named_buffers(false))
        out.emplace_back(prefix + b.key(), b.value());
    }
    // The book's model always has its own head: a tied model writes the embedding there, so the
    // book's code can load the file.
    if (model.config().tie_weights)
      out.emplace_back("out_head.weight", model.tok_emb->weight.detach());
    return out;
  }
  const GPTConfig& c = model.config();
  const auto params = model.named_parameters(true);
  const auto get = [&](const std::string& name) { return params[name].detach(); };
  // The query, key and value tensors side by side (c_attn).
  const auto qkv = [&](const std::vector<std::string>& names) {
    return torch::cat({get(names[0]), get(names[1]), get(names[2])});
  };
  for (const auto& n : hf_names(c)) {
    if (n.head && c.tie_weights) continue;  // transformers ties lm_head to wte
    switch (n.op) {
      case Op::Copy:
        out.emplace_back(n.hf, get(n.book[0]));
        break;
      case Op::Transpose:
        out.emplace_back(n.hf, get(n.book[0]).t().contiguous());
        break;
      case Op::QkvWeight:
        out.emplace_back(n.hf, qkv(n.book).t().contiguous());
        break;
      case Op::QkvBias:  // transformers' GPT-2 always has them: zeros for a model without
        out.emplace_back(n.hf, c.qkv_bias ? qkv(n.book)
                                          : torch::zeros({3 * c.emb_dim},
                                                         get("tok_emb.weight").options()));
        break;
    }
  }
  return out;
}

void save_weights(const GPTModelImpl& model, const fs::path& path, WeightLayout layout) {
  const std::string ext = path.extension().string();
  const auto tensors = gpt_state_dict(model, layout);
  if (ext == ".safetensors") {
    save_safetensors(path, std::map<std::string, torch::Tensor>(tensors.begin(), tensors.end()),
                     {{"format", "pt"}});
  } else if (ext == ".pth" || ext == ".pt" || ext == ".bin") {
    save_pth(path, tensors);
  } else {
    fail("{}: weights are saved as .safetensors or .pth", path.string());
  }
  spdlog::info("wrote {}", path.string());
}

void save_hf_gpt2(const GPTModelImpl& model, const fs::path& folder) {
  save_weights(model, folder / "model.safetensors", WeightLayout::HuggingFace);
  write_file_atomic(folder / "config.json", hf_gpt2_config_json(model.config()));
}

}  // namespace llmfs
