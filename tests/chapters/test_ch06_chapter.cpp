// `ch06` run as a user runs it, on a small random GPT so that it fits in test time: finetuning
// learns the spam task well above the majority baseline; classify, evaluate and export agree
// with each other; `compare` runs every strategy config end to end; bad input fails with one
// line and leaves runs alone. Needs the data files (LLMFS_DATA_DIR).
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "catch.h"
#include "run_chapter.h"
#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/core/file_io.h"
#include "llmfs_test_paths.h"

namespace fs = std::filesystem;

namespace {

using Result = llmfs::test::ChapterRun;

Result ch06(const std::string& args) { return llmfs::test::run_chapter("ch06", args); }

fs::path fresh_dir(const std::string& name) { return llmfs::test::fresh_dir("ch06", name); }

// A small random GPT instead of GPT-2 124M, texts cut to 64 tokens.
const std::string kSmall =
    "--log-level=warn base_model=random model.emb_dim=64 model.n_heads=4 model.n_layers=2 "
    "model.context_length=64 data.max_length=64 train.device=cpu initial_eval_batches=2";

int lines_with(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("ch06 train learns the spam task, and classify, evaluate and export agree",
          "[chapter][ch06]") {
  const auto dir = fresh_dir("train");
  const auto run = dir / "run";
  // eval_freq beyond the run's 2 x 130 steps: the book's schedule evaluates at step 0 only, and
  // the run adds its last step (train.eval_at_end), as a member's first own run met it.
  const auto r = ch06(fmt::format(
      "train {} classifier.trainable=all classifier.pooling=mean train.learning_rate=1e-3 "
      "train.num_epochs=2 train.eval_freq=1000 train.output_dir={}",
      kSmall, run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(lines_with(r.out, "Ep 1 (Step 000000): Train loss") == 1);
  CHECK(lines_with(r.out, "Ep 2 (Step 000259): Train loss") == 1);  // the last step
  CHECK(lines_with(r.out, "Training accuracy: ") == 3);  // 2 epochs + the whole split

  // The figures: drawn by the run, their data as the book plots it (checked on the data behind
  // them, not on pixels).
  CHECK(fs::exists(run / "loss.png"));
  CHECK(fs::exists(run / "accuracy.png"));
  const auto plot = llmfs::test::run_shell(fmt::format(
      "\"{}\" scripts/plot_metrics.py {} --data", llmfs::test::kPython, run.string()));
  INFO(plot.out);
  REQUIRE(plot.exit_code == 0);
  const auto figures = nlohmann::json::parse(plot.out.substr(plot.out.rfind("\n{") + 1));
  const auto& accuracy = figures.at("accuracy.png");  // the accuracy after each epoch
  REQUIRE(accuracy.size() == 2);
  std::vector<nlohmann::json> epoch_ends;  // what the run recorded after each epoch
  std::istringstream jsonl(llmfs::read_file(run / "metrics.jsonl"));
  for (std::string line; std::getline(jsonl, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("event", "") == "epoch_end") epoch_ends.push_back(j);
  }
  REQUIRE(epoch_ends.size() == 2);
  const char* keys[] = {"train_accuracy", "val_accuracy"};
  const char* labels[] = {"Training accuracy", "Validation accuracy"};
  for (size_t i = 0; i < 2; ++i) {
    const auto& line = accuracy[i];
    INFO(line.dump());
    CHECK(line.at("label") == labels[i]);
    CHECK(line.at("marker") == "o");
    CHECK(line.at("x") == nlohmann::json::array({0.0, 2.0}));  // the book's linspace(0, epochs, n)
    REQUIRE(line.at("y").size() == 2);
    for (size_t e = 0; e < 2; ++e) {
      CHECK(line.at("y")[e].get<double>() == Approx(epoch_ends[e].at(keys[i]).get<double>()));
    }
  }
  const auto& loss = figures.at("loss.png");  // step 0 and the last step, with markers
  REQUIRE(loss.size() == 2);
  CHECK(loss[0].at("marker") == "o");
  CHECK(loss[0].at("y").size() == 2);
  for (const char* file : {"config.yaml", "metrics.jsonl", "epoch_metrics.csv", "train.csv",
                           "validation.csv", "test.csv", "results.json"}) {
    INFO(file);
    CHECK(fs::exists(run / file));
  }
  const auto results = nlohmann::json::parse(llmfs::read_file(run / "results.json"));
  // Balanced classes: the majority baseline of the test split is 151 / 300 = 50.3%.
  CHECK(results["test_total"] == 300);
  CHECK(results["test_accuracy"].get<double>() > 0.8);

  const auto classify = ch06(fmt::format(
      "classify --checkpoint {} --text \"Free entry in 2 a wkly comp to win FA Cup final tkts "
      "21st May 2005. Text FA to 87121 to receive entry question(std txt rate)T&C's apply "
      "08452810075over18's\" --text \"Ok, see you at home later\"",
      run.string()));
  INFO(classify.out);
  REQUIRE(classify.exit_code == 0);
  CHECK(classify.out.rfind("spam\t", 0) == 0);
  CHECK(classify.out.find("\nham\t") != std::string::npos);

  const auto evaluate = ch06(fmt::format("evaluate --checkpoint {} --split test", run.string()));
  INFO(evaluate.out);
  REQUIRE(evaluate.exit_code == 0);
  const double test_pct = results["test_accuracy"].get<double>() * 100;
  CHECK(evaluate.out.find(fmt::format("Accuracy: {:.2f}%", test_pct)) != std::string::npos);
  CHECK(evaluate.out.find("precision") != std::string::npos);
}

TEST_CASE("ch06 LoRA: adapter-only and merged exports classify as the run does",
          "[chapter][ch06]") {
  const auto dir = fresh_dir("lora");
  const auto run = dir / "run";
  const auto r = ch06(fmt::format(
      "train --config configs/ch06/lora_r16_a16.yaml {} classifier.lora.rank=4 "
      "train.max_steps=20 train.num_epochs=1 train.output_dir={}",
      kSmall, run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  const auto adapter = dir / "adapter", merged = dir / "merged";
  const auto e = ch06(fmt::format("export --checkpoint {} --adapter {} --merged {}", run.string(),
                                  adapter.string(), merged.string()));
  INFO(e.out);
  REQUIRE(e.exit_code == 0);
  // The adapter holds the LoRA tensors, 2 per linear layer (2 blocks x 6 + the head), and the
  // head's weight and bias.
  const auto tensors = llmfs::read_tensor_file(adapter / "adapter.safetensors");
  CHECK(tensors.size() == 2 * 13 + 2);
  for (const auto& [name, t] : tensors) {
    INFO(name);
    CHECK((name.find(".lora.") != std::string::npos || name.rfind("out_head.", 0) == 0));
  }
  CHECK(fs::file_size(adapter / "adapter.safetensors") * 5 <
        fs::file_size(merged / "model.safetensors"));

  const std::string texts =
      "--text \"Free entry in 2 a wkly comp to win FA Cup final tkts\" --text \"Sorry, I'll call "
      "later\" --text \"Had your mobile 11 months or more? U R entitled to Update\"";
  const auto a = ch06(fmt::format("classify --checkpoint {} {}", run.string(), texts));
  const auto b = ch06(fmt::format("classify --checkpoint {} {}", adapter.string(), texts));
  const auto c = ch06(fmt::format("classify --checkpoint {} {}", merged.string(), texts));
  INFO(a.out << b.out << c.out);
  REQUIRE(a.exit_code == 0);
  CHECK(lines_with(a.out, "\t") == 3);
  CHECK(b.out == a.out);  // the same weights, through the base model plus the adapter
  CHECK(c.out == a.out);  // merged: equal up to rounding, printed to 4 decimals
}

TEST_CASE("ch06 compare runs every strategy config and prints one table", "[chapter][ch06]") {
  const auto dir = fresh_dir("compare");
  std::vector<std::string> configs;
  for (const auto& e : fs::directory_iterator(fs::path(llmfs::test::kSourceDir) / "configs/ch06")) {
    if (e.path().extension() == ".yaml") configs.push_back("configs/ch06/" + e.path().filename().string());
  }
  std::sort(configs.begin(), configs.end());
  REQUIRE(configs.size() >= 7);
  std::string list;
  for (const auto& c : configs) list += " " + c;
  const auto r = ch06(fmt::format(
      "compare --configs{} --output {} {} model.emb_dim=32 model.n_layers=2 train.max_steps=4 "
      "train.num_epochs=1 train.eval_freq=2 train.eval_iter=1 initial_eval_batches=1",
      list, dir.string(), kSmall));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("strategy") != std::string::npos);
  CHECK(r.out.find("tokens/s") != std::string::npos);
  const auto csv = llmfs::read_file(dir / "compare.csv");
  CHECK(lines_with(csv, "\n") == static_cast<int>(configs.size()) + 1);
  const auto md = llmfs::read_file(dir / "compare.md");
  CHECK(lines_with(md, "\n") == static_cast<int>(configs.size()) + 2);
  for (const auto& c : configs) {
    const auto stem = fs::path(c).stem().string();
    INFO(stem);
    CHECK(csv.find(stem + ",") != std::string::npos);
    CHECK(fs::exists(dir / stem / "results.json"));
  }
  CHECK(csv.find("lora_r16_a16,lora,") != std::string::npos);
}

TEST_CASE("ch06 refuses bad input with one line and leaves runs alone", "[chapter][ch06]") {
  const auto dir = fresh_dir("bad");
  // A CSV without the configured label column.
  llmfs::write_file_atomic(dir / "own.csv", "text,category\nhello,ham\n");
  auto r = ch06(fmt::format("prepare --output {} data.file={} data.format=csv",
                            (dir / "out").string(), (dir / "own.csv").string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("own.csv") != std::string::npos);
  CHECK(r.out.find("no column 'Text'") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "out" / "train.csv"));

  // Unknown keys and bad values name the key.
  r = ch06("prepare classifier.pooling=max");
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("classifier.pooling") != std::string::npos);
  r = ch06("prepare classifier.lora.layers=[W_q]");
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("classifier.lora.layers") != std::string::npos);
  // A comparison without the accuracies is refused before any run.
  r = ch06(fmt::format("compare --configs configs/ch06/head_only.yaml --output {} final_eval=false",
                       (dir / "cmp").string()));
  CHECK(r.exit_code != 0);
  CHECK(r.out.find("head_only.yaml: final_eval") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "cmp" / "head_only"));

  // A run to break things with.
  const auto run = dir / "run";
  r = ch06(fmt::format("train {} train.max_steps=2 train.num_epochs=1 train.output_dir={}", kSmall,
                       run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  const auto metrics_before = llmfs::read_file(run / "metrics.jsonl");
  // The same folder again without --overwrite: refused before anything is written.
  r = ch06(fmt::format("train {} train.max_steps=3 train.num_epochs=1 train.output_dir={}", kSmall,
                       run.string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("--overwrite") != std::string::npos);
  CHECK(llmfs::read_file(run / "metrics.jsonl") == metrics_before);

  // A checkpoint of another head size: its config says 3 classes, its weights have 2.
  const auto found = llmfs::latest_checkpoint(run / "checkpoints");
  REQUIRE(found);
  const auto latest = *found;
  REQUIRE(fs::exists(latest / "config.yaml"));
  auto yaml = llmfs::read_file(latest / "config.yaml");
  const auto at = yaml.find("classes: [ham, spam]");
  REQUIRE(at != std::string::npos);
  yaml.replace(at, 20, "classes: [ham, spam, eggs]");
  llmfs::write_file_atomic(latest / "config.yaml", yaml);
  r = ch06(fmt::format("classify --checkpoint {} --text hello", run.string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("out_head.weight") != std::string::npos);
  CHECK(lines_with(r.out, "\n") == 1);

  // Nothing there; not a classifier.
  r = ch06(fmt::format("classify --checkpoint {} --text hello", (dir / "missing").string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("missing") != std::string::npos);
  r = ch06(fmt::format("evaluate --checkpoint {}", dir.string()));
  CHECK(r.exit_code == 1);
}

TEST_CASE("ch06 finetunes on a member's own CSV: three classes, Korean text", "[chapter][ch06]") {
  const auto dir = fresh_dir("own");
  // Three classes told apart by their words; label names in Korean, a header of our own.
  const std::vector<std::vector<std::string>> words = {
      {"맛있어요", "최고의", "친절한", "훌륭한", "좋았어요"},
      {"보통이에요", "그럭저럭", "평범한", "무난한", "괜찮아요"},
      {"별로예요", "불친절한", "최악의", "실망했어요", "비싸요"}};
  const std::vector<std::string> labels = {"긍정", "중립", "부정"};
  std::string csv = "review,sentiment\n";
  for (int i = 0; i < 60; ++i) {
    for (int c = 0; c < 3; ++c) {
      csv += fmt::format("\"{} 식당, {} 음식 {}\",{}\n", words[c][i % 5], words[c][(i + 2) % 5],
                         i, labels[c]);
    }
  }
  llmfs::write_file_atomic(dir / "reviews.csv", csv);
  const auto run = dir / "run";
  const auto r = ch06(fmt::format(
      "train {} data.file={} data.format=csv data.text_column=review data.label_column=sentiment "
      "\"data.classes=[긍정, 중립, 부정]\" classifier.trainable=all classifier.pooling=mean "
      "train.learning_rate=1e-3 train.num_epochs=4 train.eval_freq=10 train.output_dir={}",
      kSmall, (dir / "reviews.csv").string(), run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  const auto results = nlohmann::json::parse(llmfs::read_file(run / "results.json"));
  // The book's int(180 * 0.7) is 125 in binary floating point, so test gets 180 - 125 - 18.
  CHECK(results["test_total"] == 37);
  CHECK(results["test_accuracy"].get<double>() > 0.8);  // chance: 1/3
  const auto c = ch06(fmt::format("classify --checkpoint {} --text \"최악의 식당, 비싸요 음식\"",
                                  run.string()));
  INFO(c.out);
  CHECK(c.exit_code == 0);
  CHECK(c.out.rfind("부정\t", 0) == 0);
  // A label outside the classes names the file and line.
  llmfs::write_file_atomic(dir / "bad.csv", "review,sentiment\n좋아요,긍정\n싫어요,화남\n");
  const auto bad = ch06(fmt::format(
      "prepare --output {} data.file={} data.format=csv data.text_column=review "
      "data.label_column=sentiment \"data.classes=[긍정, 부정]\"",
      (dir / "bad").string(), (dir / "bad.csv").string()));
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.find("bad.csv:3") != std::string::npos);
  CHECK(bad.out.find("화남") != std::string::npos);
}

TEST_CASE("ch06 train stopped by Ctrl-C resumes to the uninterrupted run's results",
          "[chapter][ch06]") {
  const auto dir = fresh_dir("resume");
  const std::string args = fmt::format(
      "train {} train.num_epochs=2 train.eval_freq=10 train.checkpoint_every=0", kSmall);
  const auto full = ch06(fmt::format("{} train.output_dir={}", args, (dir / "full").string()));
  INFO(full.out);
  REQUIRE(full.exit_code == 0);

  // The same run, interrupted once its step-40 evaluation is written, then resumed.
  const auto run = dir / "run";
  const auto metrics = run / "metrics.jsonl";
  const auto script = fmt::format(
      "cd \"{src}\" && (OMP_NUM_THREADS=1 \"{bin}/ch06\" {args} train.output_dir={run} >{dir}/first.txt "
      "2>&1 & pid=$!; while ! grep -q '\"step\": *40[,}}]' {metrics} 2>/dev/null; do "
      "kill -0 $pid 2>/dev/null || break; sleep 0.02; done; kill -INT $pid; wait $pid; "
      "echo \"exit $?\")",
      fmt::arg("src", llmfs::test::kSourceDir), fmt::arg("bin", llmfs::test::kBinDir),
      fmt::arg("args", args), fmt::arg("run", run.string()), fmt::arg("dir", dir.string()),
      fmt::arg("metrics", metrics.string()));
  FILE* pipe = popen(script.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[256] = {};
  const std::string status = fgets(buffer, sizeof buffer, pipe) ? buffer : "";
  pclose(pipe);
  const auto first = llmfs::read_file(dir / "first.txt");
  INFO(first);
  REQUIRE(status == "exit 130\n");
  CHECK(first.find("--resume latest") != std::string::npos);
  CHECK_FALSE(fs::exists(run / "results.json"));

  const auto second = ch06(fmt::format("{} train.output_dir={} --resume latest", args, run.string()));
  INFO(second.out);
  REQUIRE(second.exit_code == 0);
  const auto a = nlohmann::json::parse(llmfs::read_file(dir / "full" / "results.json"));
  const auto b = nlohmann::json::parse(llmfs::read_file(run / "results.json"));
  for (const char* key : {"train_correct", "val_correct", "test_correct", "steps"}) {
    INFO(key);
    CHECK(a[key] == b[key]);
  }
  // Every evaluation (losses, lr; not the timings) and every epoch's accuracies are the
  // uninterrupted run's.
  const auto evaluations = [](const fs::path& csv) {
    std::vector<std::string> rows;
    std::istringstream in(llmfs::read_file(csv));
    for (std::string line; std::getline(in, line);) {
      size_t at = 0;
      for (int commas = 0; commas < 6 && at != std::string::npos; ++commas) at = line.find(',', at + 1);
      rows.push_back(line.substr(0, at));
    }
    return rows;
  };
  const auto full_rows = evaluations(dir / "full" / "metrics.csv");
  CHECK(full_rows.size() > 20);
  CHECK(evaluations(run / "metrics.csv") == full_rows);
  CHECK(llmfs::read_file(run / "epoch_metrics.csv") ==
        llmfs::read_file(dir / "full" / "epoch_metrics.csv"));
}

TEST_CASE("ch06 train under torchrun: 2 processes train as 1 with both ranks' batches",
          "[chapter][ch06][dist]") {
  // The classification loss is a mean over examples of equal length (padded to the longest
  // text), so 2 ranks of batch 4 take the steps of 1 process of batch 8, within rounding.
  const auto two = fresh_dir("torchrun_two");
  const auto one = fresh_dir("torchrun_one");
  const std::string args =
      kSmall + " classifier.trainable=all train.max_steps=4 train.eval_freq=2 train.eval_iter=1 "
               "train.num_epochs=1 final_eval=false";
  const auto a = llmfs::test::run_torchrun(
      2, "ch06", fmt::format("train {} train.batch_size=4 train.output_dir={}", args, two.string()));
  INFO(a.out);
  REQUIRE(a.exit_code == 0);
  const auto b = llmfs::test::run_torchrun(
      1, "ch06", fmt::format("train {} train.batch_size=8 train.output_dir={}", args, one.string()));
  INFO(b.out);
  REQUIRE(b.exit_code == 0);
  const auto losses = [](const fs::path& run) {
    return nlohmann::json::parse(llmfs::read_file(run / "timing.json"))
        .at("step_losses")
        .get<std::vector<double>>();
  };
  const auto la = losses(two), lb = losses(one);
  REQUIRE(la.size() == 4);
  REQUIRE(lb.size() == 4);
  for (size_t i = 0; i < la.size(); ++i) CHECK(std::abs(la[i] - lb[i]) <= 1e-5);
  // Rank 0 alone prints and writes: each evaluation line once.
  CHECK(lines_with(a.out, "Ep 1 (Step 000002)") == 1);
  CHECK(fs::exists(two / "train.csv"));
}
