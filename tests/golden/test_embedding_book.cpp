// torch::nn::Embedding under seed 123 gives the book's chapter 2 embedding weights (BOOK.md §3.3,
// C2-28 … C2-30): one N(0, 1) draw per element in row-major order, as PyTorch's nn.Embedding.
#include "catch.h"
#include "tensor_compare.h"
#include "tolerances.h"

TEST_CASE("Embedding(6, 3) after seed 123 has the book's weights (C2-28, C2-29, C2-30)",
          "[golden][book][embedding]") {
  torch::manual_seed(123);
  torch::nn::Embedding embedding_layer(6, 3);

  const auto c2_28 = torch::tensor({{0.3374f, -0.1778f, -0.1690f},
                                    {0.9178f, 1.5810f, 1.3010f},
                                    {1.2753f, -0.2010f, -0.1606f},
                                    {-0.4015f, 0.9666f, -1.1481f},
                                    {-1.1589f, 0.3255f, -0.6315f},
                                    {-2.8400f, -0.7849f, -1.4096f}});
  const auto weights =
      llmfs::test::compare(embedding_layer->weight, c2_28, llmfs::test::kBookPrinted4, 0.0);
  INFO(weights.report);
  CHECK(weights.ok);
  CHECK(embedding_layer->weight.requires_grad());

  const auto id3 = embedding_layer(torch::tensor({3}, torch::kInt64));
  const auto c2_29 = torch::tensor({{-0.4015f, 0.9666f, -1.1481f}});
  const auto one = llmfs::test::compare(id3, c2_29, llmfs::test::kBookPrinted4, 0.0);
  INFO(one.report);
  CHECK(one.ok);

  const auto ids = embedding_layer(torch::tensor({2, 3, 5, 1}, torch::kInt64));
  const auto c2_30 = torch::tensor({{1.2753f, -0.2010f, -0.1606f},
                                    {-0.4015f, 0.9666f, -1.1481f},
                                    {-2.8400f, -0.7849f, -1.4096f},
                                    {0.9178f, 1.5810f, 1.3010f}});
  const auto four = llmfs::test::compare(ids, c2_30, llmfs::test::kBookPrinted4, 0.0);
  INFO(four.report);
  CHECK(four.ok);
  CHECK(ids.grad_fn()->name() == "EmbeddingBackward0");
}
