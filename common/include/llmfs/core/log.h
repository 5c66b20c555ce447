#pragma once

#include <string_view>

namespace llmfs {

/// Sets up spdlog once: one stderr sink, pattern `%H:%M:%S %^%-5l%$ %v`, the given level
/// (trace, debug, info, warn, error, off). Throws llmfs::Error for an unknown level.
void init_logging(std::string_view level = "info");

}  // namespace llmfs
