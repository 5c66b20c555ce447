// Loads of bf16 vectors for the CPU kernels of ops/ (private to common/src/ops). A bf16 value is
// the top half of a float32, so widening is a shift. x86 only: LLMFS_X86 says whether it is.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define LLMFS_X86 1

namespace llmfs::bf16_vec {

// 32 bf16 values as VDPBF16PS takes them.
__attribute__((target("avx512f,avx512bf16"))) inline __m512bh load32(const void* p) {
  return (__m512bh)_mm512_loadu_si512(p);
}

// 16 bf16 values widened to float32.
__attribute__((target("avx512f"))) inline __m512 widen16(const void* p) {
  const __m256i h = _mm256_loadu_si256(static_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// 8 bf16 values widened to float32.
__attribute__((target("avx2,fma"))) inline __m256 widen8(const void* p) {
  const __m128i h = _mm_loadu_si128(static_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

}  // namespace llmfs::bf16_vec

#endif
