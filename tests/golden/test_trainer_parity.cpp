// llmfs::Trainer against the book's training loop in Python PyTorch (tests/reference/
// fixtures_train.py): same small GPT, same initial weights, same token ids and seeds, so the same
// shuffled batches; dropout off. Every step's loss and every evaluation must agree within 1e-4
// (the tolerance; same kernels, so in practice to the last bits).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "catch.h"
#include "torch_files.h"
#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/data/gpt_dataset.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/train/trainer.h"
#include "llmfs_test_paths.h"
#include "tolerances.h"

namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(llmfs::test::kFixturesDir) / "train";

std::vector<int64_t> ids(const torch::Tensor& t) {
  const auto c = t.to(torch::kInt64).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

}  // namespace

TEST_CASE("the trainer's losses equal the book's Python training loop, step by step",
          "[golden][train]") {
  const std::string scenario = GENERATE("book", "appendix_d", "fused");
  INFO("scenario " << scenario);
  nlohmann::json ref;
  std::ifstream(kDir / (scenario + ".json")) >> ref;
  const auto& s = ref.at("settings");
  const auto tokens = llmfs::test::load_tensor_dict(kDir / "tokens.pt");

  llmfs::GPTConfig model_config;
  model_config.vocab_size = ref["model"]["vocab_size"];
  model_config.context_length = ref["model"]["context_length"];
  model_config.emb_dim = ref["model"]["emb_dim"];
  model_config.n_heads = ref["model"]["n_heads"];
  model_config.n_layers = ref["model"]["n_layers"];
  model_config.drop_rate = ref["model"]["drop_rate"];
  model_config.qkv_bias = ref["model"]["qkv_bias"];

  llmfs::TrainConfig config;
  config.num_epochs = s["num_epochs"];
  config.batch_size = ref["batch_size"];
  config.learning_rate = s["learning_rate"];
  config.weight_decay = s["weight_decay"];
  config.eval_freq = s["eval_freq"];
  config.eval_at_end = false;  // the reference loop evaluates every eval_freq steps only
  config.eval_iter = s["eval_iter"];
  config.lr_schedule = s["lr_schedule"];
  config.warmup_steps = s["warmup_steps"];
  config.initial_lr = s["initial_lr"];
  config.min_lr = s["min_lr"];
  if (!s["grad_clip"].is_null()) config.grad_clip = s["grad_clip"].get<double>();
  config.fused_adamw = s["fused_adamw"];
  config.device = "cpu";
  config.output_dir = (fs::temp_directory_path() / ("llmfs_test_parity_" + scenario)).string();
  config.final_checkpoint = false;
  fs::remove_all(config.output_dir);

  // The fixture's order: seed, loaders, seed, model (weights then replaced), seed, train.
  const int64_t seed = ref["seed"], max_length = ref["max_length"];
  torch::manual_seed(seed);
  const llmfs::DataLoader<> train(
      std::make_shared<llmfs::GPTDatasetV1>(ids(tokens.at("train")), max_length, max_length),
      llmfs::DataLoaderOptions(config.batch_size).shuffle(true).drop_last(true));
  const llmfs::DataLoader<> val(
      std::make_shared<llmfs::GPTDatasetV1>(ids(tokens.at("val")), max_length, max_length),
      llmfs::DataLoaderOptions(config.batch_size));
  torch::manual_seed(seed);
  llmfs::GPTModel model(model_config);
  llmfs::load_model_state_dict(*model, llmfs::test::load_tensor_dict(kDir / (scenario + "_init.pt")), scenario + "_init.pt");
  torch::manual_seed(seed);

  std::vector<double> step_losses;
  llmfs::TrainHooks<> hooks;
  hooks.loss = [model](const llmfs::Batch& b) mutable {
    return llmfs::calc_loss_batch(b.input, b.target, model, torch::Device(torch::kCPU));
  };
  hooks.on_step = [&](int64_t, double loss) { step_losses.push_back(loss); };
  llmfs::Trainer<> trainer(model.ptr(), config, llmfs::batch_source(train),
                           llmfs::batch_source(val), hooks,
                           {.handle_signals = false, .interactive_progress = false});
  const auto result = trainer.fit();

  const auto expected_losses = ref["step_losses"].get<std::vector<double>>();
  REQUIRE(step_losses.size() == expected_losses.size());
  REQUIRE(step_losses.size() >= 20);
  double max_diff = 0;
  for (size_t i = 0; i < step_losses.size(); ++i) {
    INFO("step " << i);
    CHECK(step_losses[i] == Approx(expected_losses[i]).margin(llmfs::test::kBookPrinted4));
    max_diff = std::max(max_diff, std::abs(step_losses[i] - expected_losses[i]));
  }
  const auto expected_lrs = ref["lrs"].get<std::vector<double>>();
  REQUIRE(result.history.track_lrs.size() == expected_lrs.size());
  for (size_t i = 0; i < expected_lrs.size(); ++i) {
    CHECK(result.history.track_lrs[i] == Approx(expected_lrs[i]).epsilon(1e-15));
  }
  const auto& evals = ref["evals"];
  REQUIRE(result.history.points.size() == evals.size());
  for (size_t i = 0; i < evals.size(); ++i) {
    const auto& p = result.history.points[i];
    INFO("evaluation " << i);
    CHECK(p.epoch == evals[i]["epoch"].get<int64_t>());
    CHECK(p.step == evals[i]["step"].get<int64_t>());
    CHECK(p.tokens_seen == evals[i]["tokens_seen"].get<int64_t>());
    CHECK(p.train_loss == Approx(evals[i]["train_loss"].get<double>()).margin(llmfs::test::kBookPrinted4));
    CHECK(p.val_loss == Approx(evals[i]["val_loss"].get<double>()).margin(llmfs::test::kBookPrinted4));
  }
  WARN(scenario << ": largest step-loss difference to Python " << max_diff);
}
