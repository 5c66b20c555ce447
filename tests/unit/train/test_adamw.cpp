// AdamW: PyTorch's update rule, decoupled weight decay on every parameter, state round trips.
#include <cmath>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/train/adamw.h"
#include "tensor_compare.h"

namespace {

llmfs::NamedParameters make_params(std::vector<torch::Tensor> values) {
  llmfs::NamedParameters out;
  for (size_t i = 0; i < values.size(); ++i) {
    out.emplace_back("p" + std::to_string(i), values[i].clone().requires_grad_(true));
  }
  return out;
}

void set_grads(const llmfs::NamedParameters& params, const std::vector<torch::Tensor>& grads) {
  for (size_t i = 0; i < params.size(); ++i) {
    auto p = params[i].second;
    p.mutable_grad() = grads[i].clone();
  }
}

}  // namespace

TEST_CASE("AdamW's first steps follow the decoupled-decay formula", "[unit][train]") {
  const double lr = 0.01, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  auto params = make_params({torch::tensor({1.0, -2.0}, torch::kFloat64)});
  llmfs::AdamW opt(params, {.lr = lr, .beta1 = b1, .beta2 = b2, .eps = eps, .weight_decay = wd});
  const std::vector<double> grads1 = {0.5, -0.25}, grads2 = {-1.0, 0.75};
  std::vector<double> p = {1.0, -2.0}, m = {0, 0}, v = {0, 0};
  for (int step = 1; step <= 2; ++step) {
    const auto& g = step == 1 ? grads1 : grads2;
    set_grads(params, {torch::tensor(g, torch::kFloat64)});
    opt.step();
    for (size_t i = 0; i < 2; ++i) {
      p[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const double m_hat = m[i] / (1 - std::pow(b1, step));
      const double v_hat = v[i] / (1 - std::pow(b2, step));
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
    const auto got = params[0].second;
    INFO("step " << step);
    CHECK(got[0].item<double>() == Approx(p[0]).epsilon(1e-12));
    CHECK(got[1].item<double>() == Approx(p[1]).epsilon(1e-12));
  }
  CHECK(opt.step_count() == 2);
}

TEST_CASE("AdamW decays every parameter, biases included, and skips those without gradients",
          "[unit][train]") {
  auto params = make_params({torch::ones({3}), torch::ones({2})});
  llmfs::AdamW opt(params, {.lr = 0.1, .weight_decay = 0.5});
  auto p0 = params[0].second;
  p0.mutable_grad() = torch::zeros({3});  // zero gradient: only the decay moves it
  opt.step();
  CHECK(params[0].second[0].item<float>() == Approx(1.0 - 0.1 * 0.5));
  CHECK(params[1].second[0].item<float>() == 1.0f);  // no gradient: untouched
}

TEST_CASE("AdamW leaves frozen parameters out", "[unit][train]") {
  auto params = make_params({torch::ones({3}), torch::ones({2})});
  params[1].second.requires_grad_(false);
  llmfs::AdamW opt(params, {});
  REQUIRE(opt.parameters().size() == 1);
  CHECK(opt.parameters()[0].first == "p0");
  params[0].second.requires_grad_(false);
  CHECK_THROWS_WITH(llmfs::AdamW(params, {}),
                    llmfs::test::contains_text("no trainable parameters"));
}

TEST_CASE("the fused AdamW kernel gives the same update up to rounding", "[unit][train]") {
  torch::manual_seed(3);
  const std::vector<torch::Tensor> init = {torch::randn({16, 8}), torch::randn({8})};
  auto a = make_params(init);
  auto b = make_params(init);
  llmfs::AdamW single(a, {.lr = 1e-2, .weight_decay = 0.1});
  llmfs::AdamW fused(b, {.lr = 1e-2, .weight_decay = 0.1, .fused = true});
  for (int step = 0; step < 5; ++step) {
    const std::vector<torch::Tensor> grads = {torch::randn({16, 8}), torch::randn({8})};
    set_grads(a, grads);
    set_grads(b, grads);
    single.step();
    fused.step();
  }
  for (size_t i = 0; i < a.size(); ++i) {
    const auto check = llmfs::test::compare(b[i].second, a[i].second, 1e-6, 1e-5);
    INFO(check.report);
    CHECK(check.ok);
  }
  CHECK(fused.step_count() == 5);
}

TEST_CASE("AdamW's state survives a save and load: the next steps are identical", "[unit][train]") {
  torch::manual_seed(5);
  const std::vector<torch::Tensor> init = {torch::randn({4, 3}), torch::randn({3})};
  auto a = make_params(init);
  llmfs::AdamW first(a, {.lr = 3e-3, .weight_decay = 0.1});
  for (int step = 0; step < 3; ++step) {
    set_grads(a, {torch::randn({4, 3}), torch::randn({3})});
    first.step();
  }
  const auto state = first.state_dict();
  CHECK(state.count("p0.exp_avg") == 1);
  CHECK(state.at("p1.step").item<float>() == 3.0f);

  std::vector<torch::Tensor> now;
  for (const auto& [n, p] : a) now.push_back(p.detach());
  auto b = make_params(now);
  llmfs::AdamW second(b, {.lr = 1.0, .weight_decay = 0.1});
  second.load_state_dict(state, "test");
  CHECK(second.lr() == 3e-3);
  const std::vector<torch::Tensor> grads = {torch::randn({4, 3}), torch::randn({3})};
  set_grads(a, grads);
  set_grads(b, grads);
  first.step();
  second.step();
  for (size_t i = 0; i < a.size(); ++i) CHECK(torch::equal(a[i].second, b[i].second));
}

TEST_CASE("AdamW refuses the state of another model, naming the tensor", "[unit][train]") {
  auto a = make_params({torch::zeros({4, 3})});
  llmfs::AdamW opt(a, {});
  std::map<std::string, torch::Tensor> state = {{"p0.exp_avg", torch::zeros({4, 2})},
                                                {"p0.exp_avg_sq", torch::zeros({4, 2})},
                                                {"p0.step", torch::tensor(1.0f)}};
  CHECK_THROWS_WITH(
      opt.load_state_dict(state, "ckpt/optimizer.pt"),
      llmfs::test::contains_text("ckpt/optimizer.pt: tensor 'p0.exp_avg' has shape [4, 2]"));
  state = {{"q.exp_avg", torch::zeros({4, 3})}};
  CHECK_THROWS_WITH(opt.load_state_dict(state, "ckpt/optimizer.pt"),
                    llmfs::test::contains_text("unknown parameter 'q'"));
}
