// Dropout with a counter-based mask: one pass forward, one pass backward, no mask tensor.
#include "llmfs/ops/fused_dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <type_traits>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "llmfs/ops/cpu_features.h"

namespace llmfs {

namespace {

// SplitMix64 (Steele, Lea, Flood 2014): a fast 64-bit mixer; two 32-bit keep tests per value.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

constexpr uint64_t kPairMul = 0xD1B54A32D192ED03ull;

// dst[i] = keep(i) ? src[i] * scale : 0 for the elements of pairs [begin, end) (of n elements),
// keep(2p) and keep(2p + 1) from the low and high halves of the pair's hash of (seed, p).
template <typename T>
void mask_pairs(const T* src, T* dst, int64_t begin, int64_t end, int64_t n, uint64_t seed,
                uint32_t threshold, float scale) {
  for (int64_t pair = begin; pair < end; ++pair) {
    const uint64_t h = splitmix64(seed ^ (static_cast<uint64_t>(pair) * kPairMul));
    const int64_t i = 2 * pair;
    const bool keep0 = static_cast<uint32_t>(h) >= threshold;
    dst[i] = keep0 ? static_cast<T>(static_cast<float>(src[i]) * scale) : static_cast<T>(0);
    if (i + 1 < n) {
      const bool keep1 = static_cast<uint32_t>(h >> 32) >= threshold;
      dst[i + 1] = keep1 ? static_cast<T>(static_cast<float>(src[i + 1]) * scale) : static_cast<T>(0);
    }
  }
}

#if defined(__x86_64__) || defined(_M_X64)
#define LLMFS_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))

// The same masks 16 elements at a time: 8 pair hashes in 64-bit lanes, which read as 16 32-bit
// lanes put low(h_j), high(h_j) at lanes 2j, 2j + 1, the keep tests of elements 2j, 2j + 1.
// body(i, keep) writes elements [i, i + 16). Returns the first pair left to the scalar loop (the
// pairs from there on that do not fill 16 elements below n).
template <typename Body>
LLMFS_AVX512 inline int64_t mask_pairs_avx512(int64_t pair, int64_t end, int64_t n, uint64_t seed,
                                              uint32_t threshold, Body&& body) {
  const int64_t vec_end = std::min(end, n / 2);
  if (pair + 8 > vec_end) return pair;
  const __m512i seed_v = _mm512_set1_epi64(static_cast<long long>(seed));
  const __m512i golden = _mm512_set1_epi64(static_cast<long long>(0x9E3779B97F4A7C15ull));
  const __m512i m1 = _mm512_set1_epi64(static_cast<long long>(0xBF58476D1CE4E5B9ull));
  const __m512i m2 = _mm512_set1_epi64(static_cast<long long>(0x94D049BB133111EBull));
  const __m512i thr = _mm512_set1_epi32(static_cast<int>(threshold));
  // pair * kPairMul per lane, advanced by 8 * kPairMul (exact modulo 2^64).
  const __m512i step = _mm512_set1_epi64(static_cast<long long>(8 * kPairMul));
  __m512i ctr = _mm512_mullo_epi64(
      _mm512_add_epi64(_mm512_set1_epi64(pair), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7)),
      _mm512_set1_epi64(static_cast<long long>(kPairMul)));
  for (; pair + 8 <= vec_end; pair += 8, ctr = _mm512_add_epi64(ctr, step)) {
    __m512i x = _mm512_add_epi64(_mm512_xor_si512(ctr, seed_v), golden);
    x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 30)), m1);
    x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 27)), m2);
    x = _mm512_xor_si512(x, _mm512_srli_epi64(x, 31));
    body(2 * pair, _mm512_cmpge_epu32_mask(x, thr));
  }
  return pair;
}

LLMFS_AVX512 void mask_pairs_avx512(const float* src, float* dst, int64_t begin, int64_t end,
                                    int64_t n, uint64_t seed, uint32_t threshold, float scale) {
  const __m512 s = _mm512_set1_ps(scale);
  const int64_t rest = mask_pairs_avx512(begin, end, n, seed, threshold,
                                         [&](int64_t i, __mmask16 keep) LLMFS_AVX512 {
    // maskz: dropped lanes become +0.0f, as static_cast<float>(0).
    _mm512_storeu_ps(dst + i, _mm512_maskz_mul_ps(keep, _mm512_loadu_ps(src + i), s));
  });
  mask_pairs(src, dst, rest, end, n, seed, threshold, scale);
}

LLMFS_AVX512 void mask_pairs_avx512(const at::BFloat16* src, at::BFloat16* dst, int64_t begin,
                                    int64_t end, int64_t n, uint64_t seed, uint32_t threshold,
                                    float scale) {
  const __m512 s = _mm512_set1_ps(scale);
  const __m512i round = _mm512_set1_epi32(0x7FFF);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i qnan = _mm512_set1_epi32(0x7FC0);
  const int64_t rest = mask_pairs_avx512(begin, end, n, seed, threshold,
                                         [&](int64_t i, __mmask16 keep) LLMFS_AVX512 {
    // bf16 -> float32: the 16 bits moved to the top of a 32-bit lane.
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
    const __m512 y = _mm512_maskz_mul_ps(keep, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)), s);
    // float32 -> bf16 as c10::BFloat16 rounds: u + 0x7FFF + ((u >> 16) & 1), top 16 bits; NaN -> 0x7FC0.
    const __m512i u = _mm512_castps_si512(y);
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, round), _mm512_and_si512(_mm512_srli_epi32(u, 16), one));
    r = _mm512_mask_mov_epi32(_mm512_srli_epi32(r, 16), _mm512_cmp_ps_mask(y, y, _CMP_UNORD_Q), qnan);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtepi32_epi16(r));
  });
  mask_pairs(src, dst, rest, end, n, seed, threshold, scale);
}
#endif

// dst[i] = keep(i) ? src[i] * scale : 0 for i in [0, n), keep(i) from (seed, i).
template <typename T>
void apply_mask(const T* src, T* dst, int64_t n, uint64_t seed, uint32_t threshold, float scale) {
  // The same masks on every CPU; AVX-512 computes them 16 at a time.
  bool vector = false;
#if defined(__x86_64__) || defined(_M_X64)
  vector = !std::is_same_v<T, double> && cpu_features().avx512f;
#endif
  // Pairs of elements share one hash: chunks are whole pairs.
  at::parallel_for(0, (n + 1) / 2, 16384, [&](int64_t begin, int64_t end) {
#if defined(__x86_64__) || defined(_M_X64)
    if constexpr (!std::is_same_v<T, double>) {
      if (vector) return mask_pairs_avx512(src, dst, begin, end, n, seed, threshold, scale);
    }
#endif
    mask_pairs(src, dst, begin, end, n, seed, threshold, scale);
  });
}

torch::Tensor masked(const torch::Tensor& x, uint64_t seed, double p) {
  const auto src = x.contiguous();
  auto out = torch::empty_like(src, torch::MemoryFormat::Contiguous);
  // Keep when the 32-bit hash >= p * 2^32: probability 1 - p within 2^-32.
  const auto threshold = static_cast<uint32_t>(
      std::min(std::ldexp(p, 32), static_cast<double>(std::numeric_limits<uint32_t>::max())));
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, src.scalar_type(), "fused_dropout", [&] {
    apply_mask<scalar_t>(src.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), src.numel(), seed,
                         threshold, scale);
  });
  return out;
}

class FusedDropoutFunction : public torch::autograd::Function<FusedDropoutFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               double p, int64_t seed) {
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    return masked(x, static_cast<uint64_t>(seed), p);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    // The same mask from the same seed: d(x * m * s)/dx = m * s.
    const double p = ctx->saved_data["p"].toDouble();
    const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    return {masked(grads[0], seed, p), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor fused_dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p == 0.0) return x;
  const bool supported = x.device().is_cpu() &&
                         (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64 ||
                          x.scalar_type() == torch::kBFloat16);
  if (!supported || p >= 1.0) return torch::dropout(x, p, training);
  int64_t seed = 0;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    seed = static_cast<int64_t>(at::check_generator<at::CPUGeneratorImpl>(gen)->random64());
  }
  return FusedDropoutFunction::apply(x, p, seed);
}

}  // namespace llmfs
