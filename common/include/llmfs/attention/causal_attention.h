#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace llmfs {

/// Constructor arguments of CausalAttention and MultiHeadAttentionWrapper (book §3.5.3, §3.6.1).
///
///   CausalAttention ca(CausalAttentionOptions(3, 2, 6).dropout(0.0));
struct CausalAttentionOptions {
  CausalAttentionOptions(int64_t d_in, int64_t d_out, int64_t context_length)
      : d_in_(d_in), d_out_(d_out), context_length_(context_length) {}

  TORCH_ARG(int64_t, d_in);
  TORCH_ARG(int64_t, d_out);
  TORCH_ARG(int64_t, context_length);
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(bool, qkv_bias) = false;
};

/// Single-head causal self-attention with dropout on the attention weights (book §3.5.3).
/// Members in the book's order: W_query, W_key, W_value, dropout, and the buffer `mask`
/// (context_length x context_length, 1 strictly above the diagonal).
class CausalAttentionImpl : public torch::nn::Module {
 public:
  explicit CausalAttentionImpl(const CausalAttentionOptions& options);

  /// x: (B, T, d_in) -> (B, T, d_out), T <= context_length.
  torch::Tensor forward(const torch::Tensor& x);

  CausalAttentionOptions options;
  torch::nn::Linear W_query{nullptr}, W_key{nullptr}, W_value{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::Tensor mask;
};
TORCH_MODULE(CausalAttention);

/// num_heads independent CausalAttention heads whose outputs are concatenated along the last
/// dimension: (B, T, d_in) -> (B, T, num_heads * d_out) (book §3.6.1). The heads are created
/// one after the other and registered as `heads.0`, `heads.1`, ...
class MultiHeadAttentionWrapperImpl : public torch::nn::Module {
 public:
  MultiHeadAttentionWrapperImpl(const CausalAttentionOptions& options, int64_t num_heads);

  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::ModuleList heads{nullptr};
};
TORCH_MODULE(MultiHeadAttentionWrapper);

/// The causal mask buffer of the book's attention classes: ones strictly above the diagonal,
/// float32, (context_length, context_length).
torch::Tensor causal_mask(int64_t context_length);

}  // namespace llmfs
