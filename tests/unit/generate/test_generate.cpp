#include "catch.h"
#include "llmfs/generate/generate.h"
#include "tensor_compare.h"

namespace {

using llmfs::test::to_vector;

llmfs::GPTModel tiny_model(int64_t context_length = 10, const std::string& attention = "book") {
  llmfs::GPTConfig cfg;
  cfg.vocab_size = 40;
  cfg.context_length = context_length;
  cfg.emb_dim = 16;
  cfg.n_heads = 2;
  cfg.n_layers = 2;
  cfg.drop_rate = 0.1;
  cfg.attention = attention;
  torch::manual_seed(123);
  llmfs::GPTModel model(cfg);
  model->eval();
  return model;
}

torch::Tensor random_ids(int64_t b, int64_t t) {
  torch::manual_seed(5);
  return torch::randint(0, 40, {b, t}, torch::kLong);
}

// Greedy generation written out the long way: the whole (cropped) sequence every step.
std::vector<int64_t> reference_greedy(llmfs::GPTModel& model, torch::Tensor idx, int64_t n,
                                      int64_t context) {
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < n; ++i) {
    const auto cond = idx.size(1) > context ? idx.narrow(1, idx.size(1) - context, context) : idx;
    const auto logits = model(cond).select(1, cond.size(1) - 1);
    idx = torch::cat({idx, logits.argmax(-1, true)}, 1);
  }
  return to_vector(idx);
}

}  // namespace

TEST_CASE("greedy_next_token takes the first maximum on ties", "[unit][generate]") {
  const auto logits = torch::tensor({{0.5f, 2.0f, 2.0f, 1.0f}, {3.0f, 3.0f, 3.0f, 3.0f}});
  CHECK(to_vector(llmfs::greedy_next_token(logits)) == std::vector<int64_t>{1, 0});
  CHECK(llmfs::greedy_next_token(logits).sizes() == torch::IntArrayRef({2, 1}));
  CHECK_THROWS_WITH(llmfs::greedy_next_token(torch::rand({4})),
                    llmfs::test::contains_text("expected logits (B, V)"));
}

TEST_CASE("generate_text_simple appends greedy tokens and crops to the context size",
          "[unit][generate]") {
  auto model = tiny_model();
  const auto prompt = random_ids(2, 4);
  const auto out = llmfs::generate_text_simple(model, prompt, 15, 6);  // runs past context 6
  REQUIRE(out.sizes() == torch::IntArrayRef({2, 19}));
  CHECK(torch::equal(out.narrow(1, 0, 4), prompt));
  CHECK(to_vector(out) == reference_greedy(model, prompt, 15, 6));
  CHECK_FALSE(out.requires_grad());
  CHECK_FALSE(model->is_training());  // the mode is left alone
}

TEST_CASE("Cached greedy generation equals uncached, also past the context length",
          "[unit][generate]") {
  for (const std::string attention : {"book", "sdpa"}) {
    auto model = tiny_model(10, attention);
    for (const int64_t prompt_len : {1, 4, 10, 13}) {
      const auto prompt = random_ids(2, prompt_len);
      const auto plain = llmfs::generate_text_simple(model, prompt, 20, 10);
      llmfs::GenerateOptions options;
      options.max_new_tokens = 20;
      const auto cached = llmfs::generate(model, prompt, options);
      INFO("attention " << attention << ", prompt " << prompt_len);
      CHECK(to_vector(cached) == to_vector(plain));
    }
  }
}

TEST_CASE("The book's cached generator stops at the context length (test_context_overflow_bug)",
          "[unit][generate]") {
  auto model = tiny_model(10);
  const auto prompt = random_ids(1, 5);
  const auto out = llmfs::generate_text_simple_cached(model, prompt, 10);  // 5 + 10 > 10
  CHECK(out.size(1) == 10);
  CHECK(to_vector(out) == to_vector(llmfs::generate_text_simple(model, prompt, 5, 10)));

  llmfs::GenerateOptions options;  // window 20 > context 10, as the book's test
  options.max_new_tokens = 10;
  options.kv_window_size = 20;
  options.stop_at_context = true;
  CHECK(llmfs::generate(model, prompt, options).size(1) == 10);
}

TEST_CASE("A sliding window prefills long prompts in chunks (test_prefill_chunking_basic)",
          "[unit][generate]") {
  auto model = tiny_model(20);
  const auto prompt = random_ids(1, 10);
  llmfs::GenerateOptions options;
  options.max_new_tokens = 2;
  options.kv_window_size = 4;
  const auto out = llmfs::generate(model, prompt, options);
  REQUIRE(out.size(1) == 12);
  CHECK(torch::equal(out.narrow(1, 0, 10), prompt));
}

TEST_CASE("generate_tokens uses the given next-token rule", "[unit][generate]") {
  auto model = tiny_model();
  llmfs::GenerateOptions options;
  options.max_new_tokens = 3;
  int calls = 0;
  options.next_token = [&calls](const torch::Tensor& logits) {
    ++calls;
    return torch::full({logits.size(0), 1}, 7, torch::kLong);
  };
  for (const bool cache : {true, false}) {
    options.use_cache = cache;
    calls = 0;
    const auto out = llmfs::generate(model, random_ids(1, 2), options);
    CHECK(to_vector(out.narrow(1, 2, 3)) == std::vector<int64_t>{7, 7, 7});
    CHECK(calls == 3);
  }
}

TEST_CASE("generate_tokens validates its arguments", "[unit][generate]") {
  auto model = tiny_model();
  llmfs::GenerateOptions options;
  options.max_new_tokens = 1;
  CHECK_THROWS_WITH(llmfs::generate(model, torch::zeros({3}, torch::kLong), options),
                    llmfs::test::contains_text("expected token ids (B, T)"));
  CHECK_THROWS_WITH(llmfs::generate(model, torch::zeros({1, 3}), options),
                    llmfs::test::contains_text("must be int64"));
  options.context_size = 11;
  CHECK_THROWS_WITH(llmfs::generate(model, random_ids(1, 2), options),
                    llmfs::test::contains_text("exceeds the model's context_length 10"));
  options.context_size = 0;
  options.max_new_tokens = -1;
  CHECK_THROWS_WITH(llmfs::generate(model, random_ids(1, 2), options),
                    llmfs::test::contains_text("max_new_tokens must be >= 0"));
  options.max_new_tokens = 0;
  CHECK(llmfs::generate(model, random_ids(1, 2), options).size(1) == 2);
}

TEST_CASE("Generated ids can be used for training afterwards", "[unit][generate]") {
  auto model = tiny_model();
  llmfs::GenerateOptions options;
  options.max_new_tokens = 4;
  const auto ids = llmfs::generate(model, random_ids(1, 3), options);
  CHECK_FALSE(ids.is_inference());
  model->train();
  const auto logits = model(ids);  // the embedding saves its indices for backward
  logits.sum().backward();
  CHECK(model->tok_emb->weight.grad().defined());
}

TEST_CASE("The model and cached generation run on CUDA", "[.cuda][generate]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: nothing checked");
    return;
  }
  for (const std::string attention : {"book", "sdpa"}) {
    auto model = tiny_model(10, attention);
    const auto prompt = random_ids(2, 4);
    const auto cpu_ids = llmfs::generate_text_simple(model, prompt, 8, 10);
    model->to(torch::kCUDA);
    const auto gpu_prompt = prompt.to(torch::kCUDA);
    const auto plain = llmfs::generate_text_simple(model, gpu_prompt, 8, 10);
    llmfs::GenerateOptions options;
    options.max_new_tokens = 8;
    const auto cached = llmfs::generate(model, gpu_prompt, options);
    INFO("attention " << attention);
    CHECK(cached.device().is_cuda());
    CHECK(to_vector(cached) == to_vector(plain));
    CHECK(to_vector(plain) == to_vector(cpu_ids));
    model->to(torch::kBFloat16);
    CHECK(llmfs::generate(model, gpu_prompt, options).size(1) == 12);
  }
}
