#include "llmfs/attention/self_attention.h"

#include <cmath>

#include "catch.h"
#include "tensor_compare.h"

namespace {

// softmax(Q Kᵀ / √d_k) V written out once more, from the formula of book §3.4.
torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  return torch::softmax(torch::matmul(q, k.t()) / std::sqrt(static_cast<double>(k.size(1))), 1)
      .matmul(v);
}

}  // namespace

TEST_CASE("SelfAttention_v1 draws its matrices uniformly in the order query, key, value",
          "[unit][attention]") {
  torch::manual_seed(123);
  const auto q = torch::rand({3, 2}), k = torch::rand({3, 2}), v = torch::rand({3, 2});
  torch::manual_seed(123);
  llmfs::SelfAttention_v1 sa(3, 2);
  CHECK(torch::equal(sa->W_query, q));
  CHECK(torch::equal(sa->W_key, k));
  CHECK(torch::equal(sa->W_value, v));
  const auto names = sa->named_parameters().keys();
  CHECK(names == std::vector<std::string>{"W_query", "W_key", "W_value"});
}

TEST_CASE("SelfAttention_v1 computes softmax(Q K^T / sqrt(d_k)) V", "[unit][attention]") {
  torch::manual_seed(1);
  llmfs::SelfAttention_v1 sa(4, 3);
  const auto x = torch::rand({5, 4});
  const auto out = sa(x);
  REQUIRE(out.sizes() == torch::IntArrayRef({5, 3}));
  const auto expected =
      reference(x.matmul(sa->W_query), x.matmul(sa->W_key), x.matmul(sa->W_value));
  const auto check = llmfs::test::compare(out, expected, 1e-6, 1e-6);
  INFO(check.report);
  CHECK(check.ok);
}

TEST_CASE("SelfAttention_v2 uses three bias-free linear layers named as the book's",
          "[unit][attention]") {
  llmfs::SelfAttention_v2 sa(3, 2);
  CHECK(sa->named_parameters().keys() ==
        std::vector<std::string>{"W_query.weight", "W_key.weight", "W_value.weight"});
  llmfs::SelfAttention_v2 biased(3, 2, /*qkv_bias=*/true);
  CHECK(biased->named_parameters().size() == 6);

  torch::manual_seed(2);
  const auto x = torch::rand({6, 3});
  const auto expected = reference(sa->W_query(x), sa->W_key(x), sa->W_value(x));
  const auto check = llmfs::test::compare(sa(x), expected, 1e-6, 1e-6);
  INFO(check.report);
  CHECK(check.ok);
}

TEST_CASE("SelfAttention rejects inputs of the wrong rank", "[unit][attention]") {
  llmfs::SelfAttention_v2 sa(3, 2);
  CHECK_THROWS_WITH(sa(torch::rand({3})), llmfs::test::contains_text("expected (T, d_in)"));
}
