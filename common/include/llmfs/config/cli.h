#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmfs/config/config_node.h"

namespace CLI {
class App;
}

namespace llmfs {

/// Command-line options every chapter executable shares.
struct CommonOptions {
  std::string config_path;             // --config FILE (empty: the built-in defaults)
  std::vector<std::string> overrides;  // key.sub=value ...
  bool print_config = false;           // --print-config: print the resolved YAML and exit
  std::string log_level = "info";      // --log-level
  /// Filled by load_config: the resolved config as YAML (every value read, given or default),
  /// which a run saves with its outputs (TrainerOptions::config_yaml, write_resolved_config).
  std::string resolved_yaml;
};

/// Adds --config, --print-config, --log-level and the positional `key.sub=value` overrides.
/// Call it for the app and for each subcommand, with the same CommonOptions.
void add_common_options(CLI::App& app, CommonOptions& options);

/// Loads a config: the file (if any) plus overrides, read by `parse` into a struct. Also sets up
/// logging. Throws ConfigError listing every problem; with --print-config, prints the resolved
/// YAML to stdout and ends the program (EarlyExit). The resolved YAML goes into
/// options.resolved_yaml.
template <typename Config>
Config load_config(CommonOptions& options, const std::function<Config(ConfigNode)>& parse);

/// For a subcommand that loads no config of its own (the config options are shared by every
/// subcommand): llmfs::Error naming it when --config, --print-config or (unless `overrides`
/// are taken) an override was given, with `hint` saying what to do; else sets up logging
/// (--log-level), as load_config does.
void take_no_config(const CommonOptions& options, std::string_view subcommand,
                    std::string_view hint, bool overrides = false);

/// Writes a resolved config as `dir/config.yaml` (atomically), as every run does with its outputs.
void write_resolved_config(const std::string& dir, const std::string& yaml);

/// Parses a chapter's command line (CLI11's parse, as CLI11_PARSE does): nullopt to go on, else
/// the exit code after CLI11 printed the usage error or the help.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

/// Runs a chapter's body: maps exceptions to one line on stderr per problem and an exit code
/// (2 for config errors, 1 for everything else), and EarlyExit to its code.
///
/// Under torchrun (WORLD_SIZE and RANK set) a command-line or config error is printed by rank 0
/// alone: every rank reads the same arguments and files and would print the same line; the
/// other ranks exit with the same code and say nothing.
int run_main(const std::function<int()>& body);

/// Whether this process is a rank other than 0 of a run torchrun launched.
bool is_launched_rank_other_than_0();

// --- implementation --------------------------------------------------------------------

namespace detail {
void begin_config(const CommonOptions& options);
void end_config(CommonOptions& options, const ConfigDocument& document);
}  // namespace detail

template <typename Config>
Config load_config(CommonOptions& options, const std::function<Config(ConfigNode)>& parse) {
  detail::begin_config(options);
  ConfigDocument document(options.config_path, options.overrides);
  Config config = parse(document.root());
  detail::end_config(options, document);
  return config;
}

}  // namespace llmfs
