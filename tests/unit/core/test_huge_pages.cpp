#include "llmfs/core/huge_pages.h"

#include <cstdint>

#include "catch.h"

TEST_CASE("place_on_huge_pages keeps values and identity and aligns large tensors", "[unit][core]") {
  torch::manual_seed(1);
  torch::nn::Sequential model(torch::nn::Linear(1024, 1024), torch::nn::Linear(1024, 16));
  const auto before = model->named_parameters();
  std::vector<torch::Tensor> values;
  for (const auto& p : before) values.push_back(p.value().clone());

  const int64_t moved = llmfs::place_on_huge_pages(*model);
  CHECK(moved == 1024 * 1024 * 4 + 16 * 1024 * 4);  // the weights; the biases are too small
  CHECK(llmfs::place_on_huge_pages(*model) == 0);     // placed already: nothing moves again
  const auto after = model->named_parameters();
  REQUIRE(after.size() == before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].value().is_same(before[i].value()));  // the same parameter object
    CHECK(torch::equal(after[i].value(), values[i]));
  }
  const auto weight = model[0]->as<torch::nn::Linear>()->weight;
  CHECK(reinterpret_cast<std::uintptr_t>(weight.data_ptr()) % (2 << 20) == 0);

  // Still trainable.
  const auto out = model->forward(torch::rand({2, 1024}));
  CHECK(out.sizes() == torch::IntArrayRef({2, 16}));
  out.sum().backward();
  CHECK(weight.grad().defined());
}

TEST_CASE("place_on_huge_pages packs tensors under 2 MiB into shared huge-page blocks",
          "[unit][core]") {
  // bf16 768 x 768: 1.2 MB each, the attention matrices of a GPT-2 block decoded in bf16.
  torch::manual_seed(2);
  torch::nn::Sequential model(torch::nn::Linear(768, 768), torch::nn::Linear(768, 768),
                              torch::nn::Linear(768, 768));
  model->to(torch::kBFloat16);
  std::vector<torch::Tensor> values;
  for (const auto& p : model->parameters()) values.push_back(p.clone());
  CHECK(llmfs::place_on_huge_pages(*model) == 3 * 768 * 768 * 2);
  const auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) CHECK(torch::equal(params[i], values[i]));
  // One block: the first weight at its 2 MiB-aligned start, the others after it.
  const auto first = reinterpret_cast<std::uintptr_t>(model[0]->as<torch::nn::Linear>()->weight.data_ptr());
  CHECK(first % (2 << 20) == 0);
  for (int i = 1; i < 3; ++i) {
    const auto p = reinterpret_cast<std::uintptr_t>(model[i]->as<torch::nn::Linear>()->weight.data_ptr());
    CHECK(p - first == static_cast<std::uintptr_t>(i) * 768 * 768 * 2);
  }
  CHECK(llmfs::place_on_huge_pages(*model) == 0);
  // The block outlives any one tensor in it: the others keep their values.
  model[0]->as<torch::nn::Linear>()->weight.set_data(torch::zeros({768, 768}, torch::kBFloat16));
  CHECK(torch::equal(model[2]->as<torch::nn::Linear>()->weight, values[4]));
}
