// The GPT model of book §4.6 with an optional KV cache (book ch04/03_kv-cache).
#include "llmfs/model/gpt_model.h"

#include "llmfs/ops/linear.h"
#include "llmfs/ops/fused_dropout.h"
#include "llmfs/model/parameter_count.h"

namespace llmfs {

GPTModelImpl::GPTModelImpl(const GPTConfig& cfg) : cfg_(cfg) {
  TORCH_CHECK(cfg.vocab_size > 0 && cfg.context_length > 0 && cfg.emb_dim > 0 && cfg.n_heads > 0 &&
                  cfg.n_layers >= 0,
              "GPTModel: vocab_size, context_length, emb_dim, n_heads must be positive and "
              "n_layers >= 0");
  TORCH_CHECK(cfg.attention == "book" || cfg.attention == "sdpa",
              "GPTModel: attention must be 'book' or 'sdpa', got '", cfg.attention, "'");
  // The book's construction order (BOOK.md §5.2): it fixes the random stream after seeding.
  tok_emb = register_module("tok_emb", torch::nn::Embedding(cfg.vocab_size, cfg.emb_dim));
  pos_emb = register_module("pos_emb", torch::nn::Embedding(cfg.context_length, cfg.emb_dim));
  drop_emb = register_module("drop_emb", torch::nn::Dropout(cfg.drop_rate));
  trf_blocks = register_module("trf_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.n_layers; ++i) {
    TransformerBlock block(cfg);
    trf_blocks->push_back(block);
    blocks_.push_back(block);
  }
  final_norm = register_module("final_norm", LayerNorm(cfg.emb_dim, cfg.kernels()));
  if (!cfg.tie_weights) {
    out_head = register_module(
        "out_head",
        torch::nn::Linear(torch::nn::LinearOptions(cfg.emb_dim, cfg.vocab_size).bias(false)));
  }
}

torch::Tensor GPTModelImpl::forward(const torch::Tensor& in_idx, KVCache* cache, bool last_only) {
  TORCH_CHECK(in_idx.dim() == 2, "GPTModel: expected token ids (B, T), got ", in_idx.sizes());
  TORCH_CHECK(in_idx.scalar_type() == torch::kLong || in_idx.scalar_type() == torch::kInt,
              "GPTModel: token ids must be int64 or int32, got ", in_idx.scalar_type());
  const int64_t seq_len = in_idx.size(1);
  const int64_t start = cache != nullptr ? cache->position() : 0;
  TORCH_CHECK(start + seq_len <= cfg_.context_length, "GPTModel: positions ", start, "..",
              start + seq_len - 1, " exceed context_length ", cfg_.context_length,
              cache != nullptr ? " (reset the KV cache or crop the input)" : " (crop the input)");
  TORCH_CHECK(cache == nullptr || cache->n_layers() == cfg_.n_layers, "GPTModel: a KV cache for ",
              cache == nullptr ? 0 : cache->n_layers(), " layers given to a model with ",
              cfg_.n_layers);

  auto x = embed(in_idx, start);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    x = blocks_[i](x, cache != nullptr ? &cache->layer(static_cast<int64_t>(i)) : nullptr);
  }
  if (last_only) x = x.narrow(1, seq_len - 1, 1);
  x = final_norm(x);
  if (cache != nullptr) cache->advance(seq_len);
  return head(x);
}

torch::Tensor GPTModelImpl::forward_step(const torch::Tensor& ids,
                                         std::span<KVCache* const> caches) {
  TORCH_CHECK(ids.dim() == 1 && ids.size(0) == static_cast<int64_t>(caches.size()) &&
                  ids.size(0) > 0,
              "GPTModel: expected one token id per cache (", caches.size(), "), got ",
              ids.sizes());
  const int64_t b = ids.size(0);
  std::vector<int64_t> positions;
  positions.reserve(caches.size());
  for (const KVCache* cache : caches) {
    TORCH_CHECK(cache != nullptr && cache->n_layers() == cfg_.n_layers,
                "GPTModel: every row needs a KV cache for ", cfg_.n_layers, " layers");
    TORCH_CHECK(cache->position() < cfg_.context_length, "GPTModel: position ",
                cache->position(), " exceeds context_length ", cfg_.context_length,
                " (reset the KV cache or crop the input)");
    positions.push_back(cache->position());
  }
  const auto pos_ids = torch::tensor(positions, torch::kLong).to(ids.device()).view({b, 1});
  auto x = dropout_embeddings(tok_emb(ids.view({b, 1})) + pos_emb(pos_ids));  // (B, 1, C)
  std::vector<LayerKVCache*> layer(caches.size());
  for (size_t i = 0; i < blocks_.size(); ++i) {
    for (size_t row = 0; row < caches.size(); ++row) {
      layer[row] = &caches[row]->layer(static_cast<int64_t>(i));
    }
    x = blocks_[i]->forward_step(x, layer);
  }
  for (KVCache* cache : caches) cache->advance(1);
  return head(final_norm(x)).squeeze(1);  // (B, V)
}

torch::Tensor GPTModelImpl::forward_rows(const torch::Tensor& in_idx, const torch::Tensor& rows) {
  TORCH_CHECK(in_idx.dim() == 2, "GPTModel: expected token ids (B, T), got ", in_idx.sizes());
  TORCH_CHECK(in_idx.size(1) <= cfg_.context_length, "GPTModel: ", in_idx.size(1),
              " tokens exceed context_length ", cfg_.context_length, " (crop the input)");
  TORCH_CHECK(rows.dim() == 1 && rows.size(0) == in_idx.size(0),
              "GPTModel: expected one row index per sequence (", in_idx.size(0), "), got ",
              rows.sizes());
  const auto index = rows.to(in_idx.device(), torch::kLong);
  TORCH_CHECK(in_idx.size(0) == 0 ||
                  (index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < in_idx.size(1)),
              "GPTModel: row indices must be in [0, ", in_idx.size(1), ")");
  auto x = embed(in_idx, 0);
  if (blocks_.empty()) {
    x = x.gather(1, index.view({-1, 1, 1}).expand({x.size(0), 1, x.size(2)}));
  } else {
    for (size_t i = 0; i + 1 < blocks_.size(); ++i) x = blocks_[i](x, nullptr);
    x = blocks_.back()->forward_rows(x, index);  // (B, 1, C)
  }
  return head(final_norm(x)).squeeze(1);  // (B, V)
}

torch::Tensor GPTModelImpl::embed(const torch::Tensor& in_idx, int64_t start) {
  const auto tok_embeds = tok_emb(in_idx);  // (B, T, C)
  const auto pos_ids =
      torch::arange(start, start + in_idx.size(1),
                    torch::TensorOptions().dtype(torch::kLong).device(in_idx.device()));
  const auto pos_embeds = pos_emb(pos_ids);  // (T, C)
  return dropout_embeddings(tok_embeds + pos_embeds);
}

torch::Tensor GPTModelImpl::dropout_embeddings(const torch::Tensor& x) {
  return cfg_.kernels().native_kernels ? fused_dropout(x, drop_emb->options.p(), is_training())
                                       : drop_emb(x);
}

torch::Tensor GPTModelImpl::head(const torch::Tensor& x) {
  // Tied: the embedding is the head, unless a classifier head was put in (convert_to_classifier).
  // Logits are float32 also from bf16 weights (a model prepared for bf16 decoding).
  if (out_head.is_empty()) return linear_float32(x, tok_emb->weight, {}, cfg_.kernels());  // (.., V)
  // (.., V), or (.., num_classes) for a classifier
  return add_adapter(*out_head, x, linear_float32(x, out_head->weight, out_head->bias, cfg_.kernels()));
}

KVCache GPTModelImpl::make_kv_cache(int64_t window) const { return KVCache(cfg_.n_layers, window); }

int64_t count_parameters_tied(const GPTModelImpl& model) {
  const int64_t total = count_parameters(model);
  if (model.config().tie_weights || model.out_head.is_empty()) return total;
  return total - count_parameters(*model.out_head);
}

}  // namespace llmfs
