// The decode-step matrix-vector product of linear.h: weight rows streamed once, four at a time.
#include "llmfs/ops/linear.h"

#include <ATen/Parallel.h>

#include <algorithm>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define LLMFS_X86 1
#endif

namespace llmfs {

namespace {

#if LLMFS_X86

// y[r] = W[r, :] . x for rows [begin, end); n % 16 == 0 (callers check).
__attribute__((target("avx512f"))) void gemv_rows_avx512(const float* w, const float* x, float* y,
                                                         int64_t n, int64_t begin, int64_t end) {
  int64_t r = begin;
  for (; r + 4 <= end; r += 4) {
    const float* w0 = w + r * n;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < n; i += 16) {
      const __m512 xv = _mm512_loadu_ps(x + i);
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + i), xv, a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + n + i), xv, a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + 2 * n + i), xv, a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + 3 * n + i), xv, a3);
    }
    y[r] = _mm512_reduce_add_ps(a0);
    y[r + 1] = _mm512_reduce_add_ps(a1);
    y[r + 2] = _mm512_reduce_add_ps(a2);
    y[r + 3] = _mm512_reduce_add_ps(a3);
  }
  for (; r < end; ++r) {
    const float* w0 = w + r * n;
    __m512 a0 = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + i), _mm512_loadu_ps(x + i), a0);
    }
    y[r] = _mm512_reduce_add_ps(a0);
  }
}

__attribute__((target("avx2,fma"))) float sum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// As gemv_rows_avx512 with 8-wide registers; n % 16 == 0.
__attribute__((target("avx2,fma"))) void gemv_rows_avx2(const float* w, const float* x, float* y,
                                                        int64_t n, int64_t begin, int64_t end) {
  int64_t r = begin;
  for (; r + 4 <= end; r += 4) {
    const float* w0 = w + r * n;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < n; i += 8) {
      const __m256 xv = _mm256_loadu_ps(x + i);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), xv, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + n + i), xv, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + 2 * n + i), xv, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + 3 * n + i), xv, a3);
    }
    y[r] = sum8(a0);
    y[r + 1] = sum8(a1);
    y[r + 2] = sum8(a2);
    y[r + 3] = sum8(a3);
  }
  for (; r < end; ++r) {
    const float* w0 = w + r * n;
    __m256 a0 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), _mm256_loadu_ps(x + i), a0);
    }
    y[r] = sum8(a0);
  }
}

using RowsKernel = void (*)(const float*, const float*, float*, int64_t, int64_t, int64_t);

RowsKernel rows_kernel() {
  static const RowsKernel kernel = []() -> RowsKernel {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return gemv_rows_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return gemv_rows_avx2;
    return nullptr;
  }();
  return kernel;
}

#else

using RowsKernel = void (*)(const float*, const float*, float*, int64_t, int64_t, int64_t);
RowsKernel rows_kernel() { return nullptr; }

#endif

// One input row, fp32 on the CPU, no autograd to record, a kernel for this CPU.
bool gemv_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (rows_kernel() == nullptr) return false;
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat32 || !x.is_contiguous()) return false;
  if (!weight.device().is_cpu() || weight.scalar_type() != torch::kFloat32 ||
      !weight.is_contiguous() || weight.dim() != 2) {
    return false;
  }
  const int64_t n = weight.size(1);
  if (x.dim() == 0 || x.size(-1) != n || x.numel() != n || n % 16 != 0) return false;
  if (bias.defined() && (!bias.device().is_cpu() || bias.scalar_type() != torch::kFloat32 ||
                         bias.numel() != weight.size(0))) {
    return false;
  }
  if (at::GradMode::is_enabled() &&
      (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()))) {
    return false;
  }
  return true;
}

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     const KernelOptions& kernels) {
  if (!kernels.native_kernels || !gemv_applies(x, weight, bias)) {
    return torch::linear(x, weight, bias);
  }
  const int64_t rows = weight.size(0), n = weight.size(1);
  auto sizes = x.sizes().vec();
  sizes.back() = rows;
  auto y = torch::empty(sizes, x.options());
  const float* w = weight.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const RowsKernel kernel = rows_kernel();
  // Whole blocks of 4 rows per thread, at least ~256 KiB of weights each.
  const int64_t blocks = (rows + 3) / 4;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / n);
  at::parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
    kernel(w, xp, yp, n, begin * 4, std::min(end * 4, rows));
  });
  if (bias.defined()) y.add_(bias);  // (..., rows) + (rows)
  return y;
}

}  // namespace llmfs
