// The two non-causal self-attention classes of book §3.4: softmax(Q Kᵀ / √d_k) V.
#include "llmfs/attention/self_attention.h"

#include <cmath>

#include "llmfs/ops/linear.h"

namespace llmfs {

namespace {

// softmax(Q Kᵀ / √d_k) V with d_k = the key width, as the book writes it (§3.4.1).
torch::Tensor scaled_attention(const torch::Tensor& queries, const torch::Tensor& keys,
                               const torch::Tensor& values) {
  const auto attn_scores = torch::matmul(queries, keys.transpose(-2, -1));  // omega
  const double scale = std::sqrt(static_cast<double>(keys.size(-1)));
  const auto attn_weights = torch::softmax(attn_scores / scale, -1);
  return torch::matmul(attn_weights, values);
}

torch::nn::Linear make_linear_layer(int64_t in, int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

}  // namespace

SelfAttention_v1Impl::SelfAttention_v1Impl(int64_t d_in, int64_t d_out) {
  TORCH_CHECK(d_in > 0 && d_out > 0, "SelfAttention_v1: d_in and d_out must be positive");
  // One statement per draw: the order query, key, value fixes the seeded weights.
  W_query = register_parameter("W_query", torch::rand({d_in, d_out}));
  W_key = register_parameter("W_key", torch::rand({d_in, d_out}));
  W_value = register_parameter("W_value", torch::rand({d_in, d_out}));
}

torch::Tensor SelfAttention_v1Impl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 2 || x.dim() == 3,
              "SelfAttention_v1: expected (T, d_in) or (B, T, d_in), got ", x.sizes());
  const auto keys = torch::matmul(x, W_key);
  const auto queries = torch::matmul(x, W_query);
  const auto values = torch::matmul(x, W_value);
  return scaled_attention(queries, keys, values);
}

SelfAttention_v2Impl::SelfAttention_v2Impl(int64_t d_in, int64_t d_out, bool qkv_bias) {
  TORCH_CHECK(d_in > 0 && d_out > 0, "SelfAttention_v2: d_in and d_out must be positive");
  W_query = register_module("W_query", make_linear_layer(d_in, d_out, qkv_bias));
  W_key = register_module("W_key", make_linear_layer(d_in, d_out, qkv_bias));
  W_value = register_module("W_value", make_linear_layer(d_in, d_out, qkv_bias));
}

torch::Tensor SelfAttention_v2Impl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 2 || x.dim() == 3,
              "SelfAttention_v2: expected (T, d_in) or (B, T, d_in), got ", x.sizes());
  const auto keys = linear(W_key, x);
  const auto queries = linear(W_query, x);
  const auto values = linear(W_value, x);
  return scaled_attention(queries, keys, values);
}

}  // namespace llmfs
