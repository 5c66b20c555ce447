// The decode-step matrix-vector products of linear.h: weight rows streamed once, four at a time,
// float32 or bf16 weights.
#include "llmfs/ops/linear.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

#include "bf16_vec.h"
#include "llmfs/ops/cpu_features.h"

namespace llmfs {

namespace {

#if LLMFS_X86

using bf16_vec::load32;
using bf16_vec::widen16;
using bf16_vec::widen8;

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

// bf16 weights: y[r] = W[r, :] . x in float32 for rows [begin, end). x comes twice, as bf16
// (xb, for the dot-product instruction) and as float32 (xf, for the kernels that convert W).

// The next block of `rows` rows, in address order: one 64-byte line per row and 32-element step,
// so the whole block is in cache when its turn comes. bf16 rows are short (1.5 KiB for 768
// columns): the hardware prefetcher, which follows each row as a stream of its own, does not
// ramp up on them, and without this the kernel reads at about the float32 kernel's bytes/s.
// Measured with all of GPT-2 124M's matrices on huge pages (2 threads, Zen 4): ~27 GB/s
// without, ~55 GB/s with, the memory's copy bandwidth. Past the end of the matrix it prefetches
// nothing useful, and prefetches never fault.
__attribute__((target("avx512f"))) inline void prefetch_next_block(const uint16_t* block, int64_t rows,
                                                                   int64_t n, int64_t i, int k) {
  _mm_prefetch(reinterpret_cast<const char*>(block + rows * n + i * rows) + k * 64, _MM_HINT_T0);
}

// VDPBF16PS: 32 bf16 products per instruction, summed in pairs into 16 float32 lanes; n % 32 == 0.
__attribute__((target("avx512f,avx512bf16"))) void gemv_bf16_rows_dp(
    const uint16_t* w, const uint16_t* xb, const float*, float* y, int64_t n, int64_t begin,
    int64_t end) {
  int64_t r = begin;
  for (; r + 4 <= end; r += 4) {
    const uint16_t* w0 = w + r * n;
    __m512 a[4];
    for (auto& v : a) v = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 32) {
      const __m512bh xv = load32(xb + i);
      for (int k = 0; k < 4; ++k) {
        prefetch_next_block(w0, 4, n, i, k);
        a[k] = _mm512_dpbf16_ps(a[k], load32(w0 + k * n + i), xv);
      }
    }
    for (int k = 0; k < 4; ++k) y[r + k] = _mm512_reduce_add_ps(a[k]);
  }
  for (; r < end; ++r) {
    __m512 a0 = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 32) a0 = _mm512_dpbf16_ps(a0, load32(w + r * n + i), load32(xb + i));
    y[r] = _mm512_reduce_add_ps(a0);
  }
}

// Without VDPBF16PS: the weights widened to float32, then FMAs.
__attribute__((target("avx512f"))) void gemv_bf16_rows_avx512(const uint16_t* w, const uint16_t*,
                                                              const float* x, float* y, int64_t n,
                                                              int64_t begin, int64_t end) {
  int64_t r = begin;
  for (; r + 4 <= end; r += 4) {
    const uint16_t* w0 = w + r * n;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < n; i += 16) {
      if (i % 32 == 0) {
        for (int k = 0; k < 4; ++k) prefetch_next_block(w0, 4, n, i, k);
      }
      const __m512 xv = _mm512_loadu_ps(x + i);
      a0 = _mm512_fmadd_ps(widen16(w0 + i), xv, a0);
      a1 = _mm512_fmadd_ps(widen16(w0 + n + i), xv, a1);
      a2 = _mm512_fmadd_ps(widen16(w0 + 2 * n + i), xv, a2);
      a3 = _mm512_fmadd_ps(widen16(w0 + 3 * n + i), xv, a3);
    }
    y[r] = _mm512_reduce_add_ps(a0);
    y[r + 1] = _mm512_reduce_add_ps(a1);
    y[r + 2] = _mm512_reduce_add_ps(a2);
    y[r + 3] = _mm512_reduce_add_ps(a3);
  }
  for (; r < end; ++r) {
    __m512 a0 = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
      a0 = _mm512_fmadd_ps(widen16(w + r * n + i), _mm512_loadu_ps(x + i), a0);
    }
    y[r] = _mm512_reduce_add_ps(a0);
  }
}

__attribute__((target("avx2,fma"))) void gemv_bf16_rows_avx2(const uint16_t* w, const uint16_t*,
                                                             const float* x, float* y, int64_t n,
                                                             int64_t begin, int64_t end) {
  int64_t r = begin;
  for (; r + 4 <= end; r += 4) {
    const uint16_t* w0 = w + r * n;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < n; i += 8) {
      const __m256 xv = _mm256_loadu_ps(x + i);
      a0 = _mm256_fmadd_ps(widen8(w0 + i), xv, a0);
      a1 = _mm256_fmadd_ps(widen8(w0 + n + i), xv, a1);
      a2 = _mm256_fmadd_ps(widen8(w0 + 2 * n + i), xv, a2);
      a3 = _mm256_fmadd_ps(widen8(w0 + 3 * n + i), xv, a3);
    }
    y[r] = sum8(a0);
    y[r + 1] = sum8(a1);
    y[r + 2] = sum8(a2);
    y[r + 3] = sum8(a3);
  }
  for (; r < end; ++r) {
    __m256 a0 = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
      a0 = _mm256_fmadd_ps(widen8(w + r * n + i), _mm256_loadu_ps(x + i), a0);
    }
    y[r] = sum8(a0);
  }
}

using RowsKernel = void (*)(const float*, const float*, float*, int64_t, int64_t, int64_t);
using Bf16RowsKernel = void (*)(const uint16_t*, const uint16_t*, const float*, float*, int64_t,
                                int64_t, int64_t);

RowsKernel rows_kernel() {
  const CpuFeatures& cpu = cpu_features();
  if (cpu.avx512f) return gemv_rows_avx512;
  if (cpu.avx2) return gemv_rows_avx2;
  return nullptr;
}

Bf16RowsKernel bf16_rows_kernel() {
  const CpuFeatures& cpu = cpu_features();
  if (cpu.avx512_bf16) return gemv_bf16_rows_dp;
  if (cpu.avx512f) return gemv_bf16_rows_avx512;
  if (cpu.avx2) return gemv_bf16_rows_avx2;
  return nullptr;
}

#else

using RowsKernel = void (*)(const float*, const float*, float*, int64_t, int64_t, int64_t);
using Bf16RowsKernel = void (*)(const uint16_t*, const uint16_t*, const float*, float*, int64_t,
                                int64_t, int64_t);
RowsKernel rows_kernel() { return nullptr; }
Bf16RowsKernel bf16_rows_kernel() { return nullptr; }

#endif

// One input row on the CPU, float32 or bf16 alike for x, weight and bias, no autograd to record,
// a kernel for this CPU and dtype.
bool gemv_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const auto dtype = weight.scalar_type();
  if (dtype == torch::kFloat32) {
    if (rows_kernel() == nullptr) return false;
  } else if (dtype == torch::kBFloat16) {
    if (bf16_rows_kernel() == nullptr) return false;
  } else {
    return false;
  }
  if (!x.device().is_cpu() || x.scalar_type() != dtype || !x.is_contiguous()) return false;
  if (!weight.device().is_cpu() || !weight.is_contiguous() || weight.dim() != 2) return false;
  const int64_t n = weight.size(1);
  const int64_t multiple = dtype == torch::kFloat32 ? 16 : 32;  // the kernels' vector widths
  if (x.dim() == 0 || x.size(-1) != n || x.numel() != n || n % multiple != 0) return false;
  if (bias.defined() && (!bias.device().is_cpu() || bias.scalar_type() != dtype ||
                         bias.numel() != weight.size(0))) {
    return false;
  }
  if (at::GradMode::is_enabled() &&
      (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()))) {
    return false;
  }
  return true;
}

// x (..., n) with one row -> (..., rows) in out_dtype (float32, or bf16 for bf16 weights): the
// row kernels over the intra-op threads. The bias is added and the result rounded (bf16) by the
// thread that computed the rows, in the same pass.
torch::Tensor gemv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                   at::ScalarType out_dtype) {
  const int64_t rows = weight.size(0), n = weight.size(1);
  auto sizes = x.sizes().vec();
  sizes.back() = rows;
  auto out = torch::empty(sizes, x.options().dtype(out_dtype));
  const bool to_bf16 = out_dtype == torch::kBFloat16;
  // float32 sums: straight into a float32 result, through a scratch row for a bf16 one.
  auto sums = to_bf16 ? torch::empty({rows}, x.options().dtype(torch::kFloat32)) : out;
  float* y = sums.data_ptr<float>();
  const auto finish = [&](int64_t begin, int64_t end) {
    if (bias.defined()) {
      if (bias.scalar_type() == torch::kFloat32) {
        const float* b = bias.data_ptr<float>();
        for (int64_t r = begin; r < end; ++r) y[r] += b[r];
      } else {
        const at::BFloat16* b = bias.data_ptr<at::BFloat16>();
        for (int64_t r = begin; r < end; ++r) y[r] += static_cast<float>(b[r]);
      }
    }
    if (to_bf16) {
      at::BFloat16* o = out.data_ptr<at::BFloat16>();
      for (int64_t r = begin; r < end; ++r) o[r] = at::BFloat16(y[r]);  // round to nearest even
    }
  };
  // Whole blocks of 4 rows per thread, at least ~256 KiB of float32 weights each.
  const int64_t blocks = (rows + 3) / 4;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / n);
  if (weight.scalar_type() == torch::kFloat32) {
    const float* w = weight.data_ptr<float>();
    const float* xp = x.data_ptr<float>();
    const RowsKernel kernel = rows_kernel();
    at::parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
      kernel(w, xp, y, n, begin * 4, std::min(end * 4, rows));
      finish(begin * 4, std::min(end * 4, rows));
    });
  } else {
    const auto* w = reinterpret_cast<const uint16_t*>(weight.data_ptr<at::BFloat16>());
    const auto* xb = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
    // The dot-product kernel takes x as it is; the others multiply in float32.
    const auto xf = cpu_features().avx512_bf16 ? torch::Tensor() : x.to(torch::kFloat32);
    const float* xfp = xf.defined() ? xf.data_ptr<float>() : nullptr;
    const Bf16RowsKernel kernel = bf16_rows_kernel();
    at::parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
      kernel(w, xb, xfp, y, n, begin * 4, std::min(end * 4, rows));
      finish(begin * 4, std::min(end * 4, rows));
    });
  }
  return out;
}

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     const KernelOptions& kernels) {
  if (!kernels.native_kernels || !gemv_applies(x, weight, bias)) {
    return torch::linear(x, weight, bias);
  }
  return gemv(x, weight, bias, weight.scalar_type());
}

torch::Tensor linear_float32(const torch::Tensor& x, const torch::Tensor& weight,
                             const torch::Tensor& bias, const KernelOptions& kernels) {
  if (weight.scalar_type() != torch::kBFloat16) return linear(x, weight, bias, kernels);
  if (kernels.native_kernels && gemv_applies(x, weight, bias)) {
    return gemv(x, weight, bias, torch::kFloat32);
  }
  // Several rows (a prompt), another device: the dtype's own product, widened.
  return torch::linear(x, weight, bias).to(torch::kFloat32);
}

}  // namespace llmfs
