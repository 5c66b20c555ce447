// The book's chapter-4 values (BOOK.md §5.4, §5.5, §15): GPTModel built after
// torch::manual_seed(123) reproduces the book's weights, so greedy generation gives its ids.
#include <fmt/format.h>

#include "catch.h"
#include "llmfs/generate/generate.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/model/parameter_count.h"
#include "tensor_compare.h"
#include "tolerances.h"

namespace {

const std::vector<int64_t> kHelloIAm = {15496, 11, 314, 716};  // C4-18

// CI-01 / C4-19: the untrained seed-123 124M model, greedy, 10 new tokens.
const std::vector<int64_t> kGreedy10 = {15496, 11,   314,   716,   27018, 24086, 47843,
                                        30961, 42348, 7267, 49706, 43231, 47062, 34657};

llmfs::GPTModel seeded_model(const llmfs::GPTConfig& cfg) {
  torch::manual_seed(123);
  llmfs::GPTModel model(cfg);
  model->eval();
  return model;
}

torch::Tensor prompt() { return torch::tensor(kHelloIAm, torch::kLong).unsqueeze(0); }

}  // namespace

TEST_CASE("Greedy generation of the seed-123 124M model gives the book's ids (C4-19, CI-01)",
          "[golden][book][model]") {
  auto model = seeded_model(llmfs::gpt2_config("124M"));
  const auto ids = llmfs::generate_text_simple(model, prompt(), 10, 1024);
  CHECK(llmfs::test::to_vector(ids) == kGreedy10);
}

TEST_CASE("Cached greedy generation gives the same ids as uncached (CI-02, CI-03)",
          "[golden][book][generate]") {
  auto model = seeded_model(llmfs::gpt2_config("124M"));
  const auto plain = llmfs::generate_text_simple(model, prompt(), 30, 1024);
  REQUIRE(llmfs::test::to_vector(plain.narrow(1, 0, 14)) == kGreedy10);

  llmfs::GenerateOptions options;
  options.max_new_tokens = 30;
  const auto growing = llmfs::generate_tokens(model, prompt(), options);
  CHECK(llmfs::test::to_vector(growing) == llmfs::test::to_vector(plain));

  options.kv_window_size = 1024;  // the sliding-window variant with the book's window
  const auto window = llmfs::generate_tokens(model, prompt(), options);
  CHECK(llmfs::test::to_vector(window) == llmfs::test::to_vector(plain));

  const auto book_cached = llmfs::generate_text_simple_cached(model, prompt(), 30, 1024);
  CHECK(llmfs::test::to_vector(book_cached) == llmfs::test::to_vector(plain));
}

TEST_CASE("The sdpa attention gives the book's greedy ids too", "[golden][book][model]") {
  auto cfg = llmfs::gpt2_config("124M");
  cfg.attention = "sdpa";
  auto model = seeded_model(cfg);
  llmfs::GenerateOptions options;
  options.max_new_tokens = 10;
  CHECK(llmfs::test::to_vector(llmfs::generate_tokens(model, prompt(), options)) == kGreedy10);
  options.use_cache = false;
  CHECK(llmfs::test::to_vector(llmfs::generate_tokens(model, prompt(), options)) == kGreedy10);
}

TEST_CASE("The 124M model has the book's parameter counts and size (C4-14 .. C4-17)",
          "[golden][book][model]") {
  torch::manual_seed(123);
  llmfs::GPTModel model(llmfs::gpt2_config("124M"));
  const int64_t total = llmfs::count_parameters(*model);
  CHECK(total == 163009536);                                      // C4-14
  CHECK(model->tok_emb->weight.sizes() == model->out_head->weight.sizes());  // C4-15
  CHECK(model->out_head->weight.sizes() == torch::IntArrayRef({50257, 768}));
  CHECK(llmfs::count_parameters_tied(*model) == 124412160);       // C4-16
  CHECK(fmt::format("{:.2f}", llmfs::parameter_megabytes(total, 4)) == "621.83");  // C4-17
}
