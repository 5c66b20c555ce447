// llmfs::linear's decode-step kernel (KernelOptions::native_kernels): torch::linear's values up
// to rounding for one row; every other case is torch::linear itself.
#include "llmfs/ops/linear.h"

#include "catch.h"
#include "llmfs/generate/generate.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/attention/kv_cache.h"
#include "llmfs/ops/cpu_features.h"
#include "llmfs/ops/decode_attention.h"
#include "tensor_compare.h"

namespace {

const llmfs::KernelOptions kNative{.native_kernels = true};
const llmfs::KernelOptions kBook{};

// A 2-layer GPT with the fast kernels (sdpa attention, native kernels): the decode paths.
llmfs::GPTConfig small_fast_config() {
  llmfs::GPTConfig cfg;
  cfg.vocab_size = 500;
  cfg.context_length = 64;
  cfg.emb_dim = 64;
  cfg.n_heads = 4;
  cfg.n_layers = 2;
  cfg.attention = "sdpa";
  cfg.native_kernels = true;
  return cfg;
}

}  // namespace

TEST_CASE("The GEMV kernel equals torch::linear for one row, with and without bias", "[unit][model]") {
  torch::manual_seed(5);
  struct Shape {
    int64_t rows, n;
  };
  for (const auto& s : {Shape{768, 768}, Shape{2304, 768}, Shape{768, 3072}, Shape{50257, 768},
                        Shape{7, 16}, Shape{1, 32}, Shape{5, 48}}) {
    const auto w = torch::randn({s.rows, s.n});
    const auto b = torch::randn({s.rows});
    for (const auto& x : {torch::randn({s.n}), torch::randn({1, s.n}), torch::randn({1, 1, s.n})}) {
      c10::InferenceMode inference;
      INFO("rows " << s.rows << " n " << s.n << " input dims " << x.dim());
      const auto plain = llmfs::linear(x, w, {}, kNative);
      CHECK(plain.sizes() == torch::linear(x, w).sizes());
      auto check = llmfs::test::compare(plain, torch::linear(x, w), 1e-4, 1e-5);
      INFO(check.report);
      CHECK(check.ok);
      check = llmfs::test::compare(llmfs::linear(x, w, b, kNative), torch::linear(x, w, b), 1e-4, 1e-5);
      INFO(check.report);
      CHECK(check.ok);
    }
  }
}

TEST_CASE("The GEMV kernel leaves batches, odd widths and autograd to torch::linear", "[unit][model]") {
  torch::manual_seed(6);
  const auto w = torch::randn({10, 32}, torch::requires_grad());
  const auto x = torch::randn({1, 32});
  // Gradients to record: torch::linear, so backward works.
  const auto y = llmfs::linear(x, w, {}, kNative);
  CHECK(y.requires_grad());
  y.sum().backward();
  CHECK(w.grad().defined());
  torch::NoGradGuard no_grad;
  CHECK(torch::equal(llmfs::linear(torch::ones({2, 32}), w, {}, kNative), torch::linear(torch::ones({2, 32}), w)));
  const auto odd = torch::randn({3, 20});
  CHECK(torch::equal(llmfs::linear(torch::ones({20}), odd, {}, kNative), torch::linear(torch::ones({20}), odd)));
  CHECK(torch::equal(llmfs::linear(x, w, {}, kBook), torch::linear(x, w)));
}

TEST_CASE("With native kernels, cached greedy generation keeps the uncached ids", "[unit][model]") {
  const llmfs::GPTConfig cfg = small_fast_config();
  torch::manual_seed(123);
  llmfs::GPTModel model(cfg);
  model->eval();
  const auto prompt = torch::tensor({{1, 2, 3, 4}}, torch::kLong);
  const auto uncached = llmfs::generate_text_simple(model, prompt, 30, cfg.context_length);
  llmfs::GenerateOptions options;
  options.max_new_tokens = 30;
  options.use_cache = true;
  CHECK(torch::equal(llmfs::generate(model, prompt, options), uncached));
}

TEST_CASE("The bf16 GEMV kernels equal the float32 product of the bf16 values", "[unit][model]") {
  // Every kernel this CPU can run: VDPBF16PS, AVX-512 widening, AVX2 widening.
  const llmfs::CpuFeatures real = llmfs::cpu_features();
  struct Level {
    const char* name;
    llmfs::CpuFeatures features;
  };
  const std::vector<Level> levels = {{"avx512_bf16", {true, true, true, false}},
                                     {"avx512f", {true, true, false, false}},
                                     {"avx2", {true, false, false, false}}};
  torch::manual_seed(8);
  for (const auto& level : levels) {
    llmfs::CpuFeaturesOverride only(level.features);
    if (llmfs::cpu_features().describe() != llmfs::CpuFeatures(level.features).describe()) continue;
    for (const auto& [rows, n] : std::vector<std::pair<int64_t, int64_t>>{
             {768, 768}, {3072, 768}, {768, 3072}, {50257, 768}, {13, 64}, {1, 32}}) {
      c10::InferenceMode inference;
      const auto w = torch::randn({rows, n}).to(torch::kBFloat16);
      const auto b = torch::randn({rows}).to(torch::kBFloat16);
      const auto x = torch::randn({1, 1, n}).to(torch::kBFloat16);
      // The exact products of the bf16 values, summed in float64.
      const auto exact = torch::linear(x.to(torch::kFloat64), w.to(torch::kFloat64), b.to(torch::kFloat64));
      INFO(level.name << ": rows " << rows << " n " << n);
      const auto logits = llmfs::linear_float32(x, w, b, kNative);
      CHECK(logits.scalar_type() == torch::kFloat32);
      CHECK(logits.sizes() == exact.sizes());
      auto check = llmfs::test::compare(logits, exact, 1e-4, 1e-3);  // float32 summation order
      INFO(check.report);
      CHECK(check.ok);
      const auto y = llmfs::linear(x, w, b, kNative);  // rounded to bf16 once
      CHECK(y.scalar_type() == torch::kBFloat16);
      check = llmfs::test::compare(y, exact, 1e-2, 1e-2);
      INFO(check.report);
      CHECK(check.ok);
    }
  }
  CHECK(llmfs::cpu_features().describe() == real.describe());
}

TEST_CASE("A model in bf16 decodes with float32 logits close to the float32 model's", "[unit][model]") {
  const llmfs::GPTConfig cfg = small_fast_config();
  torch::manual_seed(123);
  llmfs::GPTModel model(cfg);
  model->eval();
  torch::manual_seed(123);
  llmfs::GPTModel low(cfg);
  low->to(torch::kBFloat16);
  low->eval();
  c10::InferenceMode inference;
  const auto prompt = torch::tensor({{1, 2, 3, 4}}, torch::kLong);
  auto cache = model->make_kv_cache();
  auto low_cache = low->make_kv_cache();
  model(prompt, &cache, true);
  low(prompt, &low_cache, true);
  const auto token = torch::tensor({{5}}, torch::kLong);
  const auto want = model(token, &cache, true);
  const auto got = low(token, &low_cache, true);  // the one-row kernels, bf16 weights
  CHECK(got.scalar_type() == torch::kFloat32);
  const auto check = llmfs::test::compare(got, want, 0.05, 0.05);  // bf16 weights: ~3 digits
  INFO(check.report);
  CHECK(check.ok);
}

TEST_CASE("decode_attention equals SDPA for one query against bf16 cache views", "[unit][model]") {
  torch::manual_seed(9);
  for (const int64_t keys : {1, 5, 100, 257}) {
    // A cache buffer with room for more positions: keys and values are views of its first rows.
    const auto k_buffer = torch::randn({2, 12, keys + 7, 64}).to(torch::kBFloat16);
    const auto v_buffer = torch::randn({2, 12, keys + 7, 64}).to(torch::kBFloat16);
    const auto k = k_buffer.narrow(2, 0, keys);
    const auto v = v_buffer.narrow(2, 0, keys);
    const auto q = torch::randn({2, 1, 12, 64}).to(torch::kBFloat16).transpose(1, 2);  // (B, H, 1, D)
    c10::InferenceMode inference;
    if (!llmfs::decode_attention_applies(q, k, v)) {
      WARN("no AVX512-BF16 here: decode_attention is not used");
      CHECK_FALSE(llmfs::cpu_features().avx512_bf16);
      return;
    }
    const auto want = torch::scaled_dot_product_attention(q.to(torch::kFloat64), k.to(torch::kFloat64),
                                                          v.to(torch::kFloat64));
    const auto got = llmfs::decode_attention(q, k, v);
    INFO("keys " << keys);
    CHECK(got.scalar_type() == torch::kBFloat16);
    CHECK(got.sizes() == want.sizes());
    const auto check = llmfs::test::compare(got, want, 1e-2, 1e-2);  // one bf16 rounding
    INFO(check.report);
    CHECK(check.ok);
  }
  // Not for it: float32, two queries.
  const auto f = torch::randn({1, 2, 1, 64});
  CHECK_FALSE(llmfs::decode_attention_applies(f, torch::randn({1, 2, 3, 64}), torch::randn({1, 2, 3, 64})));
  const auto two = torch::randn({1, 2, 2, 64}).to(torch::kBFloat16);
  CHECK_FALSE(llmfs::decode_attention_applies(two, two, two));
}
