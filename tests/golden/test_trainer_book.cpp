// The book repository's own CI checks of its trainers (BOOK.md §15), run with llmfs::Trainer on
// the chapter-5 model (124M, context 256, drop_rate 0.1) and the first window of the-verdict's
// training and validation splits, batch 1, exactly as the repository's tests do:
//   CI-05  train_model_simple, lr 5e-4, 2 epochs, eval_freq 1, eval_iter 1
//   CI-06  appendix D's train_model: peak 1e-3, warmup 1 step, initial and min lr 1e-5, 6 epochs,
//          eval_freq 5, clipping at 1.0
// Dropout is active (tag R): the first losses, rounded to one decimal, hold on the default CPU
// Bernoulli path (BOOK.md §13.3).
#include <cmath>
#include <filesystem>

#include "catch.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/data_files.h"
#include "llmfs/data/gpt_dataset.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/train/pretrain_data.h"
#include "llmfs/train/trainer.h"

namespace fs = std::filesystem;

namespace {

// PyTorch's Subset(dataset, range(n)).
class FirstExamples : public llmfs::Dataset<llmfs::Example> {
 public:
  FirstExamples(std::shared_ptr<const llmfs::GPTDatasetV1> base, int64_t n) : base_(std::move(base)), n_(n) {}
  int64_t size() const override { return n_; }
  llmfs::Example get(int64_t i) const override { return base_->get(i); }

 private:
  std::shared_ptr<const llmfs::GPTDatasetV1> base_;
  int64_t n_;
};

struct Run {
  std::vector<double> train_losses, val_losses;
};

Run run_ci_check(llmfs::TrainConfig config, bool model_before_loaders) {
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  const auto split = llmfs::split_text(llmfs::read_training_text("the-verdict.txt"), 0.9);
  llmfs::GPTConfig cfg;
  cfg.context_length = 256;
  torch::manual_seed(123);
  std::optional<llmfs::GPTModel> model;
  if (model_before_loaders) model.emplace(cfg);  // test_appendix_d.py builds the model first
  const auto train_set = std::make_shared<llmfs::GPTDatasetV1>(split.train, tokenizer, 256, 256);
  const auto val_set = std::make_shared<llmfs::GPTDatasetV1>(split.val, tokenizer, 256, 256);
  const llmfs::DataLoader<> train(std::make_shared<FirstExamples>(train_set, 1), llmfs::DataLoaderOptions(1));
  const llmfs::DataLoader<> val(std::make_shared<FirstExamples>(val_set, 1), llmfs::DataLoaderOptions(1));
  if (!model) model.emplace(cfg);  // test_ch05.py: after the loaders (which draw nothing)

  config.batch_size = 1;
  config.weight_decay = 0.1;
  config.eval_iter = 1;
  config.device = "cpu";
  config.final_checkpoint = false;
  config.output_dir = (fs::temp_directory_path() / "llmfs_test_trainer_book").string();
  fs::remove_all(config.output_dir);
  llmfs::TrainHooks<> hooks;
  auto m = *model;
  hooks.loss = [m](const llmfs::Batch& b) mutable {
    return llmfs::calc_loss_batch(b.input, b.target, m, torch::Device(torch::kCPU));
  };
  llmfs::Trainer<> trainer(m.ptr(), config, llmfs::batch_source(train), llmfs::batch_source(val), hooks,
                           {.handle_signals = false, .interactive_progress = false});
  const auto result = trainer.fit();
  return {result.history.train_losses(), result.history.val_losses()};
}

double round1(double x) { return std::round(x * 10) / 10; }

}  // namespace

TEST_CASE("train_model_simple on one batch: first losses 7.6 / 10.1, then lower (CI-05)",
          "[golden][book][train]") {
  llmfs::TrainConfig config;
  config.learning_rate = 5e-4;
  config.num_epochs = 2;
  config.eval_freq = 1;
  const auto run = run_ci_check(config, false);
  REQUIRE(run.train_losses.size() == 2);
  CHECK(round1(run.train_losses.front()) == 7.6);
  CHECK(round1(run.val_losses.front()) == 10.1);
  CHECK(run.train_losses.back() < run.train_losses.front());
}

TEST_CASE("appendix D's train_model on one batch: first losses 10.9 / 11.0, then lower (CI-06)",
          "[golden][book][train]") {
  llmfs::TrainConfig config;
  config.learning_rate = 1e-3;
  config.num_epochs = 6;
  config.eval_freq = 5;
  config.lr_schedule = "warmup_cosine";
  config.warmup_steps = 1;
  config.initial_lr = 1e-5;
  config.min_lr = 1e-5;
  config.grad_clip = 1.0;
  const auto run = run_ci_check(config, true);
  REQUIRE(run.train_losses.size() == 2);  // steps 0 and 5
  CHECK(round1(run.train_losses.front()) == 10.9);
  CHECK(round1(run.val_losses.front()) == 11.0);
  CHECK(run.train_losses.back() < run.train_losses.front());
}
