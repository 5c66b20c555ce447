#include "llmfs/core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

#include "llmfs/core/error.h"

namespace llmfs {

void init_logging(std::string_view level) {
  const auto parsed = spdlog::level::from_str(std::string(level));
  // from_str maps anything unknown to "off"; only "off" itself may mean off.
  if (parsed == spdlog::level::off && level != "off") {
    fail("--log-level: unknown level '{}' (use trace, debug, info, warn, error or off)", level);
  }
  auto logger = spdlog::get("llmfs");
  if (!logger) logger = spdlog::stderr_color_mt("llmfs");
  logger->set_pattern("%H:%M:%S %^%-5l%$ %v");
  logger->set_level(parsed);
  spdlog::set_default_logger(logger);
}

}  // namespace llmfs
