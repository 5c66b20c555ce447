#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace llmfs {

/// Self-attention with raw trainable d_in x d_out matrices (book §3.4.2, the first version).
/// The three matrices are filled with uniform [0, 1) draws in the order query, key, value, so
/// torch::manual_seed(123) reproduces the book's weights (C3-19).
class SelfAttention_v1Impl : public torch::nn::Module {
 public:
  SelfAttention_v1Impl(int64_t d_in, int64_t d_out);

  /// x: (T, d_in) -> (T, d_out); also accepts a batch (B, T, d_in).
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor W_query, W_key, W_value;  // (d_in, d_out): x @ W
};
TORCH_MODULE(SelfAttention_v1);

/// Self-attention with three linear layers d_in -> d_out (book §3.4.2, the second version),
/// created in the order query, key, value. The book seeds 789 before constructing it (C3-20).
class SelfAttention_v2Impl : public torch::nn::Module {
 public:
  SelfAttention_v2Impl(int64_t d_in, int64_t d_out, bool qkv_bias = false);

  /// x: (T, d_in) -> (T, d_out); also accepts a batch (B, T, d_in).
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear W_query{nullptr}, W_key{nullptr}, W_value{nullptr};
};
TORCH_MODULE(SelfAttention_v2);

}  // namespace llmfs
