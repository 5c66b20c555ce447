#pragma once

#include <torch/torch.h>

namespace llmfs {

/// Whether decode_attention takes these: bf16 on the CPU, one query per sequence, keys and
/// values of the same shape with a contiguous last dimension, a head size that is a multiple of
/// 32, and a CPU with AVX512-BF16 (cpu_features.h).
bool decode_attention_applies(const torch::Tensor& queries, const torch::Tensor& keys,
                              const torch::Tensor& values);

/// One new token's attention to its cached keys and values, in bf16 on the CPU: queries
/// (B, H, 1, D), keys and values (B, H, K, D) (views into a KV cache; any strides but the last)
/// -> softmax(q kᵀ / sqrt(D)) v, (B, H, 1, D) bf16. Scores, weights and sums in float32, as in
/// PyTorch's flash kernel, which for a single query makes two small GEMM calls per head (24
/// per layer of GPT-2) that cost more than their arithmetic; here one pass over the keys for
/// all heads, a softmax, one pass over the values. Check decode_attention_applies first.
torch::Tensor decode_attention(const torch::Tensor& queries, const torch::Tensor& keys,
                               const torch::Tensor& values);

}  // namespace llmfs
