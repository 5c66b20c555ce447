// `ch05 train` run as a user runs it, with a tiny model on the-verdict: interrupted by Ctrl-C
// (SIGINT) or killed (SIGKILL, at 20 random moments, also in the middle of writing a checkpoint)
// and resumed, its loss lines and metrics equal those of an uninterrupted run to the last digit;
// a checkpoint write that fails (a file size limit standing in for a full disk) keeps the previous
// checkpoint; a damaged checkpoint is caught by its checksums; bad input fails with one line and
// leaves existing runs alone. Needs the data files (LLMFS_DATA_DIR).
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "catch.h"
#include "child_process.h"
#include "llmfs/train/training_checkpoint.h"
#include "llmfs/core/file_io.h"
#include "llmfs/train/metrics.h"
#include "llmfs/ops/cpu_features.h"
#include "llmfs/checkpoint/model_loader.h"
#include "llmfs/generate/generation_config.h"
#include "llmfs/generate/text_ids.h"
#include <nlohmann/json.hpp>
#include "llmfs_test_paths.h"

namespace fs = std::filesystem;

namespace {

// 1 epoch of the-verdict in windows of 32 tokens: 72 optimizer steps of a 2-layer model.
std::vector<std::string> tiny_args(const fs::path& out) {
  return {"train",
          "--log-level=warn",
          "model.n_layers=2",
          "model.emb_dim=32",
          "model.n_heads=4",
          "model.context_length=32",
          "train.num_epochs=1",
          "train.eval_freq=2",
          "train.eval_iter=2",
          "train.device=cpu",
          "train.sample.max_new_tokens=5",
          "train.data.max_length=32",
          "train.data.stride=32",
          "train.output_dir=" + out.string()};
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("llmfs_ch05_train_{}_{}", name, ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A running `ch05` (stdout through a pipe, stderr into a file).
class Child : public llmfs::test::ChildProcess {
 public:
  Child(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
        long file_size_limit = 0)
      : ChildProcess(std::string(llmfs::test::kBinDir) + "/ch05", args, env, file_size_limit) {}
};

struct Finished {
  int code;
  std::vector<std::string> lines;
  std::string err;
};

Finished run(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
             long file_size_limit = 0) {
  Child child(args, env, file_size_limit);
  const int code = child.wait();
  return {code, child.lines(), child.err()};
}

std::vector<llmfs::EvalPoint> metrics(const fs::path& out) {
  return llmfs::read_metrics_jsonl(out / "metrics.jsonl");
}

void require_same_metrics(const std::vector<llmfs::EvalPoint>& a, const std::vector<llmfs::EvalPoint>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("evaluation " << i << ": " << llmfs::format_eval_line(a[i]) << " vs " << llmfs::format_eval_line(b[i]));
    CHECK(a[i].same_values(b[i]));
  }
}

// The uninterrupted reference run, made once.
const Finished& reference(const fs::path& out) {
  static const Finished full = run(tiny_args(out));
  return full;
}

const fs::path& reference_dir() {
  static const fs::path dir = fresh_dir("reference");
  return dir;
}

}  // namespace

TEST_CASE("ch05 train with a tiny model prints the book's lines and writes its run folder",
          "[chapter][train]") {
  const auto& full = reference(reference_dir());
  INFO("stderr: " << full.err);
  REQUIRE(full.code == 0);
  // 72 steps, evaluations at 0, 2, ..., 70 (36 lines) and at the last step, 71 (eval_at_end),
  // one sample after the epoch.
  REQUIRE(full.lines.size() == 38);
  CHECK(full.lines[0].rfind("Ep 1 (Step 000000): Train loss ", 0) == 0);
  CHECK(full.lines[35].rfind("Ep 1 (Step 000070): Train loss ", 0) == 0);
  CHECK(full.lines[36].rfind("Ep 1 (Step 000071): Train loss ", 0) == 0);
  CHECK(full.lines[37].rfind("Every effort moves you", 0) == 0);
  const auto points = metrics(reference_dir());
  REQUIRE(points.size() == 37);
  CHECK(points.back().train_loss < points.front().train_loss);
  for (const char* f : {"config.yaml", "metrics.csv", "timing.json"}) CHECK(fs::exists(reference_dir() / f));
  const auto latest = llmfs::latest_checkpoint(reference_dir() / "checkpoints");
  REQUIRE(latest);
  CHECK(latest->filename() == "step_000071");
  CHECK(fs::exists(*latest / "model.safetensors"));
}

TEST_CASE("ch05 train stopped by Ctrl-C and resumed prints the uninterrupted run's lines",
          "[chapter][train]") {
  const auto& full = reference(reference_dir());
  REQUIRE(full.code == 0);
  const auto out = fresh_dir("sigint");
  std::vector<std::string> first_lines;
  {
    Child child(tiny_args(out));
    REQUIRE(child.read_until("(Step 000020)"));
    child.signal(SIGINT);
    const int code = child.wait();
    INFO("stderr: " << child.err());
    CHECK(code == 130);
    CHECK(child.err().find("--resume latest") != std::string::npos);
    first_lines = child.lines();
  }
  const auto second = run(with(tiny_args(out), {"--resume", "latest"}));
  INFO("stderr: " << second.err);
  REQUIRE(second.code == 0);
  auto joined = first_lines;
  joined.insert(joined.end(), second.lines.begin(), second.lines.end());
  CHECK(joined == full.lines);
  require_same_metrics(metrics(out), metrics(reference_dir()));
  fs::remove_all(out);
}

TEST_CASE("ch05 train killed with SIGKILL resumes from its last checkpoint to the same end",
          "[chapter][train]") {
  const auto& full = reference(reference_dir());
  REQUIRE(full.code == 0);
  const auto out = fresh_dir("sigkill");
  {
    Child child(with(tiny_args(out), {"train.checkpoint_every=10"}));
    REQUIRE(child.read_until("(Step 000034)"));
    child.signal(SIGKILL);
    CHECK(child.wait() == 128 + SIGKILL);
  }
  const auto latest = llmfs::latest_checkpoint(out / "checkpoints");
  REQUIRE(latest);
  const int64_t step = llmfs::load_checkpoint(*latest).state.global_step;
  CHECK(step >= 29);  // saved after steps 9, 19, 29 (and maybe 39)
  const auto second = run(with(tiny_args(out), {"train.checkpoint_every=10", "--resume", "latest"}));
  INFO("stderr: " << second.err);
  REQUIRE(second.code == 0);
  // The resumed run prints what the full run printed after the checkpoint's step.
  const std::string first_line = fmt::format("Ep 1 (Step {:06d})", step + 1 + (step + 1) % 2);
  size_t from = 0;
  while (from < full.lines.size() && full.lines[from].rfind(first_line, 0) != 0) ++from;
  REQUIRE(from < full.lines.size());
  CHECK(second.lines == std::vector<std::string>(full.lines.begin() + static_cast<long>(from), full.lines.end()));
  require_same_metrics(metrics(out), metrics(reference_dir()));
  fs::remove_all(out);
}

TEST_CASE("a kill while a checkpoint is being written never leaves a corrupt latest checkpoint",
          "[chapter][train]") {
  const auto& full = reference(reference_dir());
  REQUIRE(full.code == 0);
  const auto out = fresh_dir("kill_in_write");
  {
    // The checkpoint after step 9 pauses after its model file; step 4's is complete by then.
    Child child(with(tiny_args(out), {"train.checkpoint_every=5"}),
                {"LLMFS_TEST_CHECKPOINT_PAUSE_MS=60000", "LLMFS_TEST_CHECKPOINT_PAUSE_STEP=9"});
    const fs::path writing = out / "checkpoints" / "step_000009.tmp" / "model.safetensors";
    for (int i = 0; i < 600 && !fs::exists(writing); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    REQUIRE(fs::exists(writing));
    child.signal(SIGKILL);
    CHECK(child.wait() == 128 + SIGKILL);
  }
  CHECK(fs::exists(out / "checkpoints" / "step_000009.tmp"));
  const auto latest = llmfs::latest_checkpoint(out / "checkpoints");
  REQUIRE(latest);
  CHECK(latest->filename() == "step_000004");
  CHECK(llmfs::load_checkpoint(*latest).state.global_step == 4);
  const auto second = run(with(tiny_args(out), {"--resume", "latest"}));
  INFO("stderr: " << second.err);
  REQUIRE(second.code == 0);
  require_same_metrics(metrics(out), metrics(reference_dir()));
  CHECK_FALSE(fs::exists(out / "checkpoints" / "step_000009.tmp"));  // cleaned up by the next save
  fs::remove_all(out);
}

TEST_CASE("ch05 train killed at 20 random moments and resumed each time ends as the uninterrupted run",
          "[chapter][train]") {
  const auto& full = reference(reference_dir());
  REQUIRE(full.code == 0);
  const auto out = fresh_dir("kill20");
  // A checkpoint every 3 steps: kills land in steps, evaluations and checkpoint writes. A run
  // that finishes before its kill must end as the reference did; the next one starts over, until
  // 20 kills have happened.
  const auto args = with(tiny_args(out), {"train.checkpoint_every=3"});
  std::mt19937 rng(20261206);
  std::uniform_int_distribution<int> delay_ms(300, 2500);
  int kills = 0, finished = 0;
  for (int attempt = 0; kills < 20 && attempt < 60; ++attempt) {
    const bool resume = llmfs::latest_checkpoint(out / "checkpoints").has_value();
    Child child(resume ? with(args, {"--resume", "latest"}) : with(args, {"--overwrite"}));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    child.signal(SIGKILL);
    const int code = child.wait();
    INFO("attempt " << attempt << ", stderr: " << child.err());
    if (code == 0) {  // finished before the kill
      ++finished;
      require_same_metrics(metrics(out), metrics(reference_dir()));
      fs::remove_all(out);
      fs::create_directories(out);
      continue;
    }
    CHECK(code == 128 + SIGKILL);
    ++kills;
    // Whatever the moment, the latest checkpoint is whole: every file there, checksums matching.
    if (const auto latest = llmfs::latest_checkpoint(out / "checkpoints")) {
      CHECK_NOTHROW(llmfs::load_checkpoint(*latest));
    }
  }
  CHECK(kills == 20);
  INFO(finished << " run(s) finished between kills");
  const bool resume = llmfs::latest_checkpoint(out / "checkpoints").has_value();
  const auto last = run(resume ? with(args, {"--resume", "latest"}) : with(args, {"--overwrite"}));
  INFO("stderr: " << last.err);
  REQUIRE(last.code == 0);
  require_same_metrics(metrics(out), metrics(reference_dir()));
  fs::remove_all(out);
}

TEST_CASE("a checkpoint write that fails keeps the previous checkpoint and says so",
          "[chapter][train]") {
  const auto& full = reference(reference_dir());
  REQUIRE(full.code == 0);
  const auto out = fresh_dir("write_fails");
  const auto args = with(tiny_args(out), {"train.checkpoint_every=10"});
  {
    Child child(args);
    REQUIRE(child.read_until("(Step 000024)"));
    child.signal(SIGKILL);
    child.wait();
  }
  const auto before = llmfs::latest_checkpoint(out / "checkpoints");
  REQUIRE(before);
  REQUIRE(before->filename() == "step_000019");
  // Resumed where no file may grow past 4 MB (the tiny model's optimizer state is larger): the
  // next checkpoint cannot be written.
  const auto failed = run(with(args, {"--resume", "latest"}), {}, 4L << 20);
  INFO("stderr: " << failed.err);
  CHECK(failed.code == 1);
  const auto last_line = failed.err.substr(failed.err.rfind("error: "));
  CHECK(last_line.find("could not write the checkpoint of step 29") != std::string::npos);
  CHECK(last_line.find("the previous checkpoint " + before->string() + " is kept") !=
        std::string::npos);
  CHECK(std::count(last_line.begin(), last_line.end(), '\n') == 1);
  CHECK(llmfs::latest_checkpoint(out / "checkpoints") == before);
  CHECK_FALSE(fs::exists(out / "checkpoints" / "step_000029.tmp"));
  CHECK_NOTHROW(llmfs::load_checkpoint(*before));
  // With room again, the run resumes from it to the uninterrupted run's end.
  const auto resumed = run(with(args, {"--resume", "latest"}));
  INFO("stderr: " << resumed.err);
  REQUIRE(resumed.code == 0);
  require_same_metrics(metrics(out), metrics(reference_dir()));
  fs::remove_all(out);
}

TEST_CASE("a damaged latest checkpoint is found by its checksums and the previous one offered",
          "[chapter][train]") {
  const auto& full = reference(reference_dir());
  REQUIRE(full.code == 0);
  const auto out = fresh_dir("damaged");
  const auto args = with(tiny_args(out), {"train.checkpoint_every=10"});
  {
    Child child(args);
    REQUIRE(child.read_until("(Step 000034)"));
    child.signal(SIGKILL);
    child.wait();
  }
  const auto latest = llmfs::latest_checkpoint(out / "checkpoints");
  REQUIRE(latest);
  REQUIRE(latest->filename() == "step_000029");
  {  // flip the bits of one byte in the middle of the model's weights
    std::fstream file(*latest / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(0, std::ios::end);
    const auto middle = file.tellg() / 2;
    file.seekg(middle);
    const char byte = static_cast<char>(file.get());
    file.seekp(middle);
    file.put(static_cast<char>(~byte));
  }
  CHECK_THROWS_WITH(llmfs::load_checkpoint(*latest),
                    llmfs::test::contains_text("model.safetensors does not match its checksum"));
  const auto refused = run(with(args, {"--resume", "latest"}));
  INFO("stderr: " << refused.err);
  CHECK(refused.code == 1);
  const auto previous = out / "checkpoints" / "step_000019";
  CHECK(refused.err.find("the previous checkpoint is intact: --resume " + previous.string()) !=
        std::string::npos);
  CHECK(refused.lines.empty());
  // Resumed from the offered checkpoint, the run ends as the uninterrupted one.
  const auto resumed = run(with(args, {"--resume", previous.string()}));
  INFO("stderr: " << resumed.err);
  REQUIRE(resumed.code == 0);
  require_same_metrics(metrics(out), metrics(reference_dir()));
  fs::remove_all(out);
}

TEST_CASE("ch05 train rejects bad input with one line and overwrites nothing", "[chapter][train]") {
  const auto& full = reference(reference_dir());
  REQUIRE(full.code == 0);
  const auto out = fresh_dir("bad");
  const auto expect_error = [&](const std::vector<std::string>& args, int code, const std::string& text) {
    const auto r = run(args);
    INFO(fmt::format("ch05 {}\nstderr: {}", fmt::join(args, " "), r.err));
    CHECK(r.code == code);
    CHECK(r.err.find(text) != std::string::npos);
    CHECK(r.lines.empty());
  };
  // A window longer than the model's context (a config error: exit code 2).
  expect_error(with(tiny_args(out), {"train.data.max_length=64"}), 2,
               "train.data.max_length: 64 exceeds model.context_length (32)");
  // An empty text and a text too short for one window.
  llmfs::write_file_atomic(out / "empty.txt", "");
  expect_error(with(tiny_args(out), {"train.data.file=" + (out / "empty.txt").string()}), 1,
               "the training text is empty");
  llmfs::write_file_atomic(out / "short.txt", "Every effort moves you, and then some more.");
  expect_error(with(tiny_args(out), {"train.data.file=" + (out / "short.txt").string()}), 1,
               "tokens, not more than data.max_length (32)");
  expect_error(with(tiny_args(out), {"train.data.file=" + (out / "missing.txt").string()}), 1,
               "missing.txt: no such file");
  // Nothing to resume.
  expect_error(with(tiny_args(out / "run"), {"--resume", "latest"}), 1, "no checkpoint to resume");
  expect_error(with(tiny_args(out / "run"), {"--resume", (out / "nowhere").string()}), 1,
               "nowhere: no such checkpoint");
  CHECK_FALSE(fs::exists(out / "run"));

  // A checkpoint of another model (emb_dim 32) resumed with emb_dim 64: the tensor is named.
  const auto before = llmfs::read_file(reference_dir() / "metrics.jsonl");
  const auto latest_before = llmfs::read_file(reference_dir() / "checkpoints" / "latest");
  expect_error(with(tiny_args(reference_dir()), {"model.emb_dim=64", "--resume", "latest"}), 1,
               "tensor 'tok_emb.weight' has shape [50257, 32], the model expects [50257, 64]");
  // A fresh run into a folder that holds a run.
  expect_error(tiny_args(reference_dir()), 1, "holds a previous run");
  CHECK(llmfs::read_file(reference_dir() / "metrics.jsonl") == before);
  CHECK(llmfs::read_file(reference_dir() / "checkpoints" / "latest") == latest_before);
  fs::remove_all(out);
}

TEST_CASE("gpt_train.py's CI setting tracks 39 evaluations in one epoch (CI-04)", "[chapter][train]") {
  // BOOK.md CI-04: context 12, emb 32, 4 heads, 2 layers, drop 0.1, lr 5e-4, 1 epoch, batch 2,
  // weight decay 0.1, eval_freq 5, eval_iter 1; windows of the context length.
  const auto out = fresh_dir("ci04");
  const auto r = run({"train", "--log-level=warn", "model.context_length=12", "model.emb_dim=32",
                      "model.n_heads=4", "model.n_layers=2", "model.drop_rate=0.1",
                      "train.learning_rate=5e-4", "train.num_epochs=1", "train.batch_size=2",
                      "train.weight_decay=0.1", "train.eval_freq=5", "train.eval_iter=1",
                      "train.eval_at_end=false",  // the book's loop stops at its last multiple
                      "train.device=cpu", "train.sample.max_new_tokens=0", "train.data.max_length=12",
                      "train.data.stride=12", "train.final_checkpoint=false",
                      "train.output_dir=" + out.string()});
  INFO("stderr: " << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.lines.size() == 39);
  const auto points = metrics(out);
  CHECK(points.size() == 39);
  CHECK(points.back().train_loss < points.front().train_loss);
  fs::remove_all(out);
}

TEST_CASE("ch05 generate and evaluate load the checkpoint ch05 train wrote", "[chapter][train]") {
  const auto& full = reference(reference_dir());
  REQUIRE(full.code == 0);
  const auto gen = run({"generate", "--checkpoint", reference_dir().string(), "--max-new-tokens", "5"});
  INFO("stderr: " << gen.err);
  REQUIRE(gen.code == 0);
  REQUIRE_FALSE(gen.lines.empty());
  const auto eval = run({"evaluate", "--checkpoint", reference_dir().string(), "--input", "the-verdict.txt"});
  INFO("stderr: " << eval.err);
  CHECK(eval.code == 0);
}

TEST_CASE("bf16 training keeps the validation loss within 2% of the fp32 run's at every evaluation",
          "[chapter][train][bf16]") {
  // train.precision=bf16: autocast to bf16 for the products, fp32 master weights and AdamW
  // state, against the same run in fp32 (same data, seed and draws). A model that learns
  // enough for rounding to matter: 2 epochs at lr 4e-3 take the validation loss from 10.9 to ~6.7.
  const auto args = [](const fs::path& out, const std::string& precision) {
    return std::vector<std::string>{
        "train", "--log-level=warn", "model.n_layers=2", "model.emb_dim=64", "model.n_heads=4",
        "model.context_length=32", "train.num_epochs=2", "train.eval_freq=4", "train.eval_iter=2",
        "train.learning_rate=0.004", "train.device=cpu", "train.sample.max_new_tokens=0",
        "train.data.max_length=32", "train.data.stride=32", "train.precision=" + precision,
        "train.output_dir=" + out.string()};
  };
  const fs::path fp32_dir = fresh_dir("band_fp32");
  const fs::path out = fresh_dir("band_bf16");
  const auto full = run(args(fp32_dir, "fp32"));
  INFO("stderr: " << full.err);
  REQUIRE(full.code == 0);
  const auto low = run(args(out, "bf16"));
  INFO("stderr: " << low.err);
  REQUIRE(low.code == 0);
  if (!llmfs::cpu_features().bf16_units()) {
    // The fallback: fp32, said once on stderr; the band then holds trivially.
    CHECK(low.err.find("no bf16 units") != std::string::npos);
    WARN("this CPU has no bf16 units: the bf16 run fell back to fp32");
  }
  const auto fp32 = metrics(fp32_dir);
  const auto bf16 = metrics(out);
  REQUIRE(fp32.back().val_loss < 8.0);  // it learned
  REQUIRE(bf16.size() == fp32.size());
  double worst = 0.0;
  for (size_t i = 0; i < fp32.size(); ++i) {
    const double band = std::abs(bf16[i].val_loss - fp32[i].val_loss) / fp32[i].val_loss;
    worst = std::max(worst, band);
    INFO("evaluation " << i << ": fp32 " << llmfs::format_eval_line(fp32[i]) << ", bf16 "
                       << llmfs::format_eval_line(bf16[i]));
    CHECK(band <= 0.02);
  }
  WARN(fmt::format("bf16 vs fp32 validation loss over {} evaluations: at most {:.2f}% apart",
                   fp32.size(), 100.0 * worst));
  // The same model learns: the bf16 run's loss falls as the fp32 run's does.
  CHECK(bf16.back().val_loss < bf16.front().val_loss);
}

TEST_CASE("a training run reports MFU in metrics.jsonl and its FLOPs in timing.json",
          "[chapter][train]") {
  const auto& full = reference(reference_dir());
  REQUIRE(full.code == 0);
  for (const auto& point : metrics(reference_dir())) {
    INFO(llmfs::eval_point_to_json(point));
    CHECK(point.mfu > 0.0);
    CHECK(point.mfu < 1.5);  // against torch's measured matmul rate: at most a little above it
  }
  const auto timing = nlohmann::json::parse(llmfs::read_file(reference_dir() / "timing.json"));
  // 2 layers, C 32, V 50257, T 32: 6 (2 * 12 * 32² + 50257 * 32) + 12 * 2 * 32 * 32 per token.
  CHECK(timing.at("flops_per_token").get<double>() ==
        Approx(6.0 * (2 * 12 * 32 * 32 + 50257.0 * 32) + 12.0 * 2 * 32 * 32));
  CHECK(timing.at("peak_flops").get<double>() > 1e9);
}

TEST_CASE("bf16 decoding of the trained tiny model: logits near fp32's, greedy agreement reported",
          "[chapter][train][bf16]") {
  const auto& full = reference(reference_dir());
  REQUIRE(full.code == 0);
  const auto prompts = {"Every effort moves you", "I HAD always thought Jack Gisburn",
                        "The picture was", "Mrs. Gisburn said"};
  llmfs::GenerationConfig fp32_config;
  fp32_config.device = "cpu";
  llmfs::GenerationConfig bf16_config = fp32_config;
  bf16_config.precision = "bf16";
  const auto ids_and_logits = [&](const llmfs::GenerationConfig& config, const std::string& prompt) {
    auto loaded = llmfs::load_model(reference_dir().string());
    llmfs::prepare_for_generation(loaded.model, config);
    const auto idx = llmfs::text_to_token_ids(prompt, *loaded.tokenizer);
    c10::InferenceMode inference;
    const auto logits = loaded.model(idx).select(1, idx.size(1) - 1);  // (1, V)
    llmfs::GenerateOptions options;
    options.max_new_tokens = 20;
    const auto ids = llmfs::generate(loaded.model, idx, options).narrow(1, idx.size(1), 20);
    return std::pair{ids, logits};
  };
  int64_t agree_prefix = 0, equal = 0, total = 0;
  for (const std::string prompt : prompts) {
    const auto [fp32_ids, fp32_logits] = ids_and_logits(fp32_config, prompt);
    const auto [bf16_ids, bf16_logits] = ids_and_logits(bf16_config, prompt);
    INFO(prompt);
    CHECK(bf16_logits.scalar_type() == torch::kFloat32);
    // bf16 weights carry ~3 significant digits: the logits move by a small fraction of their range.
    const double range = (fp32_logits.max() - fp32_logits.min()).item<double>();
    const double moved = (bf16_logits - fp32_logits).abs().max().item<double>();
    CHECK(moved < 0.05 * range);
    const auto same = (fp32_ids == bf16_ids).squeeze(0);
    equal += same.sum().item<int64_t>();
    total += same.size(0);
    const auto first_difference = (~same).nonzero();
    agree_prefix += first_difference.size(0) == 0 ? same.size(0) : first_difference[0][0].item<int64_t>();
  }
  // Reported, not asserted: a near-tie between two tokens may go either way in bf16.
  WARN(fmt::format("bf16 vs fp32 greedy decoding, {} prompts x 20 tokens: {} of {} tokens equal, "
                   "{} before the first difference",
                   prompts.size(), equal, total, agree_prefix));
}
