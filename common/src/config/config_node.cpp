// The config system: YAML (yaml-cpp, kept out of public headers) plus `key.sub=value` overrides,
// read into plain structs with type and range checks, unknown-key detection with suggestions,
// and the resolved config as YAML.
#include "llmfs/config/config_node.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace llmfs {

// --- Checks --------------------------------------------------------------------

Check<int64_t> at_least(int64_t min) {
  return [min](const int64_t& v) -> std::optional<std::string> {
    if (v < min) return fmt::format("must be at least {}, got {}", min, v);
    return std::nullopt;
  };
}

Check<double> at_least(double min) {
  return [min](const double& v) -> std::optional<std::string> {
    if (!(v >= min)) return fmt::format("must be at least {}, got {}", min, v);
    return std::nullopt;
  };
}

Check<double> greater_than(double min) {
  return [min](const double& v) -> std::optional<std::string> {
    if (!(v > min)) return fmt::format("must be greater than {}, got {}", min, v);
    return std::nullopt;
  };
}

Check<double> in_range(double lo, double hi) {
  return [lo, hi](const double& v) -> std::optional<std::string> {
    if (!(v >= lo && v <= hi)) return fmt::format("must be in [{}, {}], got {}", lo, hi, v);
    return std::nullopt;
  };
}

Check<int64_t> in_range(int64_t lo, int64_t hi) {
  return [lo, hi](const int64_t& v) -> std::optional<std::string> {
    if (v < lo || v > hi) return fmt::format("must be in [{}, {}], got {}", lo, hi, v);
    return std::nullopt;
  };
}

Check<std::string> one_of(std::vector<std::string> choices) {
  return [choices = std::move(choices)](const std::string& v) -> std::optional<std::string> {
    if (std::find(choices.begin(), choices.end(), v) != choices.end()) return std::nullopt;
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "'" : ", '") + c + "'";
    return fmt::format("must be one of {}, got '{}'", list, v);
  };
}

// --- State -----------------------------------------------------------------------

namespace detail {

struct ConfigState {
  std::string source;                  // file name, or "(defaults)"
  YAML::Node input{YAML::NodeType::Map};
  std::set<std::string> overridden;    // dotted paths set on the command line
  std::set<std::string> known;         // dotted paths the parse function asked for
  std::set<std::string> sections;      // dotted paths read as mappings through child()
  std::vector<std::string> problems;
  YAML::Node resolved{YAML::NodeType::Map};
};

}  // namespace detail

namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    parts.emplace_back(path.substr(start, dot == std::string_view::npos ? path.npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

// The node at a dotted path, or an undefined node. Read-only: yaml-cpp's non-const operator[]
// would insert keys, and assigning one Node to another overwrites the tree, so this recurses.
YAML::Node lookup(const YAML::Node& node, const std::vector<std::string>& parts, size_t i = 0) {
  if (i == parts.size()) return node;
  if (!node.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  const YAML::Node next = node[parts[i]];
  if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
  return lookup(next, parts, i + 1);
}

// Sets the value at a dotted path in the resolved tree, creating sections on the way.
void assign(YAML::Node node, const std::vector<std::string>& parts, size_t i, const YAML::Node& value) {
  if (i + 1 == parts.size()) {
    node[parts[i]] = value;
    return;
  }
  if (!node[parts[i]].IsMap()) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
  assign(node[parts[i]], parts, i + 1, value);
}

bool is_null_scalar(const YAML::Node& node) {
  if (node.IsNull()) return true;
  if (!node.IsScalar()) return false;
  const std::string& s = node.Scalar();
  return node.Tag() != "!" && (s == "null" || s == "~" || s == "Null" || s == "NULL");
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Shortest decimal that reads back to the same double, always with a dot so every YAML parser
// sees a float: 0.0004, 5.0e-05, 1.0.
std::string format_double(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  std::string s = fmt::format("{}", v);
  const auto e = s.find('e');
  if (s.find('.') == std::string::npos) {
    if (e == std::string::npos) {
      s += ".0";
    } else {
      s.insert(e, ".0");
    }
  }
  return s;
}

// --- Conversions: YAML node -> value, or an error message -----------------------

std::optional<std::string> convert(const YAML::Node& node, bool& out) {
  if (!node.IsScalar()) return "expected true or false";
  const std::string s = lower(node.Scalar());
  if (s == "true" || s == "yes" || s == "on") {
    out = true;
  } else if (s == "false" || s == "no" || s == "off") {
    out = false;
  } else {
    return fmt::format("expected true or false, got '{}'", node.Scalar());
  }
  return std::nullopt;
}

template <typename Int>
std::optional<std::string> convert_integer(const YAML::Node& node, Int& out) {
  if (!node.IsScalar() || is_null_scalar(node)) return "expected an integer";
  std::string s = node.Scalar();
  if (!s.empty() && s[0] == '+') s.erase(0, 1);
  Int value{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc::result_out_of_range) return fmt::format("integer out of range: '{}'", node.Scalar());
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
    return fmt::format("expected an integer, got '{}'", node.Scalar());
  }
  out = value;
  return std::nullopt;
}

std::optional<std::string> convert(const YAML::Node& node, int64_t& out) { return convert_integer(node, out); }
std::optional<std::string> convert(const YAML::Node& node, uint64_t& out) { return convert_integer(node, out); }

std::optional<std::string> convert(const YAML::Node& node, double& out) {
  if (!node.IsScalar() || is_null_scalar(node)) return "expected a number";
  const std::string& s = node.Scalar();
  const std::string l = lower(s);
  if (l == ".inf" || l == "+.inf") {
    out = HUGE_VAL;
    return std::nullopt;
  }
  if (l == "-.inf") {
    out = -HUGE_VAL;
    return std::nullopt;
  }
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || std::isnan(v) || l.find("inf") != std::string::npos ||
      l.find("0x") != std::string::npos) {
    return fmt::format("expected a number, got '{}'", s);
  }
  out = v;
  return std::nullopt;
}

std::optional<std::string> convert(const YAML::Node& node, std::string& out) {
  if (!node.IsScalar() || is_null_scalar(node)) return "expected a string";
  out = node.Scalar();
  return std::nullopt;
}

template <typename T>
std::optional<std::string> convert(const YAML::Node& node, std::vector<T>& out) {
  if (!node.IsSequence()) return "expected a list";
  std::vector<T> values;
  for (size_t i = 0; i < node.size(); ++i) {
    T v{};
    if (auto err = convert(node[i], v)) return fmt::format("item {}: {}", i, *err);
    values.push_back(std::move(v));
  }
  out = std::move(values);
  return std::nullopt;
}

template <typename T>
std::optional<std::string> convert(const YAML::Node& node, std::optional<T>& out) {
  if (is_null_scalar(node)) {
    out.reset();
    return std::nullopt;
  }
  T v{};
  if (auto err = convert(node, v)) return err;
  out = std::move(v);
  return std::nullopt;
}

// --- Conversions: value -> YAML node for the resolved config ----------------------

YAML::Node to_yaml(bool v) { return YAML::Node(v ? "true" : "false"); }
YAML::Node to_yaml(int64_t v) { return YAML::Node(std::to_string(v)); }
YAML::Node to_yaml(uint64_t v) { return YAML::Node(std::to_string(v)); }
YAML::Node to_yaml(double v) { return YAML::Node(format_double(v)); }
YAML::Node to_yaml(const std::string& v) { return YAML::Node(v); }

template <typename T>
YAML::Node to_yaml(const std::vector<T>& values) {
  YAML::Node seq(YAML::NodeType::Sequence);
  for (const auto& v : values) seq.push_back(to_yaml(v));
  seq.SetStyle(YAML::EmitterStyle::Flow);
  return seq;
}

template <typename T>
YAML::Node to_yaml(const std::optional<T>& v) {
  return v ? to_yaml(*v) : YAML::Node(YAML::NodeType::Null);
}

template <typename T>
std::optional<std::string> run_check(const Check<T>& check, const T& value) {
  return check ? check(value) : std::nullopt;
}

// Checks see the value inside an optional (a null optional passes); lists are not checked.
template <typename T>
std::optional<std::string> run_check(const Check<std::optional<T>>& check, const std::optional<T>& value) {
  return check ? check(value) : std::nullopt;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string location(const detail::ConfigState& state, const std::string& path, const YAML::Node& node) {
  if (state.overridden.count(path)) return "(command line)";
  if (node.IsDefined() && node.Mark().line >= 0 && state.source != "(defaults)") {
    return fmt::format("{}:{}", state.source, node.Mark().line + 1);
  }
  return state.source;
}

}  // namespace

// --- ConfigNode --------------------------------------------------------------------

ConfigNode::ConfigNode(std::shared_ptr<detail::ConfigState> state, std::string prefix)
    : state_(std::move(state)), prefix_(std::move(prefix)) {}

std::string ConfigNode::path(std::string_view key) const { return prefix_ + std::string(key); }

bool ConfigNode::has(std::string_view key) const {
  return lookup(state_->input, split_path(path(key))).IsDefined();
}

ConfigNode ConfigNode::child(std::string_view key) const {
  const std::string p = path(key);
  state_->known.insert(p);
  state_->sections.insert(p);
  const YAML::Node node = lookup(state_->input, split_path(p));
  if (node.IsDefined() && !node.IsMap() && !is_null_scalar(node)) {
    state_->problems.push_back(fmt::format("{}: {}: expected a section (a mapping of keys)",
                                           location(*state_, p, node), p));
  }
  return ConfigNode(state_, p + ".");
}

void ConfigNode::check(bool ok, std::string_view key, std::string message) const {
  if (ok) return;
  const std::string p = path(key);
  const YAML::Node node = lookup(state_->input, split_path(p));
  state_->problems.push_back(fmt::format("{}: {}: {}", location(*state_, p, node), p, message));
}

template <typename T>
void ConfigNode::get(std::string_view key, T& out, const Check<T>& check, bool required) {
  const std::string p = path(key);
  const auto parts = split_path(p);
  state_->known.insert(p);
  const YAML::Node node = lookup(state_->input, parts);
  if (!node.IsDefined()) {
    if (required) {
      state_->problems.push_back(fmt::format("{}: {}: required key is missing", state_->source, p));
    }
  } else if (auto err = convert(node, out)) {
    state_->problems.push_back(fmt::format("{}: {}: {}", location(*state_, p, node), p, *err));
    return;
  }
  if (auto err = run_check(check, out)) {
    state_->problems.push_back(fmt::format("{}: {}: {}", location(*state_, p, node), p, *err));
  }
  assign(state_->resolved, parts, 0, to_yaml(out));
}

template <typename T>
void ConfigNode::read(std::string_view key, T& out, Check<T> check) {
  get(key, out, check, /*required=*/false);
}

template <typename T>
void ConfigNode::require(std::string_view key, T& out, Check<T> check) {
  get(key, out, check, /*required=*/true);
}

#define LLMFS_CONFIG_TYPE(T)                                              \
  template void ConfigNode::read<T>(std::string_view, T&, Check<T>);    \
  template void ConfigNode::require<T>(std::string_view, T&, Check<T>);
LLMFS_CONFIG_TYPE(bool)
LLMFS_CONFIG_TYPE(int64_t)
LLMFS_CONFIG_TYPE(uint64_t)
LLMFS_CONFIG_TYPE(double)
LLMFS_CONFIG_TYPE(std::string)
LLMFS_CONFIG_TYPE(std::vector<int64_t>)
LLMFS_CONFIG_TYPE(std::vector<double>)
LLMFS_CONFIG_TYPE(std::vector<std::string>)
LLMFS_CONFIG_TYPE(std::optional<int64_t>)
LLMFS_CONFIG_TYPE(std::optional<double>)
LLMFS_CONFIG_TYPE(std::optional<std::string>)
#undef LLMFS_CONFIG_TYPE

// --- ConfigDocument ------------------------------------------------------------------

ConfigDocument::ConfigDocument() : state_(std::make_shared<detail::ConfigState>()) {}
ConfigDocument::ConfigDocument(ConfigDocument&&) noexcept = default;
ConfigDocument::~ConfigDocument() = default;

namespace {

YAML::Node parse_yaml(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source, {fmt::format("{}:{}: malformed YAML: {}", source, e.mark.line + 1, e.msg)});
  }
  if (root.IsNull() || !root.IsDefined()) return YAML::Node(YAML::NodeType::Map);  // empty file
  if (!root.IsMap()) {
    throw ConfigError(source, {fmt::format("{}: expected a mapping of keys at the top level", source)});
  }
  return root;
}

void apply_overrides(detail::ConfigState& state, const std::vector<std::string>& overrides) {
  std::vector<std::string> problems;
  for (const auto& item : overrides) {
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq);
    const bool key_ok = eq != std::string::npos && !key.empty() && key.front() != '.' &&
                        key.back() != '.' && key.find("..") == std::string::npos &&
                        std::all_of(key.begin(), key.end(), [](unsigned char c) {
                          return std::isalnum(c) || c == '_' || c == '.' || c == '-';
                        });
    if (!key_ok) {
      problems.push_back(fmt::format("(command line): '{}': expected key.sub=value", item));
      continue;
    }
    const std::string text = item.substr(eq + 1);
    YAML::Node value;
    if (!text.empty() && (text.front() == '[' || text.front() == '{')) {  // flow list or map
      try {
        value = YAML::Load(text);
      } catch (const YAML::Exception& e) {
        problems.push_back(fmt::format("(command line): {}: malformed value '{}': {}", key, text, e.msg));
        continue;
      }
    } else {
      value = YAML::Node(text);  // a plain scalar, so "Hello: world" stays one string
    }
    const auto parts = split_path(key);
    // Walk down, creating sections; a scalar in the way is an error.
    YAML::Node node = state.input;
    bool ok = true;
    for (size_t i = 0; i + 1 < parts.size() && ok; ++i) {
      const YAML::Node& cnode = node;
      const YAML::Node next = cnode[parts[i]];
      if (next.IsDefined() && !next.IsMap() && !is_null_scalar(next)) {
        problems.push_back(fmt::format("(command line): {}: '{}' is not a section", key,
                                       fmt::join(parts.begin(), parts.begin() + static_cast<long>(i) + 1, ".")));
        ok = false;
      } else if (!next.IsDefined() || !next.IsMap()) {
        node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      }
      if (ok) {
        YAML::Node child = node[parts[i]];
        node.reset(child);
      }
    }
    if (!ok) continue;
    node[parts.back()] = value;
    state.overridden.insert(key);
  }
  if (!problems.empty()) throw ConfigError("(command line)", problems);
}

// Keys present in the input that the parse function never asked for.
void report_unknown(detail::ConfigState& state, const YAML::Node& node, const std::string& prefix) {
  if (!node.IsMap()) return;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {  // YAML allows a list or a mapping as a key (`? [a, b]`)
      const std::string section = prefix.empty() ? "(top level)" : prefix.substr(0, prefix.size() - 1);
      const char* got = kv.first.IsSequence() ? "a list" : kv.first.IsMap() ? "a mapping" : "null";
      state.problems.push_back(fmt::format("{}: {}: a key must be a name, got {}",
                                           location(state, prefix, kv.first), section, got));
      continue;
    }
    const std::string key = kv.first.Scalar();
    const std::string p = prefix + key;
    if (state.known.count(p)) {
      if (state.sections.count(p)) report_unknown(state, kv.second, p + ".");
      continue;
    }
    // Suggest the closest key the parser knows at the same level.
    std::string best;
    size_t best_distance = std::max<size_t>(2, key.size() / 3) + 1;
    for (const auto& known : state.known) {
      if (known.rfind(prefix, 0) != 0) continue;
      const std::string rest = known.substr(prefix.size());
      if (rest.find('.') != std::string::npos) continue;
      const size_t d = edit_distance(key, rest);
      if (d < best_distance) best_distance = d, best = rest;
    }
    const std::string hint = best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best);
    state.problems.push_back(fmt::format("{}: {}: unknown key{}", location(state, p, kv.first), p, hint));
  }
}

}  // namespace

ConfigDocument::ConfigDocument(const std::string& file, const std::vector<std::string>& overrides)
    : ConfigDocument() {
  if (file.empty()) {
    state_->source = "(defaults)";
  } else {
    state_->source = file;
    std::ifstream in(file, std::ios::binary);
    if (!in) throw ConfigError(file, {fmt::format("{}: cannot open config file", file)});
    std::stringstream buffer;
    buffer << in.rdbuf();
    state_->input = parse_yaml(buffer.str(), file);
  }
  apply_overrides(*state_, overrides);
}

ConfigDocument ConfigDocument::from_string(std::string_view yaml, std::string_view source_name,
                                           const std::vector<std::string>& overrides) {
  ConfigDocument doc;
  doc.state_->source = std::string(source_name);
  doc.state_->input = parse_yaml(std::string(yaml), doc.state_->source);
  apply_overrides(*doc.state_, overrides);
  return doc;
}

ConfigNode ConfigDocument::root() const { return ConfigNode(state_, ""); }

void ConfigDocument::finish() const {
  report_unknown(*state_, state_->input, "");
  if (!state_->problems.empty()) throw ConfigError(state_->source, state_->problems);
}

std::string ConfigDocument::resolved_yaml() const {
  YAML::Emitter out;
  out << state_->resolved;
  return std::string(out.c_str()) + "\n";
}

// --- ConfigError ------------------------------------------------------------------------

namespace {

std::string config_error_message(const std::string& source, const std::vector<std::string>& problems) {
  if (problems.size() == 1) return problems.front();
  std::string text = fmt::format("{}: {} problems", source, problems.size());
  for (const auto& p : problems) text += "\n  " + p;
  return text;
}

}  // namespace

ConfigError::ConfigError(std::string source, std::vector<std::string> problems)
    : Error(config_error_message(source, problems)), problems_(std::move(problems)) {}

}  // namespace llmfs
