// Causal single-head attention and the multi-head wrapper of book §3.5.3 and §3.6.1.
#include "llmfs/attention/causal_attention.h"

#include <cmath>
#include <limits>

#include "llmfs/ops/linear.h"

namespace llmfs {

torch::Tensor causal_mask(int64_t context_length) {
  return torch::triu(torch::ones({context_length, context_length}), /*diagonal=*/1);
}

CausalAttentionImpl::CausalAttentionImpl(const CausalAttentionOptions& options_)
    : options(options_) {
  TORCH_CHECK(options.d_in() > 0 && options.d_out() > 0 && options.context_length() > 0,
              "CausalAttention: d_in, d_out and context_length must be positive");
  TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() <= 1.0,
              "CausalAttention: dropout must be in [0, 1], got ", options.dropout());
  const auto linear = [&](int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(options.qkv_bias()));
  };
  // The book's __init__ order: a fixed seed then draws the book's weights (C3-30).
  W_query = register_module("W_query", linear(options.d_in(), options.d_out()));
  W_key = register_module("W_key", linear(options.d_in(), options.d_out()));
  W_value = register_module("W_value", linear(options.d_in(), options.d_out()));
  dropout = register_module("dropout", torch::nn::Dropout(options.dropout()));
  mask = register_buffer("mask", causal_mask(options.context_length()));
}

torch::Tensor CausalAttentionImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == options.d_in(),
              "CausalAttention: expected input (B, T, ", options.d_in(), "), got ", x.sizes());
  const int64_t num_tokens = x.size(1);
  TORCH_CHECK(num_tokens <= options.context_length(), "CausalAttention: ", num_tokens,
              " tokens exceed context_length ", options.context_length());
  const auto keys = linear(W_key, x);  // (B, T, d_out)
  const auto queries = linear(W_query, x);
  const auto values = linear(W_value, x);

  auto attn_scores = torch::matmul(queries, keys.transpose(1, 2));  // (B, T, T)
  const auto mask_bool = mask.narrow(0, 0, num_tokens).narrow(1, 0, num_tokens).to(torch::kBool);
  attn_scores.masked_fill_(mask_bool, -std::numeric_limits<double>::infinity());
  auto attn_weights =
      torch::softmax(attn_scores / std::sqrt(static_cast<double>(keys.size(-1))), -1);
  attn_weights = dropout(attn_weights);
  return torch::matmul(attn_weights, values);  // (B, T, d_out)
}

MultiHeadAttentionWrapperImpl::MultiHeadAttentionWrapperImpl(const CausalAttentionOptions& options,
                                                             int64_t num_heads) {
  TORCH_CHECK(num_heads > 0, "MultiHeadAttentionWrapper: num_heads must be positive, got ",
              num_heads);
  heads = register_module("heads", torch::nn::ModuleList());
  for (int64_t h = 0; h < num_heads; ++h) heads->push_back(CausalAttention(options));
}

torch::Tensor MultiHeadAttentionWrapperImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> outputs;
  outputs.reserve(heads->size());
  for (const auto& head : *heads) outputs.push_back(head->as<CausalAttentionImpl>()->forward(x));
  return torch::cat(outputs, -1);
}

}  // namespace llmfs
