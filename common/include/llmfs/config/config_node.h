#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmfs/core/error.h"

namespace llmfs {

/// A check on one config value: an error message, or nothing when the value is fine.
template <typename T>
using Check = std::function<std::optional<std::string>(const T&)>;

/// Value checks for ConfigNode::read / require.
Check<int64_t> at_least(int64_t min);
Check<double> at_least(double min);
Check<double> greater_than(double min);
/// Inclusive range [lo, hi].
Check<double> in_range(double lo, double hi);
Check<int64_t> in_range(int64_t lo, int64_t hi);
Check<std::string> one_of(std::vector<std::string> choices);

namespace detail {
struct ConfigState;
}

/// One mapping of a YAML config (the whole file or a section), read into a plain config struct:
///
///   GPTConfig c;                                  // defaults
///   node.require("emb_dim", c.emb_dim, at_least(1));
///   node.read("drop_rate", c.drop_rate, in_range(0.0, 1.0));
///
/// Problems are recorded, not thrown, so that one run reports all of them (with file, line and
/// dotted key); load_config throws a ConfigError at the end. Every key read is marked, so keys
/// nobody read are reported as unknown, with a "did you mean" suggestion. Every value read,
/// given or default, goes into the resolved config that --print-config shows and runs save.
///
/// Supported value types: bool, int64_t, uint64_t, double, std::string, std::vector of
/// int64_t/double/std::string, and std::optional of int64_t/double/std::string (YAML null).
class ConfigNode {
 public:
  /// Optional key: `out` keeps its value (the default) when the key is absent.
  template <typename T>
  void read(std::string_view key, T& out, Check<T> check = {});

  /// Required key: absence is an error.
  template <typename T>
  void require(std::string_view key, T& out, Check<T> check = {});

  /// A nested mapping; an absent key gives an empty section, so its defaults apply.
  ConfigNode child(std::string_view key) const;

  /// Whether the key is present in the input (file or overrides).
  bool has(std::string_view key) const;

  /// Records `message` against `key` when `ok` is false (for checks across several values).
  void check(bool ok, std::string_view key, std::string message) const;
  template <typename... Args>
  void check(bool ok, std::string_view key, fmt::format_string<Args...> format, Args&&... args) const {
    if (!ok) check(false, key, fmt::format(format, std::forward<Args>(args)...));
  }

  /// The dotted path of a key in this section ("train.learning_rate").
  std::string path(std::string_view key) const;

 private:
  friend class ConfigDocument;
  ConfigNode(std::shared_ptr<detail::ConfigState> state, std::string prefix);

  template <typename T>
  void get(std::string_view key, T& out, const Check<T>& check, bool required);

  std::shared_ptr<detail::ConfigState> state_;
  std::string prefix_;  // "" for the root, "train." for a section
};

/// A config being loaded: the YAML from a file (optional) plus `key.sub=value` overrides.
/// Make one, hand root() to a parse function, then call finish().
class ConfigDocument {
 public:
  /// `file` may be empty (defaults only). Throws ConfigError for an unreadable or malformed file
  /// or a malformed override.
  ConfigDocument(const std::string& file, const std::vector<std::string>& overrides);
  ConfigDocument(ConfigDocument&&) noexcept;
  ~ConfigDocument();

  /// Parses YAML text instead of a file (`source_name` appears in messages).
  static ConfigDocument from_string(std::string_view yaml, std::string_view source_name,
                                    const std::vector<std::string>& overrides = {});

  ConfigNode root() const;

  /// Throws ConfigError listing every problem recorded and every unknown key.
  void finish() const;

  /// The resolved config (every value read, in reading order) as YAML text.
  std::string resolved_yaml() const;

 private:
  ConfigDocument();
  std::shared_ptr<detail::ConfigState> state_;
};

/// All problems of one config, one per line: "<file>:<line>: <key>: <message>".
class ConfigError : public Error {
 public:
  ConfigError(std::string source, std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

}  // namespace llmfs
