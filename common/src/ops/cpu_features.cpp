// CPU feature detection for the kernels that pick an instruction set at run time.
#include "llmfs/ops/cpu_features.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <vector>

namespace llmfs {

namespace {

bool disabled(std::string_view list, std::string_view name) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    if (list.substr(start, end - start) == name) return true;
    start = end + 1;
  }
  return false;
}

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
              __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  f.avx512_bf16 = f.avx512f && __builtin_cpu_supports("avx512bf16");
  f.amx_bf16 = __builtin_cpu_supports("amx-bf16");
#endif
  const char* env = std::getenv("LLMFS_CPU_DISABLE");
  const std::string_view off = env ? env : "";
  if (disabled(off, "avx2")) f.avx2 = false;
  if (disabled(off, "avx512f") || !f.avx2) f.avx512f = false;
  if (disabled(off, "avx512_bf16") || !f.avx512f) f.avx512_bf16 = false;
  if (disabled(off, "amx_bf16")) f.amx_bf16 = false;
  return f;
}

}  // namespace

std::string CpuFeatures::describe() const {
  std::vector<std::string_view> names;
  if (avx2) names.push_back("avx2");
  if (avx512f) names.push_back("avx512f");
  if (avx512_bf16) names.push_back("avx512_bf16");
  if (amx_bf16) names.push_back("amx_bf16");
  if (names.empty()) return "none";
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ' ';
    out += n;
  }
  return out;
}

namespace {

CpuFeatures& current_features() {
  static CpuFeatures features = detect();
  return features;
}

}  // namespace

const CpuFeatures& cpu_features() { return current_features(); }

CpuFeaturesOverride::CpuFeaturesOverride(const CpuFeatures& features) : saved_(cpu_features()) {
  CpuFeatures& now = current_features();
  now.avx2 = features.avx2 && saved_.avx2;
  now.avx512f = features.avx512f && saved_.avx512f;
  now.avx512_bf16 = features.avx512_bf16 && saved_.avx512_bf16;
  now.amx_bf16 = features.amx_bf16 && saved_.amx_bf16;
}

CpuFeaturesOverride::~CpuFeaturesOverride() { current_features() = saved_; }

bool check_bf16_units(std::string_view what, std::string_view fallback) {
  if (cpu_features().bf16_units()) return true;
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true)) {
    spdlog::warn("{}: this CPU has no bf16 units (AVX512-BF16 or AMX; it has: {}); {}", what,
                 cpu_features().describe(), fallback);
  }
  return false;
}

}  // namespace llmfs
