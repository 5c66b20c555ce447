// The book's chapter-3 values (BOOK.md §4.2): the attention classes built after the book's seeds
// reproduce its printed context vectors to 4 decimals.
#include <limits>

#include "catch.h"
#include "llmfs/attention/causal_attention.h"
#include "llmfs/attention/multi_head_attention.h"
#include "llmfs/attention/self_attention.h"
#include "tensor_compare.h"
#include "tolerances.h"

namespace {

// "Your journey starts with one step" (BOOK.md §4.1).
torch::Tensor inputs() {
  return torch::tensor({{0.43f, 0.15f, 0.89f},
                        {0.55f, 0.87f, 0.66f},
                        {0.57f, 0.85f, 0.64f},
                        {0.22f, 0.58f, 0.33f},
                        {0.77f, 0.25f, 0.10f},
                        {0.05f, 0.80f, 0.55f}});
}

torch::Tensor batch() { return torch::stack({inputs(), inputs()}); }  // C3-29: (2, 6, 3)

void check_book(const torch::Tensor& actual, const torch::Tensor& printed) {
  const auto check = llmfs::test::compare(actual, printed, llmfs::test::kBookPrinted4, 0.0);
  INFO(check.report);
  CHECK(check.ok);
}

// Both batch rows of C3-30/C3-31/C3-32 print the same values.
torch::Tensor twice(const torch::Tensor& rows) { return torch::stack({rows, rows}); }

}  // namespace

TEST_CASE("SelfAttention_v1 with seed 123 gives C3-19", "[golden][book][attention]") {
  torch::manual_seed(123);
  llmfs::SelfAttention_v1 sa(3, 2);
  check_book(sa(inputs()), torch::tensor({{0.2996f, 0.8053f},
                                          {0.3061f, 0.8210f},
                                          {0.3058f, 0.8203f},
                                          {0.2948f, 0.7939f},
                                          {0.2927f, 0.7891f},
                                          {0.2990f, 0.8040f}}));
  // C3-13: query_2 = x_2 @ W_query.
  check_book(inputs()[1].matmul(sa->W_query), torch::tensor({0.4306f, 1.4551f}));
}

TEST_CASE("SelfAttention_v2 with seed 789 gives C3-20 and the weights of C3-21",
          "[golden][book][attention]") {
  torch::manual_seed(789);
  llmfs::SelfAttention_v2 sa(3, 2);
  check_book(sa(inputs()), torch::tensor({{-0.0739f, 0.0713f},
                                          {-0.0748f, 0.0703f},
                                          {-0.0749f, 0.0702f},
                                          {-0.0760f, 0.0685f},
                                          {-0.0763f, 0.0679f},
                                          {-0.0754f, 0.0693f}}));
  const auto scores = sa->W_query(inputs()).matmul(sa->W_key(inputs()).t());
  const auto weights = torch::softmax(scores / std::pow(2.0, 0.5), -1);
  check_book(weights, torch::tensor({{0.1921f, 0.1646f, 0.1652f, 0.1550f, 0.1721f, 0.1510f},
                                     {0.2041f, 0.1659f, 0.1662f, 0.1496f, 0.1665f, 0.1477f},
                                     {0.2036f, 0.1659f, 0.1662f, 0.1498f, 0.1664f, 0.1480f},
                                     {0.1869f, 0.1667f, 0.1668f, 0.1571f, 0.1661f, 0.1564f},
                                     {0.1830f, 0.1669f, 0.1670f, 0.1588f, 0.1658f, 0.1585f},
                                     {0.1935f, 0.1663f, 0.1666f, 0.1542f, 0.1666f, 0.1529f}}));
  // C3-26: the -inf mask before the softmax.
  const auto masked = scores.masked_fill(llmfs::causal_mask(6).to(torch::kBool),
                                         -std::numeric_limits<double>::infinity());
  check_book(torch::softmax(masked / std::pow(2.0, 0.5), -1),
             torch::tensor({{1.0000f, 0.0000f, 0.0000f, 0.0000f, 0.0000f, 0.0000f},
                            {0.5517f, 0.4483f, 0.0000f, 0.0000f, 0.0000f, 0.0000f},
                            {0.3800f, 0.3097f, 0.3103f, 0.0000f, 0.0000f, 0.0000f},
                            {0.2758f, 0.2460f, 0.2462f, 0.2319f, 0.0000f, 0.0000f},
                            {0.2175f, 0.1983f, 0.1984f, 0.1888f, 0.1971f, 0.0000f},
                            {0.1935f, 0.1663f, 0.1666f, 0.1542f, 0.1666f, 0.1529f}}));
}

TEST_CASE("CausalAttention with seed 123 gives C3-30", "[golden][book][attention]") {
  torch::manual_seed(123);
  llmfs::CausalAttention ca(llmfs::CausalAttentionOptions(3, 2, 6).dropout(0.0));
  const auto out = ca(batch());
  CHECK(out.sizes() == torch::IntArrayRef({2, 6, 2}));
  check_book(out, twice(torch::tensor({{-0.4519f, 0.2216f},
                                       {-0.5874f, 0.0058f},
                                       {-0.6300f, -0.0632f},
                                       {-0.5675f, -0.0843f},
                                       {-0.5526f, -0.0981f},
                                       {-0.5299f, -0.1081f}})));
}

TEST_CASE("MultiHeadAttentionWrapper with seed 123 gives C3-31", "[golden][book][attention]") {
  torch::manual_seed(123);
  llmfs::MultiHeadAttentionWrapper mha(llmfs::CausalAttentionOptions(3, 2, 6).dropout(0.0), 2);
  const auto out = mha(batch());
  CHECK(out.sizes() == torch::IntArrayRef({2, 6, 4}));
  check_book(out, twice(torch::tensor({{-0.4519f, 0.2216f, 0.4772f, 0.1063f},
                                       {-0.5874f, 0.0058f, 0.5891f, 0.3257f},
                                       {-0.6300f, -0.0632f, 0.6202f, 0.3860f},
                                       {-0.5675f, -0.0843f, 0.5478f, 0.3589f},
                                       {-0.5526f, -0.0981f, 0.5321f, 0.3428f},
                                       {-0.5299f, -0.1081f, 0.5077f, 0.3493f}})));
}

TEST_CASE("MultiHeadAttention with seed 123 gives C3-32, with either kernel",
          "[golden][book][attention]") {
  for (const bool sdpa : {false, true}) {
    torch::manual_seed(123);
    llmfs::MultiHeadAttention mha(
        llmfs::MultiHeadAttentionOptions(3, 2, 6, 2).dropout(0.0).use_sdpa(sdpa));
    const auto out = mha(batch());
    INFO("sdpa " << sdpa);
    CHECK(out.sizes() == torch::IntArrayRef({2, 6, 2}));
    check_book(out, twice(torch::tensor({{0.3190f, 0.4858f},
                                         {0.2943f, 0.3897f},
                                         {0.2856f, 0.3593f},
                                         {0.2693f, 0.3873f},
                                         {0.2639f, 0.3928f},
                                         {0.2575f, 0.4028f}})));
  }
}

TEST_CASE("Dropout follows PyTorch's default CPU Bernoulli path (C3-27, C3-28)",
          "[golden][book][attention]") {
  // BOOK.md §13.3: the default path prints the first row 2, 2, 0, 2, 2, 0; the MKL path
  // 2, 2, 2, 2, 2, 2. The book's saved outputs come from the default path.
  torch::manual_seed(123);
  torch::nn::Dropout dropout(0.5);
  const auto out = dropout(torch::ones({6, 6}));
  CHECK(torch::equal(out, torch::tensor({{2.f, 2.f, 0.f, 2.f, 2.f, 0.f},
                                         {0.f, 0.f, 0.f, 2.f, 0.f, 2.f},
                                         {2.f, 2.f, 2.f, 2.f, 0.f, 2.f},
                                         {0.f, 2.f, 2.f, 0.f, 0.f, 2.f},
                                         {0.f, 2.f, 0.f, 2.f, 0.f, 2.f},
                                         {0.f, 2.f, 2.f, 2.f, 2.f, 0.f}})));
}
