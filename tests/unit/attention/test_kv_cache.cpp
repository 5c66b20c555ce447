#include "catch.h"
#include "llmfs/attention/kv_cache.h"

namespace {

// (B, H, T, D) keys whose entries name their position: value = first + t.
torch::Tensor positions(int64_t first, int64_t count, int64_t b = 1, int64_t h = 2, int64_t d = 3) {
  return torch::arange(first, first + count, torch::kFloat32)
      .view({1, 1, count, 1})
      .expand({b, h, count, d})
      .contiguous();
}

std::vector<float> cached_positions(const torch::Tensor& keys) {
  const auto column = keys.select(0, 0).select(0, 0).select(1, 0).contiguous();
  return {column.data_ptr<float>(), column.data_ptr<float>() + column.numel()};
}

}  // namespace

TEST_CASE("A growing KV cache keeps every position across buffer growth",
          "[unit][model][kv_cache]") {
  llmfs::LayerKVCache cache;
  auto [k, v] = cache.append(positions(0, 5), positions(100, 5));
  CHECK(cache.length() == 5);
  CHECK(k.sizes() == torch::IntArrayRef({1, 2, 5, 3}));
  for (int64_t t = 5; t < 200; ++t)
    std::tie(k, v) = cache.append(positions(t, 1), positions(100 + t, 1));
  CHECK(cache.length() == 200);
  CHECK(torch::equal(k, positions(0, 200)));
  CHECK(torch::equal(v, positions(100, 200)));
}

TEST_CASE("A windowed KV cache drops the oldest positions", "[unit][model][kv_cache]") {
  llmfs::LayerKVCache cache(4);
  cache.append(positions(0, 3), positions(0, 3));
  auto [k, v] = cache.append(positions(3, 2), positions(3, 2));  // 5 > 4: position 0 drops out
  CHECK(cache.length() == 4);
  CHECK(cached_positions(k) == std::vector<float>{1, 2, 3, 4});
  std::tie(k, v) = cache.append(positions(5, 4), positions(5, 4));  // a full window
  CHECK(cached_positions(k) == std::vector<float>{5, 6, 7, 8});
  CHECK_THROWS_WITH(cache.append(positions(9, 5), positions(9, 5)),
                    llmfs::test::contains_text("exceeds the window of 4"));
}

TEST_CASE("A KV cache rejects keys that do not match what it holds", "[unit][model][kv_cache]") {
  llmfs::LayerKVCache cache;
  cache.append(positions(0, 2), positions(0, 2));
  CHECK_THROWS_WITH(cache.append(positions(2, 1, /*b=*/2), positions(2, 1, 2)),
                    llmfs::test::contains_text("reset the cache first"));
  CHECK_THROWS_WITH(cache.append(positions(2, 1), positions(2, 2)),
                    llmfs::test::contains_text("must both be (B, H, T, D)"));
  cache.reset();
  CHECK(cache.length() == 0);
  const auto [k, v] = cache.append(positions(0, 1, 2), positions(0, 1, 2));  // new batch size
  CHECK(k.size(0) == 2);
}

TEST_CASE("KVCache counts positions and resets every layer", "[unit][model][kv_cache]") {
  llmfs::KVCache cache(3, 8);
  CHECK(cache.n_layers() == 3);
  CHECK(cache.window() == 8);
  cache.layer(1).append(positions(0, 2), positions(0, 2));
  cache.advance(2);
  CHECK(cache.position() == 2);
  cache.reset();
  CHECK(cache.position() == 0);
  CHECK(cache.layer(1).length() == 0);
  CHECK_THROWS_WITH(cache.layer(3), llmfs::test::contains_text("layer 3 out of range"));
}
