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
  CHECK(moved == 1024 * 1024 * 4);  // only the 4 MiB weight is large enough
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
