// Gradient clipping by global norm: PyTorch's rule (BOOK.md §11.1), checked by hand and against
// LibTorch's own clip_grad_norm_.
#include "catch.h"
#include "llmfs/train/grad_clip.h"
#include "tensor_compare.h"

namespace {

std::vector<torch::Tensor> params_with_grads(const std::vector<torch::Tensor>& grads) {
  std::vector<torch::Tensor> params;
  for (const auto& g : grads) {
    auto p = torch::zeros_like(g).requires_grad_(true);
    p.mutable_grad() = g.clone();
    params.push_back(p);
  }
  return params;
}

}  // namespace

TEST_CASE(
    "clip_grad_norm_ scales all gradients by max_norm / (norm + 1e-6) when the norm is larger",
    "[unit][train]") {
  // Global norm of (3, 4) and (12): sqrt(9 + 16 + 144) = 13.
  auto params = params_with_grads({torch::tensor({3.0f, 4.0f}), torch::tensor({12.0f})});
  const auto total = llmfs::clip_grad_norm_(params, 1.0);
  CHECK(total.item<float>() == 13.0f);
  const float coef = 1.0f / (13.0f + 1e-6f);
  CHECK(params[0].grad()[0].item<float>() == Approx(3.0f * coef).epsilon(1e-6));
  CHECK(params[1].grad()[0].item<float>() == Approx(12.0f * coef).epsilon(1e-6));
  CHECK(llmfs::grad_norm(params).item<float>() == Approx(1.0f).epsilon(1e-5));
}

TEST_CASE("clip_grad_norm_ leaves gradients alone below max_norm", "[unit][train]") {
  auto params = params_with_grads({torch::tensor({0.3f, 0.4f})});
  llmfs::clip_grad_norm_(params, 1.0);
  // Multiplied by the clamped coefficient 1.0: unchanged bit for bit.
  CHECK(params[0].grad()[0].item<float>() == 0.3f);
  CHECK(params[0].grad()[1].item<float>() == 0.4f);
}

TEST_CASE("clip_grad_norm_ skips parameters without gradients and agrees with LibTorch's",
          "[unit][train]") {
  torch::manual_seed(7);
  const std::vector<torch::Tensor> grads = {torch::randn({5, 7}) * 3, torch::randn({11}) * 2,
                                            torch::randn({3, 3, 3})};
  auto ours = params_with_grads(grads);
  auto theirs = params_with_grads(grads);
  ours.push_back(torch::zeros({4}, torch::requires_grad()));  // no gradient
  const auto total = llmfs::clip_grad_norm_(ours, 1.0);
  const double their_total = torch::nn::utils::clip_grad_norm_(theirs, 1.0);
  CHECK(total.item<double>() == Approx(their_total).epsilon(1e-6));
  for (size_t i = 0; i < grads.size(); ++i) {
    const auto check = llmfs::test::compare(ours[i].grad(), theirs[i].grad(), 1e-7, 1e-6);
    INFO(check.report);
    CHECK(check.ok);
  }
  CHECK_FALSE(ours.back().grad().defined());
}

TEST_CASE("find_highest_gradient returns the largest gradient element", "[unit][train]") {
  auto params = params_with_grads({torch::tensor({0.5f, -2.0f}), torch::tensor({1.5f})});
  CHECK(llmfs::find_highest_gradient(params).item<float>() == 1.5f);
}
