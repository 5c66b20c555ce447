// fused_dropout: torch::dropout's distribution and scaling, reproducible from the global seed,
// the backward pass uses the forward's mask; the fused training attention equals the book's
// arithmetic without dropout.
#include "llmfs/ops/fused_dropout.h"

#include "catch.h"
#include "llmfs/attention/multi_head_attention.h"
#include "llmfs/ops/cpu_features.h"
#include "tensor_compare.h"

TEST_CASE("fused_dropout keeps 1 - p of the elements, scaled by 1 / (1 - p)", "[unit][model]") {
  torch::manual_seed(1);
  const auto x = torch::ones({1000, 1000});
  const auto y = llmfs::fused_dropout(x, 0.1, true);
  const auto kept = (y != 0).to(torch::kFloat64).mean().item<double>();
  CHECK(kept == Approx(0.9).margin(0.002));  // 1e6 Bernoulli(0.9): sd 3e-4
  CHECK(y.max().item<float>() == Approx(1.0f / 0.9f));
  CHECK(torch::equal(llmfs::fused_dropout(x, 0.1, false), x));  // eval mode: identity
  CHECK(torch::equal(llmfs::fused_dropout(x, 0.0, true), x));
}

TEST_CASE("fused_dropout masks follow the global seed and differ between calls", "[unit][model]") {
  const auto x = torch::randn({64, 33});
  torch::manual_seed(7);
  const auto a1 = llmfs::fused_dropout(x, 0.5, true);
  const auto a2 = llmfs::fused_dropout(x, 0.5, true);
  torch::manual_seed(7);
  const auto b1 = llmfs::fused_dropout(x, 0.5, true);
  CHECK(torch::equal(a1, b1));
  CHECK_FALSE(torch::equal(a1, a2));
}

TEST_CASE("fused_dropout's gradient is the forward's mask times the scale", "[unit][model]") {
  torch::manual_seed(3);
  const auto x = torch::randn({257, 3}).requires_grad_(true);  // odd count: the last pair is half
  const auto y = llmfs::fused_dropout(x, 0.3, true);
  y.sum().backward();
  const auto expected = (y.detach() != 0).to(torch::kFloat32) / 0.7f;
  const auto check = llmfs::test::compare(x.grad(), expected, 1e-6, 1e-6);
  INFO(check.report);
  CHECK(check.ok);
}

TEST_CASE("the fused training attention equals the book's arithmetic when nothing drops",
          "[unit][model]") {
  torch::manual_seed(11);
  auto options = llmfs::MultiHeadAttentionOptions(16, 16, 8, 4).dropout(1e-12);  // ~never drops
  llmfs::MultiHeadAttention book(options);
  torch::manual_seed(11);
  llmfs::MultiHeadAttention fused(options.use_sdpa(true).kernels({.native_kernels = true}));
  const auto x = torch::randn({2, 8, 16});
  book->train();
  fused->train();
  const auto check = llmfs::test::compare(fused(x), book(x), 1e-5, 1e-5);
  INFO(check.report);
  CHECK(check.ok);
}

TEST_CASE("fused_dropout draws the same masks with and without AVX-512", "[unit][model]") {
  // The vector kernel hashes 8 pairs at a time; sizes around its 16-element steps and odd ones.
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (const int64_t n : {1, 2, 15, 16, 17, 33, 1000, 100003}) {
      const auto x = torch::randn({n}).to(dtype);
      torch::manual_seed(21);
      const auto vector = llmfs::fused_dropout(x, 0.25, true);
      torch::Tensor scalar;
      {
        llmfs::CpuFeaturesOverride none(llmfs::CpuFeatures{});
        torch::manual_seed(21);
        scalar = llmfs::fused_dropout(x, 0.25, true);
      }
      INFO("n " << n << " dtype " << dtype);
      CHECK(torch::equal(vector, scalar));
      CHECK(torch::equal(vector == 0, scalar == 0));
    }
  }
}
