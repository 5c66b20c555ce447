#include "catch.h"
#include "llmfs/attention/multi_head_attention.h"
#include "llmfs/attention/kv_cache.h"
#include "tensor_compare.h"
#include "tolerances.h"

namespace {

using llmfs::MultiHeadAttention;
using llmfs::MultiHeadAttentionOptions;

void require_close(const torch::Tensor& actual, const torch::Tensor& expected, double atol) {
  const auto check = llmfs::test::compare(actual, expected, atol, 0.0);
  INFO(check.report);
  REQUIRE(check.ok);
}

}  // namespace

TEST_CASE("MultiHeadAttention registers the book's parameter and buffer names",
          "[unit][attention]") {
  MultiHeadAttention att(MultiHeadAttentionOptions(4, 6, 8, 2));
  CHECK(att->named_parameters().keys() ==
        std::vector<std::string>{"W_query.weight", "W_key.weight", "W_value.weight",
                                 "out_proj.weight", "out_proj.bias"});
  CHECK(att->named_buffers().keys() == std::vector<std::string>{"mask"});
  MultiHeadAttention biased(MultiHeadAttentionOptions(4, 6, 8, 2).qkv_bias(true));
  CHECK(biased->named_parameters().keys() ==
        std::vector<std::string>{"W_query.weight", "W_query.bias", "W_key.weight", "W_key.bias",
                                 "W_value.weight", "W_value.bias", "out_proj.weight",
                                 "out_proj.bias"});
  CHECK(att->head_dim() == 3);
}

TEST_CASE("MultiHeadAttention is causal: a token never sees later tokens", "[unit][attention]") {
  for (const bool sdpa : {false, true}) {
    torch::manual_seed(123);
    MultiHeadAttention att(MultiHeadAttentionOptions(4, 4, 8, 2).use_sdpa(sdpa));
    att->eval();
    auto x = torch::rand({1, 5, 4});
    const auto before = att(x);
    x.index_put_({0, 4}, torch::rand({4}));  // change only the last token
    const auto after = att(x);
    INFO("sdpa " << sdpa);
    require_close(after.narrow(1, 0, 4), before.narrow(1, 0, 4), 0.0);
    CHECK_FALSE(torch::equal(after.narrow(1, 4, 1), before.narrow(1, 4, 1)));
  }
}

TEST_CASE("MultiHeadAttention rejects d_out not divisible by num_heads", "[unit][attention]") {
  REQUIRE_THROWS_WITH(MultiHeadAttention(MultiHeadAttentionOptions(4, 6, 8, 4)),
                      llmfs::test::contains_text("must be divisible by num_heads"));
}

TEST_CASE("MultiHeadAttention rejects more tokens than context_length and wrong widths",
          "[unit][attention]") {
  MultiHeadAttention att(MultiHeadAttentionOptions(4, 4, 3, 2));
  CHECK_THROWS_WITH(att(torch::rand({1, 4, 4})),
                    llmfs::test::contains_text("exceed context_length 3"));
  CHECK_THROWS_WITH(att(torch::rand({1, 2, 5})),
                    llmfs::test::contains_text("expected input (B, T, 4)"));
  CHECK_THROWS_WITH(att(torch::rand({2, 4})),
                    llmfs::test::contains_text("expected input (B, T, 4)"));
}

TEST_CASE("The sdpa kernel equals the book's arithmetic in eval mode", "[unit][attention]") {
  struct Shape {
    int64_t b, t, d_in, d_out, heads;
    bool bias;
  };
  for (const auto& s :
       {Shape{1, 1, 4, 4, 1, false}, Shape{2, 6, 3, 2, 2, false}, Shape{3, 17, 32, 48, 4, true},
        Shape{2, 64, 64, 64, 8, false}, Shape{1, 33, 24, 60, 12, true}}) {
    torch::manual_seed(7);
    MultiHeadAttention book(
        MultiHeadAttentionOptions(s.d_in, s.d_out, 64, s.heads).dropout(0.1).qkv_bias(s.bias));
    torch::manual_seed(7);
    MultiHeadAttention sdpa(MultiHeadAttentionOptions(s.d_in, s.d_out, 64, s.heads)
                                .dropout(0.1)
                                .qkv_bias(s.bias)
                                .use_sdpa(true));
    book->eval();
    sdpa->eval();
    const auto x = torch::randn({s.b, s.t, s.d_in});
    INFO("B " << s.b << " T " << s.t << " d_out " << s.d_out << " heads " << s.heads);
    require_close(sdpa(x), book(x), llmfs::test::kSameKernelsAtol);
  }
}

TEST_CASE("MultiHeadAttention applies dropout only in training mode", "[unit][attention]") {
  for (const bool sdpa : {false, true}) {
    torch::manual_seed(3);
    MultiHeadAttention att(MultiHeadAttentionOptions(8, 8, 16, 2).dropout(0.5).use_sdpa(sdpa));
    const auto x = torch::rand({2, 10, 8});
    att->eval();
    const auto a = att(x);
    CHECK(torch::equal(a, att(x)));
    att->train();
    CHECK_FALSE(torch::equal(a, att(x)));
  }
}

TEST_CASE("Feeding tokens through a KV cache gives the full forward's outputs",
          "[unit][attention]") {
  for (const bool sdpa : {false, true}) {
    torch::manual_seed(11);
    MultiHeadAttention att(MultiHeadAttentionOptions(8, 12, 16, 3).qkv_bias(true).use_sdpa(sdpa));
    att->eval();
    const auto x = torch::randn({2, 9, 8});
    const auto full = att(x);
    INFO("sdpa " << sdpa);

    llmfs::LayerKVCache one_by_one;
    std::vector<torch::Tensor> steps;
    for (int64_t t = 0; t < 9; ++t) steps.push_back(att(x.narrow(1, t, 1), &one_by_one));
    CHECK(one_by_one.length() == 9);
    require_close(torch::cat(steps, 1), full, llmfs::test::kSameKernelsAtol);

    llmfs::LayerKVCache chunked;  // a prompt of 4, then chunks of 3 and 2 (offset masks)
    const auto a = att(x.narrow(1, 0, 4), &chunked);
    const auto b = att(x.narrow(1, 4, 3), &chunked);
    const auto c = att(x.narrow(1, 7, 2), &chunked);
    require_close(torch::cat({a, b, c}, 1), full, llmfs::test::kSameKernelsAtol);
  }
}
