// Precompiled header: what most translation units include and rarely changes. No llmfs headers.
#pragma once

#include <torch/torch.h>  // ~9 s and ~1 GB per translation unit without this PCH
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
