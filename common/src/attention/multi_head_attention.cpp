// Causal multi-head attention (book §3.6.2), with two interchangeable kernels (the book's
// arithmetic and torch::scaled_dot_product_attention) and an optional per-layer KV cache
// (book ch04/03_kv-cache) for generation.
#include "llmfs/attention/multi_head_attention.h"

#include <cmath>
#include <limits>

#include "llmfs/attention/causal_attention.h"
#include "llmfs/ops/decode_attention.h"
#include "llmfs/ops/fused_dropout.h"
#include "llmfs/attention/kv_cache.h"
#include "llmfs/ops/linear.h"

namespace llmfs {

MultiHeadAttentionImpl::MultiHeadAttentionImpl(const MultiHeadAttentionOptions& options_)
    : options(options_) {
  TORCH_CHECK(options.d_in() > 0 && options.d_out() > 0 && options.context_length() > 0 &&
                  options.num_heads() > 0,
              "MultiHeadAttention: d_in, d_out, context_length and num_heads must be positive");
  TORCH_CHECK(options.d_out() % options.num_heads() == 0, "d_out (", options.d_out(),
              ") must be divisible by num_heads (", options.num_heads(), ")");
  TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() <= 1.0,
              "MultiHeadAttention: dropout must be in [0, 1], got ", options.dropout());
  const auto linear = [](int64_t in, int64_t out, bool bias) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
  };
  // Same order as the book's __init__: a fixed seed then draws the same weights.
  W_query = register_module("W_query", linear(options.d_in(), options.d_out(), options.qkv_bias()));
  W_key = register_module("W_key", linear(options.d_in(), options.d_out(), options.qkv_bias()));
  W_value = register_module("W_value", linear(options.d_in(), options.d_out(), options.qkv_bias()));
  out_proj = register_module("out_proj", linear(options.d_out(), options.d_out(), /*bias=*/true));
  dropout = register_module("dropout", torch::nn::Dropout(options.dropout()));
  mask = register_buffer("mask", causal_mask(options.context_length()));
}

torch::Tensor MultiHeadAttentionImpl::mask_rows(int64_t offset, int64_t rows,
                                                int64_t columns) const {
  if (offset + rows <= mask.size(0) && columns <= mask.size(1)) {
    // Slice first, then convert: the book converts the whole buffer on every call.
    return mask.narrow(0, offset, rows).narrow(1, 0, columns).to(torch::kBool);
  }
  // Longer than the buffer (a cache used beyond context_length): the same rule, computed.
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(mask.device());
  const auto row = torch::arange(offset, offset + rows, opts).unsqueeze(1);
  const auto col = torch::arange(columns, opts).unsqueeze(0);
  return col > row;
}

torch::Tensor MultiHeadAttentionImpl::attend_book(const torch::Tensor& queries,
                                                  const torch::Tensor& keys,
                                                  const torch::Tensor& values) {
  const int64_t num_tokens = queries.size(2), num_keys = keys.size(2);
  auto attn_scores = torch::matmul(queries, keys.transpose(2, 3));  // (B, H, T, K)
  // A single query at the end of the cache sees every key: nothing to mask.
  if (num_tokens > 1) {
    attn_scores.masked_fill_(mask_rows(num_keys - num_tokens, num_tokens, num_keys),
                             -std::numeric_limits<double>::infinity());
  }
  // The book divides by keys.shape[-1]**0.5 (a Python float, hence pow).
  auto attn_weights =
      torch::softmax(attn_scores / std::pow(static_cast<double>(keys.size(-1)), 0.5), -1);
  attn_weights = dropout(attn_weights);
  return torch::matmul(attn_weights, values);  // (B, H, T, D)
}

torch::Tensor MultiHeadAttentionImpl::attend_fused(const torch::Tensor& queries,
                                                   const torch::Tensor& keys,
                                                   const torch::Tensor& values) {
  const int64_t b = queries.size(0), h = queries.size(1), t = queries.size(2), d = queries.size(3);
  // The causal mask as an additive term: 0 where attention is allowed, -inf above the diagonal.
  const auto additive = torch::zeros({t, t}, queries.options())
                            .masked_fill_(mask_rows(0, t, t), -std::numeric_limits<double>::infinity());
  // One batched GEMM: mask + (Q Kᵀ) / sqrt(D).
  const auto scores = torch::baddbmm(additive, queries.reshape({b * h, t, d}),
                                     keys.reshape({b * h, t, d}).transpose(1, 2), 1.0,
                                     1.0 / std::sqrt(static_cast<double>(d)));  // (B·H, T, T)
  const auto weights = fused_dropout(torch::softmax(scores, -1), options.dropout(), true);
  return torch::bmm(weights, values.reshape({b * h, t, d})).view({b, h, t, d});
}

torch::Tensor MultiHeadAttentionImpl::attend_sdpa(const torch::Tensor& queries,
                                                  const torch::Tensor& keys,
                                                  const torch::Tensor& values) {
  const int64_t num_tokens = queries.size(2), num_keys = keys.size(2);
  const double dropout_p = is_training() ? options.dropout() : 0.0;
  // PyTorch's CPU kernels have no fused path with dropout: its fallback spends more passes over
  // memory than this one does.
  if (options.kernels().native_kernels && dropout_p > 0.0 && queries.device().is_cpu() &&
      num_tokens == num_keys) {
    return attend_fused(queries, keys, values);
  }
  if (num_tokens == num_keys) {
    return torch::scaled_dot_product_attention(queries, keys, values, {}, dropout_p,
                                               /*is_causal=*/true);
  }
  if (num_tokens == 1) {
    // Decoding in bf16: our kernel, one pass over the cache for all heads (decode_attention.h).
    if (options.kernels().native_kernels && dropout_p == 0.0 &&
        decode_attention_applies(queries, keys, values)) {
      return decode_attention(queries, keys, values);
    }
    return torch::scaled_dot_product_attention(queries, keys, values, {}, dropout_p, false);
  }
  // A chunk after cached positions: SDPA's boolean mask says where attention is allowed.
  const auto allowed = mask_rows(num_keys - num_tokens, num_tokens, num_keys).logical_not();
  return torch::scaled_dot_product_attention(queries, keys, values, allowed, dropout_p, false);
}

torch::Tensor MultiHeadAttentionImpl::forward(const torch::Tensor& x, LayerKVCache* cache) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == options.d_in(),
              "MultiHeadAttention: expected input (B, T, ", options.d_in(), "), got ", x.sizes());
  const int64_t b = x.size(0), num_tokens = x.size(1);
  const int64_t num_heads = options.num_heads(), hd = head_dim();
  TORCH_CHECK(cache != nullptr || num_tokens <= options.context_length(),
              "MultiHeadAttention: ", num_tokens, " tokens exceed context_length ",
              options.context_length());

  // (B, T, d_out) -> (B, T, H, D) -> (B, H, T, D)
  const KernelOptions& kernels = options.kernels();
  auto keys = linear(W_key, x, kernels).view({b, num_tokens, num_heads, hd}).transpose(1, 2);
  auto queries = linear(W_query, x, kernels).view({b, num_tokens, num_heads, hd}).transpose(1, 2);
  auto values = linear(W_value, x, kernels).view({b, num_tokens, num_heads, hd}).transpose(1, 2);
  if (cache != nullptr) std::tie(keys, values) = cache->append(keys, values);  // (B, H, K, D)

  const auto context =
      options.use_sdpa() ? attend_sdpa(queries, keys, values) : attend_book(queries, keys, values);
  // (B, H, T, D) -> (B, T, H, D) -> (B, T, d_out), heads side by side.
  return linear(out_proj,
                context.transpose(1, 2).contiguous().view({b, num_tokens, options.d_out()}),
                kernels);
}

torch::Tensor MultiHeadAttentionImpl::forward_step(const torch::Tensor& x,
                                                  std::span<LayerKVCache* const> caches) {
  const int64_t b = x.size(0);
  TORCH_CHECK(x.dim() == 3 && x.size(1) == 1 && x.size(2) == options.d_in(),
              "MultiHeadAttention: expected one token per row (B, 1, ", options.d_in(), "), got ",
              x.sizes());
  TORCH_CHECK(static_cast<int64_t>(caches.size()) == b, "MultiHeadAttention: ", b,
              " rows but ", caches.size(), " caches");
  const int64_t num_heads = options.num_heads(), hd = head_dim();
  const KernelOptions& kernels = options.kernels();
  const auto keys = linear(W_key, x, kernels).view({b, 1, num_heads, hd}).transpose(1, 2);
  const auto queries = linear(W_query, x, kernels).view({b, 1, num_heads, hd}).transpose(1, 2);
  const auto values = linear(W_value, x, kernels).view({b, 1, num_heads, hd}).transpose(1, 2);
  std::vector<torch::Tensor> contexts;  // (1, H, 1, D) each
  contexts.reserve(static_cast<size_t>(b));
  for (int64_t row = 0; row < b; ++row) {
    TORCH_CHECK(caches[row] != nullptr, "MultiHeadAttention: row ", row, " has no cache");
    const auto [k, v] = caches[row]->append(keys.narrow(0, row, 1), values.narrow(0, row, 1));
    const auto q = queries.narrow(0, row, 1);
    contexts.push_back(options.use_sdpa() ? attend_sdpa(q, k, v) : attend_book(q, k, v));
  }
  const auto context = b == 1 ? contexts[0] : torch::cat(contexts, 0);
  return linear(out_proj, context.transpose(1, 2).contiguous().view({b, 1, options.d_out()}),
                kernels);
}

torch::Tensor MultiHeadAttentionImpl::forward_rows(const torch::Tensor& x,
                                                  const torch::Tensor& rows) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == options.d_in(),
              "MultiHeadAttention: expected input (B, T, ", options.d_in(), "), got ", x.sizes());
  TORCH_CHECK(rows.dim() == 1 && rows.size(0) == x.size(0) && rows.scalar_type() == torch::kLong,
              "MultiHeadAttention: expected rows (", x.size(0), ") int64, got ", rows.sizes());
  const int64_t b = x.size(0), num_tokens = x.size(1);
  const int64_t num_heads = options.num_heads(), hd = head_dim();
  const KernelOptions& kernels = options.kernels();
  const auto picked = x.gather(1, rows.view({b, 1, 1}).expand({b, 1, x.size(2)}));  // (B, 1, d_in)
  const auto keys = linear(W_key, x, kernels).view({b, num_tokens, num_heads, hd}).transpose(1, 2);
  const auto queries = linear(W_query, picked, kernels).view({b, 1, num_heads, hd}).transpose(1, 2);
  const auto values =
      linear(W_value, x, kernels).view({b, num_tokens, num_heads, hd}).transpose(1, 2);
  // Row b's query sees keys 0 .. rows[b]: (B, 1, 1, T).
  const auto allowed = torch::arange(num_tokens, rows.options()).view({1, num_tokens})
                           .le(rows.view({b, 1}))
                           .view({b, 1, 1, num_tokens});
  torch::Tensor context;  // (B, H, 1, D)
  if (options.use_sdpa()) {
    context = torch::scaled_dot_product_attention(queries, keys, values, allowed,
                                                  is_training() ? options.dropout() : 0.0, false);
  } else {
    auto scores = torch::matmul(queries, keys.transpose(2, 3));  // (B, H, 1, T)
    scores.masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
    const auto weights =
        dropout(torch::softmax(scores / std::pow(static_cast<double>(hd), 0.5), -1));
    context = torch::matmul(weights, values);
  }
  return linear(out_proj, context.transpose(1, 2).contiguous().view({b, 1, options.d_out()}),
                kernels);
}

}  // namespace llmfs
