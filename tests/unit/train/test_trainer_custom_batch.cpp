// The Trainer from outside common/: a batch type of this test's own (no `input` tensor), a batch
// source of its own, a loss hook that returns metrics next to the loss, and epoch-end metrics.
// They must reach metrics.jsonl / metrics.csv / epoch_metrics.csv and survive a resume.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/train/trainer.h"

namespace fs = std::filesystem;

namespace {

// Two-class points: features (B, 2) and labels (B). Not the trainer's Batch.
struct PointBatch {
  torch::Tensor features;
  torch::Tensor labels;
};

// A fixed list of batches in order (no shuffling, so no draws).
class PointSource final : public llmfs::BatchSource<PointBatch> {
 public:
  explicit PointSource(std::vector<PointBatch> batches) : batches_(std::move(batches)) {}

  class VectorPass final : public Pass {
   public:
    VectorPass(const std::vector<PointBatch>& batches, int64_t next)
        : batches_(batches), next_(next) {}
    const PointBatch* next() override {
      if (next_ >= static_cast<int64_t>(batches_.size())) return nullptr;
      return &batches_[static_cast<size_t>(next_++)];
    }
    llmfs::DataLoaderPosition position() const override {
      llmfs::DataLoaderPosition p;
      p.batches_yielded = next_;
      return p;
    }

   private:
    const std::vector<PointBatch>& batches_;
    int64_t next_;
  };

  int64_t size() const override { return static_cast<int64_t>(batches_.size()); }
  std::unique_ptr<Pass> start(int64_t /*epoch*/ = 0) const override { return std::make_unique<VectorPass>(batches_, 0); }
  std::unique_ptr<Pass> resume(const llmfs::DataLoaderPosition& p) const override {
    return std::make_unique<VectorPass>(batches_, p.batches_yielded);
  }

 private:
  std::vector<PointBatch> batches_;
};

// Separable points: label 1 when x0 + x1 > 0.
std::shared_ptr<const PointSource> points(int64_t batches, int64_t seed) {
  torch::manual_seed(static_cast<uint64_t>(seed));
  std::vector<PointBatch> out;
  for (int64_t i = 0; i < batches; ++i) {
    const auto x = torch::randn({8, 2});
    out.push_back({x, (x.sum(1) > 0).to(torch::kLong)});
  }
  return std::make_shared<PointSource>(std::move(out));
}

struct Classifier {
  torch::nn::Linear model{nullptr};
  llmfs::TrainHooks<PointBatch> hooks;
};

Classifier make_classifier() {
  torch::manual_seed(7);
  Classifier c;
  c.model = torch::nn::Linear(2, 2);
  auto model = c.model;
  c.hooks.loss = [model](const PointBatch& b) mutable -> llmfs::LossOutput {
    const auto logits = model(b.features);
    const auto loss = torch::nn::functional::cross_entropy(logits, b.labels);
    const auto accuracy = logits.argmax(1).eq(b.labels).to(torch::kFloat).mean();
    return {loss, {{"accuracy", accuracy.detach()}}};
  };
  c.hooks.count_tokens = [](const PointBatch& b) { return b.features.size(0); };
  return c;
}

llmfs::TrainConfig config_for(const fs::path& dir) {
  llmfs::TrainConfig config;
  config.num_epochs = 3;
  config.learning_rate = 0.05;
  config.weight_decay = 0.0;
  config.eval_freq = 2;
  config.eval_iter = 3;
  config.device = "cpu";
  config.output_dir = dir.string();
  return config;
}

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("A Trainer over a batch type of its own records the loss hook's metrics",
          "[unit][train]") {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_custom_batch";
  fs::remove_all(dir);
  auto classifier = make_classifier();
  int64_t epochs_seen = 0;
  classifier.hooks.on_epoch_end = [&](int64_t epoch) -> std::map<std::string, double> {
    ++epochs_seen;
    return {{"epoch_squared", static_cast<double>(epoch * epoch)}};
  };
  llmfs::Trainer<PointBatch> trainer(
      classifier.model.ptr(), config_for(dir), points(6, 1), points(3, 2), classifier.hooks,
      {.config_yaml = "model: linear\n", .interactive_progress = false});
  const auto result = trainer.fit();
  CHECK(result.global_step == 17);  // 6 batches x 3 epochs
  CHECK(result.tokens_seen == 18 * 8);
  CHECK(epochs_seen == 3);

  // Every evaluation has the loss hook's metric for both loaders, averaged like the loss.
  REQUIRE(result.history.points.size() == 10);  // steps 0, 2, ..., 16 and the last, 17
  for (const auto& p : result.history.points) {
    REQUIRE(p.extra.count("train_accuracy") == 1);
    REQUIRE(p.extra.count("val_accuracy") == 1);
    CHECK(p.extra.at("val_accuracy") >= 0.0);
    CHECK(p.extra.at("val_accuracy") <= 1.0);
  }
  // Separable data: the classifier learns (accuracy rises, loss falls).
  CHECK(result.history.points.back().extra.at("train_accuracy") >
        result.history.points.front().extra.at("train_accuracy"));
  CHECK(result.history.points.back().train_loss < result.history.points.front().train_loss);
  REQUIRE(result.history.epochs.size() == 3);
  CHECK(result.history.epochs[2].metrics.at("epoch_squared") == 9.0);
  CHECK(result.history.epochs[2].step == 17);

  // The files: metrics.jsonl has both kinds of line, in order; the CSVs their columns.
  const auto history = llmfs::read_metrics_history(dir / "metrics.jsonl");
  REQUIRE(history.points.size() == 10);
  CHECK(history.points[4].same_values(result.history.points[4]));
  CHECK((history.epochs == result.history.epochs));
  const auto jsonl = lines_of(dir / "metrics.jsonl");
  REQUIRE(jsonl.size() == 13);
  CHECK(jsonl[3].find("\"event\":\"epoch_end\"") != std::string::npos);  // after steps 0, 2, 4
  CHECK(jsonl[3].find("\"epoch_squared\":1.0") != std::string::npos);
  const auto csv = lines_of(dir / "metrics.csv");
  CHECK(csv.at(0).ends_with(",train_accuracy,val_accuracy"));
  const auto epoch_csv = lines_of(dir / "epoch_metrics.csv");
  REQUIRE(epoch_csv.size() == 4);
  CHECK(epoch_csv[0] == "epoch,step,tokens_seen,epoch_squared");
  CHECK(epoch_csv[2] == "2,11,96,4");
  CHECK(llmfs::read_file(dir / "config.yaml") == "model: linear\n");
  fs::remove_all(dir);
}

TEST_CASE("A custom-batch run resumed from a checkpoint keeps its metrics", "[unit][train]") {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_custom_batch_resume";
  fs::remove_all(dir);
  const auto epoch_hook = [](int64_t epoch) -> std::map<std::string, double> {
    return {{"epoch_number", static_cast<double>(epoch)}};
  };
  llmfs::TrainResult full;
  {
    auto c = make_classifier();
    c.hooks.on_epoch_end = epoch_hook;
    llmfs::Trainer<PointBatch> trainer(c.model.ptr(), config_for(dir), points(6, 1), points(3, 2),
                                       c.hooks, {.interactive_progress = false});
    full = trainer.fit();
  }
  fs::remove_all(dir);
  auto config = config_for(dir);
  config.max_steps = 8;  // stops inside epoch 2
  {
    auto c = make_classifier();
    c.hooks.on_epoch_end = epoch_hook;
    llmfs::Trainer<PointBatch> trainer(c.model.ptr(), config, points(6, 1), points(3, 2), c.hooks,
                                       {.interactive_progress = false});
    trainer.fit();
  }
  auto c = make_classifier();
  c.hooks.on_epoch_end = epoch_hook;
  llmfs::Trainer<PointBatch> trainer(c.model.ptr(), config_for(dir), points(6, 1), points(3, 2),
                                     c.hooks, {.interactive_progress = false});
  trainer.resume(llmfs::resolve_checkpoint("latest", dir));
  const auto resumed = trainer.fit();
  // The first run ended at step 7 (max_steps) and evaluated there (eval_at_end): the resumed
  // history is the uninterrupted one with that point in its place.
  std::vector<llmfs::EvalPoint> others;
  for (const auto& p : resumed.history.points) {
    if (p.step != 7) others.push_back(p);
  }
  REQUIRE(resumed.history.points.size() == full.history.points.size() + 1);
  REQUIRE(others.size() == full.history.points.size());
  for (size_t i = 0; i < full.history.points.size(); ++i) {
    CHECK(others[i].same_values(full.history.points[i]));
  }
  CHECK((resumed.history.epochs == full.history.epochs));
  CHECK((llmfs::read_metrics_history(dir / "metrics.jsonl").epochs == full.history.epochs));
  fs::remove_all(dir);
}

TEST_CASE("A batch type without an input tensor needs count_tokens, and a fresh run keeps an old one",
          "[unit][train]") {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_custom_batch_guard";
  fs::remove_all(dir);
  auto c = make_classifier();
  auto hooks = c.hooks;
  hooks.count_tokens = nullptr;
  CHECK_THROWS_WITH((llmfs::Trainer<PointBatch>(c.model.ptr(), config_for(dir), points(2, 1),
                                                points(1, 2), hooks)),
                    llmfs::test::contains_text("count_tokens is required"));
  // A finished run in the folder: a fresh run refuses before writing anything, --overwrite
  // replaces it.
  auto config = config_for(dir);
  config.num_epochs = 1;
  llmfs::Trainer<PointBatch>(c.model.ptr(), config, points(2, 1), points(1, 2), c.hooks,
                             {.interactive_progress = false})
      .fit();
  const auto metrics_before = llmfs::read_file(dir / "metrics.jsonl");
  llmfs::Trainer<PointBatch> again(c.model.ptr(), config, points(2, 1), points(1, 2), c.hooks,
                                   {.interactive_progress = false});
  CHECK_THROWS_WITH(again.fit(), llmfs::test::contains_text("holds a previous run"));
  CHECK(llmfs::read_file(dir / "metrics.jsonl") == metrics_before);
  llmfs::Trainer<PointBatch> over(c.model.ptr(), config, points(2, 1), points(1, 2), c.hooks,
                                  {.overwrite = true, .interactive_progress = false});
  CHECK(over.fit().global_step == 1);
  fs::remove_all(dir);
}
