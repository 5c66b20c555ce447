// Training checkpoints: folder layout, the latest pointer, pruning, strict loading, errors.
#include <filesystem>

#include "catch.h"
#include "llmfs/train/training_checkpoint.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"

namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("llmfs_test_checkpoint_" + name);
  fs::remove_all(dir);
  return dir;
}

llmfs::TrainingCheckpoint sample_checkpoint(int64_t step) {
  llmfs::TrainingCheckpoint c;
  c.model = {{"w", torch::arange(6, torch::kFloat32).reshape({2, 3})}, {"b", torch::ones({3})}};
  c.optimizer = {{"w.exp_avg", torch::zeros({2, 3})},
                 {"__lr__", torch::tensor(0.5, torch::kFloat64)}};
  c.rng = llmfs::get_rng_states(torch::Device(torch::kCPU));
  c.state.epoch = 2;
  c.state.pass_started = true;
  c.state.position.base_seed = 1234567890123;
  c.state.position.shuffle_seed = -5;
  c.state.position.batches_yielded = 3;
  c.state.global_step = step;
  c.state.tokens_seen = 512 * (step + 1);
  c.state.history.track_lrs = {0.1, 0.2};
  llmfs::EvalPoint p;
  p.epoch = 1;
  p.step = 0;
  p.train_loss = 9.781234567890123;
  p.val_loss = std::nan("");
  p.extra["accuracy"] = 0.75;
  c.state.history.points.push_back(p);
  c.config_yaml = "seed: 123\n";
  return c;
}

struct Linear2 : torch::nn::Module {
  explicit Linear2(int64_t out) {
    w = register_parameter("w", torch::zeros({out, 3}));
    b = register_parameter("b", torch::zeros({3}));
  }
  torch::Tensor w, b;
};

}  // namespace

TEST_CASE("save_checkpoint writes a complete folder, then points latest at it",
          "[unit][checkpoint]") {
  const auto dir = fresh_dir("layout");
  const auto path = llmfs::save_checkpoint(dir, sample_checkpoint(45));
  CHECK(path == dir / "step_000045");
  for (const char* f :
       {"model.safetensors", "optimizer.safetensors", "rng.safetensors", "trainer_state.json", "config.yaml"}) {
    CHECK(fs::is_regular_file(path / f));
  }
  CHECK(llmfs::read_file(dir / "latest") == "step_000045\n");
  CHECK_FALSE(fs::exists(dir / "step_000045.tmp"));

  const auto loaded = llmfs::load_checkpoint(path);
  CHECK(torch::equal(loaded.model.at("w"), sample_checkpoint(45).model.at("w")));
  CHECK(loaded.optimizer.at("__lr__").item<double>() == 0.5);
  CHECK(torch::equal(loaded.rng.at("cpu"), sample_checkpoint(45).rng.at("cpu")));
  CHECK(loaded.state.epoch == 2);
  CHECK(loaded.state.position.base_seed == 1234567890123);
  CHECK(loaded.state.position.shuffle_seed == -5);
  CHECK(loaded.state.position.batches_yielded == 3);
  CHECK(loaded.state.global_step == 45);
  CHECK(loaded.state.history.track_lrs == std::vector<double>{0.1, 0.2});
  REQUIRE(loaded.state.history.points.size() == 1);
  CHECK(loaded.state.history.points[0].same_values(sample_checkpoint(45).state.history.points[0]));
  CHECK(loaded.config_yaml == "seed: 123\n");
}

TEST_CASE("save_checkpoint keeps the newest checkpoints and removes unfinished folders",
          "[unit][checkpoint]") {
  const auto dir = fresh_dir("prune");
  fs::create_directories(dir / "step_000003.tmp");  // a write that was killed
  for (int64_t step : {5, 10, 15, 20}) llmfs::save_checkpoint(dir, sample_checkpoint(step), 2);
  CHECK_FALSE(fs::exists(dir / "step_000005"));
  CHECK_FALSE(fs::exists(dir / "step_000010"));
  CHECK(fs::exists(dir / "step_000015"));
  CHECK(fs::exists(dir / "step_000020"));
  CHECK_FALSE(fs::exists(dir / "step_000003.tmp"));
  CHECK(llmfs::latest_checkpoint(dir) == dir / "step_000020");
  // Saving the same step again replaces it.
  auto again = sample_checkpoint(20);
  again.state.epoch = 3;
  llmfs::save_checkpoint(dir, again, 2);
  CHECK(llmfs::load_checkpoint(dir / "step_000020").state.epoch == 3);
  CHECK_FALSE(fs::exists(dir / "step_000020.old"));
}

TEST_CASE("latest falls back to the folder moved aside when the replacement was cut short",
          "[unit][checkpoint]") {
  const auto dir = fresh_dir("old");
  llmfs::save_checkpoint(dir, sample_checkpoint(7));
  fs::rename(dir / "step_000007", dir / "step_000007.old");
  CHECK(llmfs::latest_checkpoint(dir) == dir / "step_000007.old");
  CHECK(llmfs::resolve_checkpoint(dir.string(), "elsewhere") == dir / "step_000007.old");
}

TEST_CASE(
    "resolve_checkpoint accepts latest, a checkpoint, a run folder, and errors say what is missing",
    "[unit][checkpoint]") {
  const auto run = fresh_dir("resolve");
  CHECK_THROWS_WITH(
      llmfs::resolve_checkpoint("latest", run),
      llmfs::test::contains_text(
          "no checkpoint to resume: " + (run / "checkpoints" / "latest").string() + " not found"));
  CHECK_THROWS_WITH(llmfs::resolve_checkpoint((run / "missing").string(), run),
                    llmfs::test::contains_text("missing: no such checkpoint"));
  llmfs::save_checkpoint(run / "checkpoints", sample_checkpoint(3));
  const auto expected = run / "checkpoints" / "step_000003";
  CHECK(llmfs::resolve_checkpoint("latest", run) == expected);
  CHECK(llmfs::resolve_checkpoint(run.string(), "elsewhere") == expected);
  CHECK(llmfs::resolve_checkpoint((run / "checkpoints").string(), "elsewhere") == expected);
  CHECK(llmfs::resolve_checkpoint(expected.string(), "elsewhere") == expected);
  fs::create_directories(run / "empty");
  CHECK_THROWS_WITH(llmfs::resolve_checkpoint((run / "empty").string(), run),
                    llmfs::test::contains_text("not a checkpoint folder"));
}

TEST_CASE("load_checkpoint names a missing or corrupt file", "[unit][checkpoint]") {
  const auto dir = fresh_dir("corrupt");
  const auto path = llmfs::save_checkpoint(dir, sample_checkpoint(1));
  llmfs::write_file_atomic(path / "model.safetensors", "not a safetensors file");
  CHECK_THROWS_WITH(llmfs::load_checkpoint(path),
                    llmfs::test::contains_text("model.safetensors"));
  fs::remove(path / "rng.safetensors");
  CHECK_THROWS_WITH(llmfs::load_checkpoint(path),
                    llmfs::test::contains_text("incomplete checkpoint (missing rng.safetensors)"));
  llmfs::write_file_atomic(dir / "x" / "trainer_state.json", "{\"format\": 1}");
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "rng.safetensors"})
    llmfs::write_file_atomic(dir / "x" / f, "");
  CHECK_THROWS_WITH(llmfs::load_checkpoint(dir / "x"),
                    llmfs::test::contains_text("trainer_state.json"));
}

TEST_CASE("load_model_state_dict names the tensor of another model", "[unit][checkpoint]") {
  Linear2 model(2);
  const auto state = llmfs::model_state_dict(model);
  CHECK(state.size() == 2);
  Linear2 other(4);
  CHECK_THROWS_WITH(llmfs::load_model_state_dict(other, state, "run/model.safetensors"),
                    llmfs::test::contains_text(
                        "run/model.safetensors: tensor 'w' has shape [2, 3], the model expects [4, 3]"));
  auto missing = state;
  missing.erase("b");
  CHECK_THROWS_WITH(llmfs::load_model_state_dict(model, missing, "m.pt"),
                    llmfs::test::contains_text("tensor 'b' is missing"));
  auto extra = state;
  extra["c"] = torch::zeros({1});
  CHECK_THROWS_WITH(llmfs::load_model_state_dict(model, extra, "m.pt"),
                    llmfs::test::contains_text("tensor 'c' is not part of the model"));
  auto changed = state;
  changed["w"] = torch::ones({2, 3});
  llmfs::load_model_state_dict(model, changed, "m.pt");
  CHECK(torch::equal(model.w, torch::ones({2, 3})));
}

TEST_CASE("generator states round-trip: the same numbers follow", "[unit][checkpoint]") {
  torch::manual_seed(42);
  torch::rand({3});
  const auto states = llmfs::get_rng_states(torch::Device(torch::kCPU));
  const auto a = torch::rand({5});
  llmfs::set_rng_states(states, "test");
  const auto b = torch::rand({5});
  CHECK(torch::equal(a, b));
}
