#include "llmfs/config/cli.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>

#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/log.h"

namespace llmfs {

void add_common_options(CLI::App& app, CommonOptions& options) {
  app.add_option("--config", options.config_path, "YAML config file (default: built-in defaults)")
      ->check(CLI::ExistingFile);
  app.add_flag("--print-config", options.print_config,
               "Print the resolved config as YAML and exit");
  app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error or off");
  app.add_option("overrides", options.overrides, "Config overrides: key.sub=value ...");
}

namespace detail {

void begin_config(const CommonOptions& options) { init_logging(options.log_level); }

void end_config(CommonOptions& options, const ConfigDocument& document) {
  document.finish();
  options.resolved_yaml = document.resolved_yaml();
  if (options.print_config) {
    std::fputs(options.resolved_yaml.c_str(), stdout);
    std::fflush(stdout);
    throw EarlyExit{0};
  }
}

}  // namespace detail

void take_no_config(const CommonOptions& options, std::string_view subcommand,
                    std::string_view hint, bool overrides) {
  if (!options.config_path.empty()) {
    fail("{} takes no config (--config {}): {}", subcommand, options.config_path, hint);
  }
  if (!overrides && !options.overrides.empty()) {
    fail("{} takes no config (overrides {}): {}", subcommand, options.overrides.front(), hint);
  }
  if (options.print_config) fail("{} takes no config to print (--print-config): {}", subcommand, hint);
  init_logging(options.log_level);
}

void write_resolved_config(const std::string& dir, const std::string& yaml) {
  const auto path = std::filesystem::path(dir) / "config.yaml";
  write_file_atomic(path, yaml);
  spdlog::debug("wrote {}", path.string());
}

bool is_launched_rank_other_than_0() {
  const char* world = std::getenv("WORLD_SIZE");
  const char* rank = std::getenv("RANK");
  if (world == nullptr || rank == nullptr) return false;
  char* end = nullptr;
  const long r = std::strtol(rank, &end, 10);
  return *rank != '\0' && *end == '\0' && r > 0;
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    // The narration's own options do nothing for a subcommand, which has its own.
    if (const auto subcommands = app.get_subcommands(); !subcommands.empty()) {
      for (const char* name : {"--section", "--weights"}) {
        const CLI::Option* option = app.get_option_no_throw(name);
        if (option != nullptr && option->count() > 0) {
          throw CLI::ValidationError(
              name, fmt::format("for the narration (no subcommand); it does nothing for `{}`{}",
                                subcommands.front()->get_name(),
                                subcommands.front()->get_option_no_throw(name) != nullptr
                                    ? fmt::format(": give it after `{}`",
                                                  subcommands.front()->get_name())
                                    : ""));
        }
      }
    }
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    if (is_launched_rank_other_than_0()) {  // rank 0 says it, once
      std::ostringstream quiet;
      return app.exit(e, quiet, quiet);
    }
    return app.exit(e);
  }
}

int run_main(const std::function<int()>& body) {
  // What the program printed before the error comes first, also when stdout is a pipe (fully
  // buffered), so the error is the last line of the combined output.
  const auto report = [](std::string_view message) {
    std::fflush(stdout);
    fmt::print(stderr, "error: {}\n", message);
  };
  try {
    return body();
  } catch (const EarlyExit& e) {
    return e.code;
  } catch (const ConfigError& e) {
    // Under torchrun every rank reads the same command line and files: the same error, which
    // rank 0 prints once; the other ranks end with the same code.
    if (!is_launched_rank_other_than_0()) report(e.what());
    return 2;
  } catch (const Error& e) {
    report(e.what());
    return 1;
  } catch (const c10::Error& e) {
    report(e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    report(e.what());
    return 1;
  }
}

}  // namespace llmfs
