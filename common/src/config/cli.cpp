#include "llmfs/config/cli.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

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

void write_resolved_config(const std::string& dir, const std::string& yaml) {
  const auto path = std::filesystem::path(dir) / "config.yaml";
  write_file_atomic(path, yaml);
  spdlog::debug("wrote {}", path.string());
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
    report(e.what());
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
