#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <span>

#include "llmfs/ops/kernel_options.h"

namespace llmfs {

class LayerKVCache;

/// Constructor arguments of MultiHeadAttention, named as in the book (§3.6.2).
///
///   MultiHeadAttention att(MultiHeadAttentionOptions(768, 768, 1024, 12).dropout(0.1));
struct MultiHeadAttentionOptions {
  MultiHeadAttentionOptions(int64_t d_in, int64_t d_out, int64_t context_length, int64_t num_heads)
      : d_in_(d_in), d_out_(d_out), context_length_(context_length), num_heads_(num_heads) {}

  TORCH_ARG(int64_t, d_in);
  TORCH_ARG(int64_t, d_out);
  TORCH_ARG(int64_t, context_length);
  TORCH_ARG(int64_t, num_heads);
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(bool, qkv_bias) = false;
  /// false: the book's arithmetic (scores, -inf mask, softmax, dropout, weights @ V);
  /// true: torch::scaled_dot_product_attention (fused kernels; equal in eval mode within 1e-5,
  /// different dropout masks in training). GPTConfig::attention "sdpa" sets it.
  TORCH_ARG(bool, use_sdpa) = false;
  /// GPTConfig::kernels(). With native_kernels: with use_sdpa, training on the CPU with dropout
  /// (where PyTorch's fused attention kernels do not apply) computes scores = (Q Kᵀ) / sqrt(D) +
  /// causal -inf mask in one batched GEMM, softmax, llmfs's fused_dropout, then @ V (equal to the
  /// book's arithmetic up to rounding, other dropout masks); generation sends the four
  /// projections of a single token through llmfs's matrix-vector kernel (linear.h).
  TORCH_ARG(KernelOptions, kernels) = {};
};

/// Causal multi-head self-attention with the weight split of book §3.6.2. Members in the book's
/// order: W_query, W_key, W_value (bias only with qkv_bias), out_proj (with bias), dropout, and
/// the buffer `mask` (context_length x context_length, 1 strictly above the diagonal), so
/// named_parameters()/named_buffers() keys equal the book's state_dict keys.
class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiHeadAttentionImpl(const MultiHeadAttentionOptions& options);

  /// x: (B, T, d_in) -> (B, T, d_out). Without a cache T <= context_length. With a cache, the
  /// new keys and values are appended to it and the T queries attend to every cached position
  /// (the causal rule offset by what was cached before).
  torch::Tensor forward(const torch::Tensor& x, LayerKVCache* cache = nullptr);
  /// The output at one position per row only: x (B, T, d_in), rows (B) int64 in [0, T) ->
  /// (B, 1, d_out), equal to forward(x)[b, rows[b]] (keys and values of every position, the
  /// query, attention and output projection of the chosen one).
  torch::Tensor forward_rows(const torch::Tensor& x, const torch::Tensor& rows);
  /// One new token for each of B independent sequences: x (B, 1, d_in), caches[b] the cache of
  /// row b (each its own length) -> (B, 1, d_out). The projections run batched, each row
  /// attends to its own cache. Row b equals forward(x[b:b+1], caches[b]) up to the rounding of
  /// a batched matrix product (exactly for B = 1).
  torch::Tensor forward_step(const torch::Tensor& x, std::span<LayerKVCache* const> caches);

  int64_t head_dim() const { return options.d_out() / options.num_heads(); }

  MultiHeadAttentionOptions options;
  torch::nn::Linear W_query{nullptr}, W_key{nullptr}, W_value{nullptr}, out_proj{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::Tensor mask;  // (context_length, context_length) float, 1 above the diagonal

 private:
  torch::Tensor attend_book(const torch::Tensor& queries, const torch::Tensor& keys,
                            const torch::Tensor& values);
  torch::Tensor attend_sdpa(const torch::Tensor& queries, const torch::Tensor& keys,
                            const torch::Tensor& values);
  torch::Tensor attend_fused(const torch::Tensor& queries, const torch::Tensor& keys,
                             const torch::Tensor& values);
  // Rows offset..offset+T-1, columns 0..K-1 of the causal mask, as bool (true = masked).
  torch::Tensor mask_rows(int64_t offset, int64_t rows, int64_t columns) const;
};
TORCH_MODULE(MultiHeadAttention);

}  // namespace llmfs
