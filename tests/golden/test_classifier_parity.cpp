// Chapter 6 and appendix E against the book's training loop in Python PyTorch
// (tests/reference/fixtures_classify.py): the same small GPT, the same converted weights (new
// head; LoRA adapters), the same token ids and seeds, so the same shuffled batches; dropout off.
// Every step's loss, every evaluation and every accuracy must agree (losses within 1e-5).
#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "catch.h"
#include "torch_files.h"
#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/finetune/classifier.h"
#include "llmfs/finetune/lora.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/train/trainer.h"
#include "llmfs_test_paths.h"

namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(llmfs::test::kFixturesDir) / "classify";
constexpr double kTol = 1e-5;

// Python's TensorDataset(inputs, labels): (ids (T), label 0-dim).
class TensorPairs : public llmfs::Dataset<llmfs::Example> {
 public:
  TensorPairs(torch::Tensor inputs, torch::Tensor labels)
      : inputs_(std::move(inputs)), labels_(std::move(labels)) {}
  int64_t size() const override { return inputs_.size(0); }
  llmfs::Example get(int64_t i) const override { return {inputs_[i], labels_[i]}; }

 private:
  torch::Tensor inputs_, labels_;
};

}  // namespace

TEST_CASE("classification finetuning equals the book's Python loop step by step (book, LoRA)",
          "[golden][finetune]") {
  const std::string scenario = GENERATE("book", "lora");
  // Every position as the book computes it, and only the one the head reads (forward_rows).
  const bool pooled_only = GENERATE(false, true);
  INFO("scenario " << scenario << ", pooled_only " << pooled_only);
  nlohmann::json ref;
  std::ifstream(kDir / (scenario + ".json")) >> ref;
  const auto& s = ref.at("settings");
  const auto data = llmfs::test::load_tensor_dict(kDir / "data.pt");

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
  config.batch_size = s["batch_size"];
  config.learning_rate = s["learning_rate"];
  config.weight_decay = s["weight_decay"];
  config.eval_freq = s["eval_freq"];
  config.eval_at_end = false;  // the reference loop evaluates every eval_freq steps only
  config.eval_iter = s["eval_iter"];
  config.device = "cpu";
  config.output_dir = (fs::temp_directory_path() /
                       fmt::format("llmfs_test_classify_{}_{}", scenario, pooled_only))
                          .string();
  config.final_checkpoint = false;
  fs::remove_all(config.output_dir);
  const int64_t seed = s["seed"];

  // The fixture's order: seed, loaders, seed, model, surgery, weights, seed, train.
  torch::manual_seed(seed);
  const llmfs::DataLoader<> train(
      std::make_shared<TensorPairs>(data.at("train_inputs"), data.at("train_labels")),
      llmfs::DataLoaderOptions(config.batch_size).shuffle(true).drop_last(true));
  const llmfs::DataLoader<> val(
      std::make_shared<TensorPairs>(data.at("val_inputs"), data.at("val_labels")),
      llmfs::DataLoaderOptions(config.batch_size));
  torch::manual_seed(seed);
  llmfs::GPTModel model(model_config);
  llmfs::replace_output_head(*model, s["num_classes"], seed);
  if (scenario == "lora") {
    llmfs::freeze_all(*model);
    llmfs::LoRAConfig lora;
    lora.rank = s["rank"];
    lora.alpha = s["alpha"];
    CHECK(llmfs::apply_lora(*model, lora) == 2 * 6 + 1);
    llmfs::set_trainable(*model, "lora");
  } else {
    llmfs::set_trainable(*model, "last_block");
  }
  // Trainable parameters: the same names, in the same order, as Python's.
  std::vector<std::string> trainable;
  for (const auto& p : model->named_parameters()) {
    if (p.value().requires_grad()) trainable.push_back(p.key());
  }
  CHECK(trainable == s["trainable"].get<std::vector<std::string>>());
  CHECK(llmfs::count_trainable_parameters(*model) == s["trainable_count"].get<int64_t>());

  // The A matrices and the head were drawn as Python drew them: the saved weights must equal ours.
  const auto init = llmfs::test::load_tensor_dict(kDir / (scenario + "_init.pt"));
  const auto ours = llmfs::model_state_dict(*model);
  for (const auto& [name, tensor] : init) {
    INFO(name);
    REQUIRE(ours.count(name) == 1);
    CHECK(torch::equal(ours.at(name), tensor));
  }

  const llmfs::ClassifierHead head{"last", s["pad_token_id"], torch::kCPU, pooled_only};
  {
    torch::NoGradGuard no_grad;
    model->eval();
    const auto logits = model->forward(data.at("val_inputs").slice(0, 0, 2)).select(1, -1);
    const auto expected = ref["logits_before"].get<std::vector<std::vector<double>>>();
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 2; ++j)
        CHECK(logits[i][j].item<double>() == Approx(expected[i][j]).margin(kTol));
  }

  torch::manual_seed(seed);
  const auto train_source = llmfs::batch_source(train);
  const auto val_source = llmfs::batch_source(val);
  auto hooks = llmfs::classifier_train_hooks(model, head, train_source, val_source,
                                             config.eval_iter);
  std::vector<double> step_losses;
  hooks.on_step = [&](int64_t, double loss) { step_losses.push_back(loss); };
  llmfs::Trainer<> trainer(model.ptr(), config, train_source, val_source, hooks,
                           {.handle_signals = false, .interactive_progress = false});
  const auto result = trainer.fit();

  const auto expected_losses = ref["step_losses"].get<std::vector<double>>();
  REQUIRE(step_losses.size() == expected_losses.size());
  REQUIRE(step_losses.size() >= 10);
  double max_diff = 0;
  for (size_t i = 0; i < step_losses.size(); ++i) {
    INFO("step " << i);
    CHECK(step_losses[i] == Approx(expected_losses[i]).margin(kTol));
    max_diff = std::max(max_diff, std::abs(step_losses[i] - expected_losses[i]));
  }
  const auto& evals = ref["evals"];
  REQUIRE(result.history.points.size() == evals.size());
  for (size_t i = 0; i < evals.size(); ++i) {
    const auto& p = result.history.points[i];
    INFO("evaluation " << i);
    CHECK(p.epoch == evals[i]["epoch"].get<int64_t>());
    CHECK(p.step == evals[i]["step"].get<int64_t>());
    CHECK(p.tokens_seen == evals[i]["examples_seen"].get<int64_t>());  // examples, as the book
    CHECK(p.train_loss == Approx(evals[i]["train_loss"].get<double>()).margin(kTol));
    CHECK(p.val_loss == Approx(evals[i]["val_loss"].get<double>()).margin(kTol));
  }
  const auto& accs = ref["epoch_accuracies"];
  REQUIRE(result.history.epochs.size() == accs.size());
  for (size_t i = 0; i < accs.size(); ++i) {
    INFO("epoch " << i + 1);
    const auto& m = result.history.epochs[i].metrics;
    CHECK(m.at("train_accuracy") == Approx(accs[i]["train"].get<double>()).margin(1e-12));
    CHECK(m.at("val_accuracy") == Approx(accs[i]["val"].get<double>()).margin(1e-12));
  }
  // The book's final accuracies over whole loaders (a training pass, then validation).
  torch::NoGradGuard no_grad;
  model->eval();
  CHECK(llmfs::calc_accuracy_loader(*train_source, model, head).accuracy() ==
        Approx(ref["final_accuracies"]["train"].get<double>()).margin(1e-12));
  CHECK(llmfs::calc_accuracy_loader(*val_source, model, head).accuracy() ==
        Approx(ref["final_accuracies"]["val"].get<double>()).margin(1e-12));
  WARN(scenario << " (pooled_only " << pooled_only << "): largest step-loss difference to Python "
                << max_diff);
}
