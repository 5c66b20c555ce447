#include "llmfs/attention/causal_attention.h"

#include "catch.h"
#include "tensor_compare.h"

TEST_CASE("CausalAttention registers the book's members and its mask buffer", "[unit][attention]") {
  llmfs::CausalAttention ca(llmfs::CausalAttentionOptions(3, 2, 6));
  CHECK(ca->named_parameters().keys() ==
        std::vector<std::string>{"W_query.weight", "W_key.weight", "W_value.weight"});
  const auto buffers = ca->named_buffers();
  REQUIRE(buffers.size() == 1);
  CHECK(buffers.contains("mask"));
  CHECK(torch::equal(buffers["mask"], torch::triu(torch::ones({6, 6}), 1)));
}

TEST_CASE("CausalAttention is causal: a token never sees later tokens", "[unit][attention]") {
  torch::manual_seed(123);
  llmfs::CausalAttention ca(llmfs::CausalAttentionOptions(4, 3, 8));
  auto x = torch::rand({2, 5, 4});
  const auto before = ca(x);
  REQUIRE(before.sizes() == torch::IntArrayRef({2, 5, 3}));
  x.index_put_({torch::indexing::Slice(), 4}, torch::rand({2, 4}));  // change the last token only
  const auto after = ca(x);
  CHECK(torch::equal(after.narrow(1, 0, 4), before.narrow(1, 0, 4)));
  CHECK_FALSE(torch::equal(after.narrow(1, 4, 1), before.narrow(1, 4, 1)));
}

TEST_CASE("CausalAttention rejects more tokens than context_length", "[unit][attention]") {
  llmfs::CausalAttention ca(llmfs::CausalAttentionOptions(3, 2, 4));
  CHECK_THROWS_WITH(ca(torch::rand({1, 5, 3})), llmfs::test::contains_text("exceed context_length 4"));
  CHECK_THROWS_WITH(ca(torch::rand({1, 4, 2})), llmfs::test::contains_text("expected input (B, T, 3)"));
}

TEST_CASE("CausalAttention applies dropout only in training mode", "[unit][attention]") {
  torch::manual_seed(5);
  llmfs::CausalAttention ca(llmfs::CausalAttentionOptions(4, 4, 8).dropout(0.5));
  const auto x = torch::rand({1, 6, 4});
  ca->eval();
  const auto a = ca(x), b = ca(x);
  CHECK(torch::equal(a, b));
  ca->train();
  torch::manual_seed(1);
  const auto c = ca(x);
  CHECK_FALSE(torch::equal(a, c));
}

TEST_CASE("MultiHeadAttentionWrapper concatenates independent heads", "[unit][attention]") {
  torch::manual_seed(123);
  llmfs::MultiHeadAttentionWrapper mha(llmfs::CausalAttentionOptions(3, 2, 6), 2);
  CHECK(mha->named_parameters().keys() ==
        std::vector<std::string>{"heads.0.W_query.weight", "heads.0.W_key.weight",
                                 "heads.0.W_value.weight", "heads.1.W_query.weight",
                                 "heads.1.W_key.weight", "heads.1.W_value.weight"});
  // The first head is the CausalAttention the same seed builds.
  torch::manual_seed(123);
  llmfs::CausalAttention single(llmfs::CausalAttentionOptions(3, 2, 6));
  const auto x = torch::rand({2, 6, 3});
  const auto out = mha(x);
  REQUIRE(out.sizes() == torch::IntArrayRef({2, 6, 4}));
  CHECK(torch::equal(out.narrow(2, 0, 2), single(x)));
  CHECK_THROWS_WITH(llmfs::MultiHeadAttentionWrapper(llmfs::CausalAttentionOptions(3, 2, 6), 0),
                    llmfs::test::contains_text("num_heads must be positive"));
}
