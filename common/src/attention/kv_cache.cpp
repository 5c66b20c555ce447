#include "llmfs/attention/kv_cache.h"

#include <algorithm>

namespace llmfs {

namespace {
constexpr int64_t kInitialCapacity = 64;  // positions; doubled as needed
}

LayerKVCache::LayerKVCache(int64_t window) : window_(window) {
  TORCH_CHECK(window >= 0, "KV cache window must be >= 0, got ", window);
}

void LayerKVCache::reserve(const torch::Tensor& like, int64_t needed) {
  const bool compatible = k_.defined() && k_.size(0) == like.size(0) &&
                          k_.size(1) == like.size(1) && k_.size(3) == like.size(3) &&
                          k_.dtype() == like.dtype() && k_.device() == like.device();
  if (compatible && k_.size(2) >= needed) return;
  TORCH_CHECK(compatible || length_ == 0, "KV cache: new keys ", like.sizes(), " (", like.dtype(),
              ", ", like.device(), ") do not match the cached ", k_.sizes(), " (", k_.dtype(), ", ",
              k_.device(), "); reset the cache first");
  int64_t capacity = compatible ? std::max<int64_t>(k_.size(2), 1) : kInitialCapacity;
  while (capacity < needed) capacity *= 2;
  if (window_ > 0) capacity = std::min(capacity, window_);
  auto k = torch::empty({like.size(0), like.size(1), capacity, like.size(3)}, like.options());
  auto v = torch::empty_like(k);
  if (length_ > 0) {
    k.narrow(2, 0, length_).copy_(k_.narrow(2, 0, length_));
    v.narrow(2, 0, length_).copy_(v_.narrow(2, 0, length_));
  }
  k_ = std::move(k);
  v_ = std::move(v);
}

std::pair<torch::Tensor, torch::Tensor> LayerKVCache::append(const torch::Tensor& keys,
                                                             const torch::Tensor& values) {
  TORCH_CHECK(keys.dim() == 4 && keys.sizes() == values.sizes(),
              "KV cache: keys and values must both be (B, H, T, D), got ", keys.sizes(), " and ",
              values.sizes());
  const int64_t tokens = keys.size(2);
  TORCH_CHECK(window_ == 0 || tokens <= window_, "KV cache: a chunk of ", tokens,
              " tokens exceeds the window of ", window_, " (feed it in smaller chunks)");
  if (window_ > 0 && length_ + tokens > window_) {
    // Variant 2: drop the oldest `overflow` positions by shifting the rest to the front.
    const int64_t overflow = length_ + tokens - window_;
    const int64_t kept = length_ - overflow;
    if (kept > 0) {
      k_.narrow(2, 0, kept).copy_(k_.narrow(2, overflow, kept).clone());
      v_.narrow(2, 0, kept).copy_(v_.narrow(2, overflow, kept).clone());
    }
    length_ = kept;
  }
  reserve(keys, length_ + tokens);
  k_.narrow(2, length_, tokens).copy_(keys);
  v_.narrow(2, length_, tokens).copy_(values);
  length_ += tokens;
  return {k_.narrow(2, 0, length_), v_.narrow(2, 0, length_)};
}

void LayerKVCache::truncate(int64_t length) {
  TORCH_CHECK(window_ == 0, "KV cache: truncate needs a cache without a window");
  TORCH_CHECK(length >= 0, "KV cache: truncate to ", length, " positions");
  length_ = std::min(length_, length);
}

KVCache::KVCache(int64_t n_layers, int64_t window) : window_(window) {
  TORCH_CHECK(n_layers >= 0, "KV cache: n_layers must be >= 0, got ", n_layers);
  layers_.reserve(static_cast<size_t>(n_layers));
  for (int64_t i = 0; i < n_layers; ++i) layers_.emplace_back(window);
}

LayerKVCache& KVCache::layer(int64_t index) {
  TORCH_CHECK(index >= 0 && index < n_layers(), "KV cache: layer ", index, " out of range (",
              n_layers(), " layers)");
  return layers_[static_cast<size_t>(index)];
}

void KVCache::truncate(int64_t length) {
  TORCH_CHECK(length >= 0 && length <= position_, "KV cache: truncate to ", length,
              " positions of ", position_);
  for (auto& layer : layers_) layer.truncate(length);
  position_ = length;
}

void KVCache::reset() {
  position_ = 0;
  for (auto& layer : layers_) layer.reset();
}

}  // namespace llmfs
