// Attention of one query per sequence to a bf16 KV cache: VDPBF16PS scores, a softmax, FMAs.
#include "llmfs/ops/decode_attention.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "bf16_vec.h"
#include "llmfs/ops/cpu_features.h"

namespace llmfs {

namespace {

#if LLMFS_X86

using bf16_vec::load32;
using bf16_vec::widen16;

// s[j] = scale * q . k_j for the K keys of one head (key j at k + j * stride); d % 32 == 0.
__attribute__((target("avx512f,avx512bf16"))) void head_scores(const at::BFloat16* q,
                                                               const at::BFloat16* k,
                                                               int64_t stride, int64_t keys,
                                                               int64_t d, float scale, float* s) {
  for (int64_t j = 0; j < keys; ++j) {
    const at::BFloat16* kj = k + j * stride;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < d; i += 32) acc = _mm512_dpbf16_ps(acc, load32(kj + i), load32(q + i));
    s[j] = scale * _mm512_reduce_add_ps(acc);
  }
}

// out = sum_j w[j] v_j in float32 (acc, d floats), rounded to bf16 once; d % 16 == 0.
__attribute__((target("avx512f"))) void head_values(const float* w, const at::BFloat16* v,
                                                    int64_t stride, int64_t keys, int64_t d,
                                                    float* acc, at::BFloat16* out) {
  for (int64_t i = 0; i < d; i += 16) _mm512_storeu_ps(acc + i, _mm512_setzero_ps());
  for (int64_t j = 0; j < keys; ++j) {
    const __m512 wj = _mm512_set1_ps(w[j]);
    const at::BFloat16* vj = v + j * stride;
    for (int64_t i = 0; i < d; i += 16) {
      _mm512_storeu_ps(acc + i, _mm512_fmadd_ps(wj, widen16(vj + i), _mm512_loadu_ps(acc + i)));
    }
  }
  for (int64_t i = 0; i < d; ++i) out[i] = at::BFloat16(acc[i]);
}

#endif

}  // namespace

bool decode_attention_applies(const torch::Tensor& queries, const torch::Tensor& keys,
                              const torch::Tensor& values) {
#if LLMFS_X86
  if (!cpu_features().avx512_bf16) return false;
  for (const auto* t : {&queries, &keys, &values}) {
    if (!t->device().is_cpu() || t->scalar_type() != torch::kBFloat16 || t->dim() != 4 ||
        t->stride(3) != 1) {
      return false;
    }
  }
  const int64_t d = queries.size(3);
  return queries.size(2) == 1 && d % 32 == 0 && d <= 1024 && keys.sizes() == values.sizes() &&
         keys.size(0) == queries.size(0) && keys.size(1) == queries.size(1) && keys.size(3) == d &&
         keys.size(2) > 0 &&
         !(at::GradMode::is_enabled() &&
           (queries.requires_grad() || keys.requires_grad() || values.requires_grad()));
#else
  (void)queries, (void)keys, (void)values;
  return false;
#endif
}

torch::Tensor decode_attention(const torch::Tensor& queries, const torch::Tensor& keys,
                               const torch::Tensor& values) {
  TORCH_CHECK(decode_attention_applies(queries, keys, values),
              "decode_attention: unsupported inputs (check decode_attention_applies)");
#if LLMFS_X86
  const int64_t b = queries.size(0), h = queries.size(1), n = keys.size(2), d = queries.size(3);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  auto scores = torch::empty({b, h, n}, queries.options().dtype(torch::kFloat32));
  float* s = scores.data_ptr<float>();
  const at::BFloat16* q = queries.data_ptr<at::BFloat16>();
  const at::BFloat16* k = keys.data_ptr<at::BFloat16>();
  const at::BFloat16* v = values.data_ptr<at::BFloat16>();
  const auto at_head = [](const torch::Tensor& t, const at::BFloat16* base, int64_t bh, int64_t heads) {
    return base + (bh / heads) * t.stride(0) + (bh % heads) * t.stride(1);
  };
  at::parallel_for(0, b * h, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) {
      head_scores(at_head(queries, q, bh, h), at_head(keys, k, bh, h), keys.stride(2), n, d,
                  scale, s + bh * n);
    }
  });
  const auto weights = torch::softmax(scores, -1);  // float32, over the keys of each head
  const float* w = weights.data_ptr<float>();
  auto out = torch::empty({b, h, 1, d}, queries.options());
  at::BFloat16* o = out.data_ptr<at::BFloat16>();
  at::parallel_for(0, b * h, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(static_cast<size_t>(d));
    for (int64_t bh = begin; bh < end; ++bh) {
      head_values(w + bh * n, at_head(values, v, bh, h), values.stride(2), n, d, acc.data(),
                  o + bh * d);
    }
  });
  return out;
#else
  return {};
#endif
}

}  // namespace llmfs
