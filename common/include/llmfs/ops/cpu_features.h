#pragma once

#include <string>
#include <string_view>

namespace llmfs {

/// What this CPU's vector units offer, read once per process (CPUID). The environment variable
/// LLMFS_CPU_DISABLE (comma-separated: avx2, avx512f, avx512_bf16, amx_bf16) hides features,
/// so that the fallbacks can be run, and tested, on a machine that has them.
///
///   if (llmfs::cpu_features().avx512_bf16) ...   // VDPBF16PS dot products
struct CpuFeatures {
  bool avx2 = false;         // with FMA
  bool avx512f = false;      // with DQ, BW and VL (Skylake-SP, Zen 4 and later)
  bool avx512_bf16 = false;  // bf16 dot products into float32 (VDPBF16PS)
  bool amx_bf16 = false;     // AMX tiles with bf16 (Sapphire Rapids and later)

  /// Units that multiply bf16 matrices at a multiple of the float32 rate: what bf16 training
  /// on the CPU needs to pay off (oneDNN's bf16 GEMM emulates them, slower than float32, without).
  bool bf16_units() const { return avx512_bf16 || amx_bf16; }
  /// The features present, e.g. "avx2 avx512f avx512_bf16" ("none" when none are).
  std::string describe() const;
};

const CpuFeatures& cpu_features();

/// For tests: cpu_features() answers `features` (less what the CPU lacks) while the guard
/// lives, so one process can compare a kernel with its fallbacks. Not thread-safe.
class CpuFeaturesOverride {
 public:
  explicit CpuFeaturesOverride(const CpuFeatures& features);
  ~CpuFeaturesOverride();
  CpuFeaturesOverride(const CpuFeaturesOverride&) = delete;
  CpuFeaturesOverride& operator=(const CpuFeaturesOverride&) = delete;

 private:
  CpuFeatures saved_;
};

/// Whether the CPU has bf16 units (CpuFeatures::bf16_units). Without them, the first call logs
/// one warning naming `what` and `fallback` (what happens instead); later calls are silent.
bool check_bf16_units(std::string_view what, std::string_view fallback);

}  // namespace llmfs
