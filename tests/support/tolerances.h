// Named tolerances, each with its reason. Use the one the issue or BOOK.md states.
#pragma once

namespace llmfs::test {

/// BOOK.md §0.3: numbers printed with 4 decimals must be within 1e-4 of the printed value.
inline constexpr double kBookPrinted4 = 1e-4;

/// fp32 on CPU against the same PyTorch kernels (Python reference, same build): near-exact.
inline constexpr double kSameKernelsAtol = 1e-5;

/// fp32 on CPU, a different but equivalent computation order (e.g. HF's fused qkv): 1e-4.
inline constexpr double kReorderedAtol = 1e-4;

}  // namespace llmfs::test
