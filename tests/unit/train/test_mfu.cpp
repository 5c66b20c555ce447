// MFU: a GPT's training FLOPs per token, torch's matmul rate, and the progress bar's MFU.
#include "llmfs/train/mfu.h"

#include <chrono>
#include <thread>

#include "catch.h"
#include "llmfs/model/gpt_config.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/train/progress.h"

TEST_CASE("GPT-2 124M at context 256 needs 6 N + attention FLOPs per training token",
          "[unit][train]") {
  const auto cfg = llmfs::gpt2_config("124M");
  // N: the matrices of the blocks and the head, counted from the model itself.
  torch::manual_seed(1);
  llmfs::GPTModel model(cfg);
  double matrices = 0;
  for (const auto& p : model->named_parameters()) {
    if (p.value().dim() == 2 && p.key().find("emb") == std::string::npos) matrices += p.value().numel();
  }
  CHECK(matrices == Approx(123.5e6).epsilon(0.001));
  const double attention = 12.0 * cfg.n_layers * cfg.emb_dim * 256;
  CHECK(llmfs::gpt_training_flops_per_token(cfg, 256) == Approx(6 * matrices + attention));
  CHECK(llmfs::gpt_training_flops_per_token(cfg, 256) == Approx(769.4e6).epsilon(0.001));
}

TEST_CASE("measure_matmul_flops gives a rate and leaves the global generator alone",
          "[unit][train]") {
  torch::manual_seed(5);
  const auto before = torch::rand({4});
  torch::manual_seed(5);
  const double rate = llmfs::measure_matmul_flops(torch::kCPU, torch::kFloat32, 0.05);
  CHECK(rate > 1e9);   // any CPU this runs on does more than 1 GFLOP/s
  CHECK(rate < 1e15);
  CHECK(torch::equal(torch::rand({4}), before));  // the same draws as without the measurement
}

TEST_CASE("the progress bar's MFU is tokens/s times FLOPs per token over the peak",
          "[unit][train]") {
  llmfs::ProgressBar bar(10, 0, false);
  CHECK(bar.mfu() == 0.0);  // no FLOPs given: no MFU
  bar.set_flops(1e9, 1e12);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a rate over a measurable time
  bar.step(1, 1000, 3.0);
  const double expected = bar.tokens_per_second() * 1e9 / 1e12;
  CHECK(bar.mfu() == Approx(expected).epsilon(0.05));
  CHECK(bar.mfu() > 0.0);
}
