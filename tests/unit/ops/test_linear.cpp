// llmfs::linear's decode-step kernel (KernelOptions::native_kernels): torch::linear's values up
// to rounding for one row; every other case is torch::linear itself.
#include "llmfs/ops/linear.h"

#include "catch.h"
#include "llmfs/generate/generate.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/attention/kv_cache.h"
#include "tensor_compare.h"

namespace {

const llmfs::KernelOptions kNative{.native_kernels = true};
const llmfs::KernelOptions kBook{};

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
  llmfs::GPTConfig cfg;
  cfg.vocab_size = 500;
  cfg.context_length = 64;
  cfg.emb_dim = 64;
  cfg.n_heads = 4;
  cfg.n_layers = 2;
  cfg.attention = "sdpa";
  cfg.native_kernels = true;
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
