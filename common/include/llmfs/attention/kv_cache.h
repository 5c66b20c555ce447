#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace llmfs {

/// The keys and values one attention layer has computed, kept between forward calls so that
/// generation feeds only the new tokens (book ch04/03_kv-cache, BOOK.md §5.5).
///
/// Storage is a pair of (B, H, capacity, D) buffers of which the first length() positions are
/// valid, oldest first. Without a window the capacity doubles as needed (variant 1, the growing
/// cache, without re-copying the whole cache on every token). With a window of W positions at
/// most W are kept: a chunk that would overflow first shifts out the oldest entries (variant 2,
/// the sliding window).
class LayerKVCache {
 public:
  /// window 0: unlimited.
  explicit LayerKVCache(int64_t window = 0);

  /// Appends the keys and values of T new tokens, each (B, H, T, D), and returns views
  /// (B, H, length(), D) of everything cached (valid until the next append or reset).
  /// T must not exceed the window; B, H, D, dtype and device must match what is cached.
  std::pair<torch::Tensor, torch::Tensor> append(const torch::Tensor& keys,
                                                 const torch::Tensor& values);

  int64_t length() const { return length_; }
  int64_t window() const { return window_; }

  /// Forgets the cached entries (keeps the buffers for reuse when the shapes match).
  void reset() { length_ = 0; }

  /// Keeps the first `length` entries (a shared prefix); only without a window, where entry i
  /// is position i.
  void truncate(int64_t length);

 private:
  void reserve(const torch::Tensor& like, int64_t needed);

  int64_t window_;
  int64_t length_ = 0;
  torch::Tensor k_, v_;  // (B, H, capacity, D)
};

/// The KV cache of a whole GPTModel: one LayerKVCache per transformer block plus the position
/// counter, the positional id of the next token fed (book: ptr_current_pos). Pass it to
/// GPTModel::forward; reset() before a new sequence.
class KVCache {
 public:
  /// window 0: each layer keeps every position (variant 1); W > 0: the last W (variant 2,
  /// BOOK.md's kv_window_size).
  explicit KVCache(int64_t n_layers, int64_t window = 0);

  LayerKVCache& layer(int64_t index);
  int64_t n_layers() const { return static_cast<int64_t>(layers_.size()); }
  int64_t window() const { return window_; }

  /// Number of tokens processed since the last reset: the positional id of the next token.
  int64_t position() const { return position_; }
  void advance(int64_t tokens) { position_ += tokens; }

  void reset();

  /// Keeps positions 0 .. length-1 and continues from there: a new sequence that shares that
  /// prefix with the cached one skips recomputing it. Only without a window.
  void truncate(int64_t length);

 private:
  int64_t window_;
  int64_t position_ = 0;
  std::vector<LayerKVCache> layers_;
};

}  // namespace llmfs
