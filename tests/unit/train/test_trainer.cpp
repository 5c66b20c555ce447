// The training loop with a stand-in model: bookkeeping (CI-04/CI-05 style), gradient
// accumulation, the clipping erratum switch, resume equivalence, autocast, bad input.
#include <csignal>
#include <filesystem>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/train/interrupt.h"
#include "llmfs/train/trainer.h"
#include "tensor_compare.h"
#include "tiny_lm.h"

namespace fs = std::filesystem;

namespace {

using llmfs::test::TinyLM;

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("llmfs_test_trainer_" + name);
  fs::remove_all(dir);
  return dir;
}

llmfs::TrainConfig tiny_config(const std::string& name) {
  llmfs::TrainConfig c;
  c.num_epochs = 3;
  c.batch_size = 2;
  c.learning_rate = 5e-3;
  c.eval_freq = 2;
  c.eval_iter = 2;
  c.device = "cpu";
  c.output_dir = fresh_dir(name).string();
  c.final_checkpoint = false;
  return c;
}

struct Run {
  TinyLM model{nullptr};
  llmfs::TrainResult result;
};

// Tiny tensors: one thread avoids the pool's synchronisation cost on a busy machine.
struct OneThread {
  OneThread() : before(torch::get_num_threads()) { torch::set_num_threads(1); }
  ~OneThread() { torch::set_num_threads(before); }
  int before;
};

// The book's order: seed, loaders, seed, model, train.
Run train_tiny(const llmfs::TrainConfig& config, double drop_rate,
               const std::function<void(llmfs::TrainHooks<>&, TinyLM)>& adjust = {},
               const std::optional<fs::path>& resume = std::nullopt) {
  const OneThread one_thread;
  torch::manual_seed(123);
  const auto train = llmfs::test::tiny_loader(200, 8, config.batch_size, true, true);
  const auto val = llmfs::test::tiny_loader(60, 8, config.batch_size, false, false);
  torch::manual_seed(123);
  TinyLM model(llmfs::test::kTinyVocab, 16, drop_rate);
  llmfs::TrainHooks<> hooks;
  hooks.loss = llmfs::test::tiny_loss(model);
  if (adjust) adjust(hooks, model);
  llmfs::Trainer<> trainer(model.ptr(), config, llmfs::batch_source(train),
                           llmfs::batch_source(val), hooks, {.interactive_progress = false});
  if (resume) trainer.resume(*resume);
  return {model, trainer.fit()};
}

void require_same_history(const llmfs::TrainHistory& a, const llmfs::TrainHistory& b) {
  REQUIRE(a.points.size() == b.points.size());
  for (size_t i = 0; i < a.points.size(); ++i) {
    INFO("evaluation " << i << ": " << llmfs::format_eval_line(a.points[i]) << " vs "
                       << llmfs::format_eval_line(b.points[i]));
    CHECK(a.points[i].same_values(b.points[i]));
  }
  CHECK(a.track_lrs == b.track_lrs);
}

void require_same_parameters(TinyLM a, TinyLM b) {
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) {
    INFO(p.key());
    CHECK(torch::equal(p.value(), pb[p.key()]));
  }
}

}  // namespace

TEST_CASE("the trainer tracks one entry per evaluation and one rate per step (CI-04 style)",
          "[unit][train]") {
  auto config = tiny_config("counts");
  config.eval_at_end = false;  // the book's schedule: every eval_freq steps only
  // 200 tokens, windows of 8 every 8: 24 windows -> 12 batches of 2 per epoch, 36 steps.
  const auto run = train_tiny(config, 0.1);
  const auto& h = run.result.history;
  CHECK(h.track_lrs.size() == 36);
  CHECK(h.points.size() == 18);  // steps 0, 2, ..., 34
  CHECK(h.train_losses().size() == h.val_losses().size());
  CHECK(h.track_tokens_seen().size() == 18);
  CHECK(h.track_tokens_seen().front() == 16);      // one batch of 2 x 8 tokens
  CHECK(h.track_tokens_seen().back() == 35 * 16);  // after step 34
  CHECK(h.points.front().epoch == 1);
  CHECK(h.points.back().epoch == 3);
  CHECK(h.points.back().step == 34);
  // CI-05 style: the first loss is near ln(vocab) for an untrained model, the last below it.
  CHECK(h.points.front().train_loss == Approx(std::log(37.0)).margin(0.5));
  CHECK(h.points.back().train_loss < h.points.front().train_loss);
  CHECK(run.result.global_step == 35);
  CHECK_FALSE(run.result.interrupted);
  CHECK(fs::exists(fs::path(config.output_dir) / "metrics.jsonl"));
  const auto points = llmfs::read_metrics_jsonl(fs::path(config.output_dir) / "metrics.jsonl");
  REQUIRE(points.size() == 18);
  CHECK(points.back().same_values(h.points.back()));
}

TEST_CASE("the evaluation line has the book's format", "[unit][train]") {
  llmfs::EvalPoint p;
  p.epoch = 1;
  p.step = 0;
  p.train_loss = 9.78123;
  p.val_loss = 9.9334;
  CHECK(llmfs::format_eval_line(p) == "Ep 1 (Step 000000): Train loss 9.781, Val loss 9.933");
  p.epoch = 15;
  p.step = 130;
  CHECK(llmfs::format_eval_line(p, "Iter") ==
        "Ep 15 (Iter 000130): Train loss 9.781, Val loss 9.933");
}

TEST_CASE("max_steps ends training early and on_epoch_end runs after each full epoch",
          "[unit][train]") {
  auto config = tiny_config("max_steps");
  config.max_steps = 15;
  std::vector<int64_t> epochs;
  const auto run = train_tiny(config, 0.1, [&](llmfs::TrainHooks<>& h, TinyLM) {
    h.on_epoch_end = [&](int64_t epoch) -> std::map<std::string, double> {
      epochs.push_back(epoch);
      return {};
    };
  });
  CHECK(run.result.global_step == 14);
  CHECK(run.result.history.track_lrs.size() == 15);
  CHECK(epochs == std::vector<int64_t>{1});  // 12 steps per epoch
}

TEST_CASE("gradient accumulation: 2 batches of 1 give the update of 1 batch of 2",
          "[unit][train]") {
  const auto run_with = [](int64_t batch_size, int64_t accumulation) {
    auto config = tiny_config("accumulation");
    config.num_epochs = 1;
    config.batch_size = batch_size;
    config.grad_accumulation_steps = accumulation;
    config.eval_freq = 1000;
    const OneThread one_thread;
    // Unshuffled loaders and no dropout: both runs see the same examples in the same order.
    torch::manual_seed(123);
    const auto train = llmfs::test::tiny_loader(200, 8, batch_size, false, true);
    const auto val = llmfs::test::tiny_loader(60, 8, batch_size, false, false);
    torch::manual_seed(123);
    TinyLM model(llmfs::test::kTinyVocab, 16, 0.0);
    llmfs::TrainHooks<> hooks;
    hooks.loss = llmfs::test::tiny_loss(model);
      llmfs::Trainer<> trainer(model.ptr(), config, llmfs::batch_source(train),
                             llmfs::batch_source(val), hooks, {.interactive_progress = false});
    const auto result = trainer.fit();
    return std::make_pair(model, result);
  };
  const auto [a, ra] = run_with(2, 1);
  const auto [b, rb] = run_with(1, 2);
  CHECK(ra.global_step == rb.global_step);  // 12 optimizer steps each
  CHECK(ra.tokens_seen == rb.tokens_seen);
  for (const auto& p : a->named_parameters()) {
    const auto check = llmfs::test::compare(b->named_parameters()[p.key()], p.value(), 1e-5, 1e-4);
    INFO(p.key() << ": " << check.report);
    CHECK(check.ok);
  }
}

TEST_CASE("clip_after_warmup_erratum clips from step W+1 instead of W", "[unit][train][book]") {
  // The head's weights after each of the first steps (W = 3).
  const auto weights_per_step = [](bool erratum) {
    auto config = tiny_config("erratum");
    config.lr_schedule = "warmup_cosine";
    config.warmup_steps = 3;
    config.initial_lr = 1e-3;
    config.min_lr = 1e-4;
    config.grad_clip = 1e-3;  // far below the gradient norm: clipping always changes the step
    config.clip_after_warmup_erratum = erratum;
    config.eval_freq = 1;
    config.eval_iter = 1;
    config.max_steps = 6;
    std::vector<torch::Tensor> weights;
    train_tiny(config, 0.0, [&](llmfs::TrainHooks<>& h, TinyLM model) {
      h.on_eval = [&weights, model](const llmfs::EvalPoint&) {
        weights.push_back(model->out_head->weight.detach().clone());
      };
    });
    return weights;
  };
  const auto fixed = weights_per_step(false), erratum = weights_per_step(true);
  REQUIRE(fixed.size() == 6);
  REQUIRE(erratum.size() == 6);
  // Steps 0..2 (before W) clip in neither variant; step W = 3 clips only without the erratum.
  CHECK(torch::equal(fixed[2], erratum[2]));
  CHECK_FALSE(torch::equal(fixed[3], erratum[3]));
}

TEST_CASE("a run interrupted at a step boundary and resumed equals the uninterrupted run",
          "[unit][train]") {
  const int64_t stop_step = GENERATE(6, 11);  // inside epoch 1; the last step of epoch 1
  auto config = tiny_config("resume");
  config.eval_freq = 1;
  const auto full = train_tiny(config, 0.1);

  auto config2 = tiny_config("resume_interrupted");
  config2.eval_freq = 1;
  const auto first = train_tiny(config2, 0.1, [&](llmfs::TrainHooks<>& h, TinyLM) {
    h.on_eval = [&](const llmfs::EvalPoint& p) {
      if (p.step == stop_step) llmfs::InterruptGuard::simulate(SIGINT);
    };
  });
  REQUIRE(first.result.interrupted);
  CHECK(first.result.signal == "SIGINT");
  CHECK(first.result.global_step == stop_step);
  REQUIRE(first.result.checkpoint.filename() == fmt::format("step_{:06d}", stop_step));

  const auto second = train_tiny(config2, 0.1, {}, first.result.checkpoint);
  CHECK_FALSE(second.result.interrupted);
  require_same_history(full.result.history, second.result.history);
  require_same_parameters(full.model, second.model);
  // metrics.jsonl of the resumed run holds the whole history once.
  const auto points = llmfs::read_metrics_jsonl(fs::path(config2.output_dir) / "metrics.jsonl");
  REQUIRE(points.size() == full.result.history.points.size());
  for (size_t i = 0; i < points.size(); ++i)
    CHECK(points[i].same_values(full.result.history.points[i]));
}

TEST_CASE("periodic checkpoints and the final one resume to the same end", "[unit][train]") {
  auto config = tiny_config("periodic");
  config.checkpoint_every = 5;
  config.keep_checkpoints = 3;
  config.final_checkpoint = true;
  const auto full = train_tiny(config, 0.1);
  const fs::path checkpoints = fs::path(config.output_dir) / "checkpoints";
  // Saved after steps 4, 9, ..., 34 and at the end (35); the newest 3 are kept.
  CHECK(llmfs::latest_checkpoint(checkpoints)->filename() == "step_000035");
  CHECK(fs::exists(checkpoints / "step_000034"));
  CHECK(fs::exists(checkpoints / "step_000029"));
  CHECK_FALSE(fs::exists(checkpoints / "step_000024"));
  // Resuming from step 29 (the 30th step) replays the rest identically.
  const auto second = train_tiny(config, 0.1, {}, checkpoints / "step_000029");
  require_same_history(full.result.history, second.result.history);
  // Resuming a finished run trains no further.
  const auto third = train_tiny(config, 0.1, {}, checkpoints / "step_000035");
  CHECK(third.result.step_seconds.empty());
}

TEST_CASE("bf16 autocast trains on the CPU close to float32", "[unit][train]") {
  auto config = tiny_config("bf16");
  config.max_steps = 4;
  const auto fp32 = train_tiny(config, 0.0);
  config.precision = "bf16";
  const auto bf16 = train_tiny(config, 0.0);
  const auto& a = fp32.result.history.points.front();
  const auto& b = bf16.result.history.points.front();
  CHECK(std::isfinite(b.train_loss));
  CHECK(b.train_loss == Approx(a.train_loss).margin(0.05));
  CHECK(bf16.model->out_head->weight.scalar_type() == torch::kFloat32);  // master weights stay fp32
}

TEST_CASE("the trainer rejects a training loader without batches", "[unit][train]") {
  auto config = tiny_config("empty");
  torch::manual_seed(123);
  const auto train = llmfs::test::tiny_loader(20, 8, 4, true, true);  // 2 windows < batch 4
  const auto val = llmfs::test::tiny_loader(20, 8, 4, false, false);
  TinyLM model(llmfs::test::kTinyVocab, 16, 0.0);
  llmfs::TrainHooks<> hooks;
  hooks.loss = llmfs::test::tiny_loss(model);
  CHECK_THROWS_WITH((llmfs::Trainer<>(model.ptr(), config, llmfs::batch_source(train),
                                      llmfs::batch_source(val), hooks)),
                    llmfs::test::contains_text("the training loader has no batches"));
}

TEST_CASE("calc_loss_loader averages the first num_batches batches, NaN when empty",
          "[unit][train]") {
  torch::manual_seed(1);
  TinyLM model(llmfs::test::kTinyVocab, 8, 0.0);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto loader = llmfs::test::tiny_loader(100, 8, 3, false, false);  // 12 windows, 4 batches
  const torch::Device cpu(torch::kCPU);
  double sum = 0;
  int64_t i = 0;
  for (const auto& b : loader) {
    if (i++ < 2) sum += llmfs::calc_loss_batch(b.input, b.target, model, cpu).item<double>();
  }
  CHECK(llmfs::calc_loss_loader(loader, model, cpu, 2) == Approx(sum / 2));
  CHECK(llmfs::calc_loss_loader(loader, model, cpu, 100) ==
        Approx(llmfs::calc_loss_loader(loader, model, cpu)));
  const auto empty = llmfs::test::tiny_loader(100, 8, 20, false, true);  // 12 windows < 20
  CHECK(std::isnan(llmfs::calc_loss_loader(empty, model, cpu)));
}

TEST_CASE("lm_loss skips targets equal to -100", "[unit][train]") {
  const auto logits = torch::tensor({{{2.0f, 0.0f}, {0.0f, 3.0f}}});  // (1, 2, 2)
  const auto all = llmfs::lm_loss(logits, torch::tensor({{0, 1}}));
  const auto first = llmfs::lm_loss(logits, torch::tensor({{0, -100}}));
  const double l0 = std::log(1 + std::exp(-2.0)), l1 = std::log(1 + std::exp(-3.0));
  CHECK(all.item<double>() == Approx((l0 + l1) / 2));
  CHECK(first.item<double>() == Approx(l0));
  CHECK(llmfs::perplexity(std::log(5.0)) == Approx(5.0));
}

TEST_CASE("a run also evaluates at its last step, and that leaves the random stream alone",
          "[unit][train]") {
  // 3 epochs of 12 steps (0..35). Dropout and shuffled batches draw from the global generator,
  // and the extra evaluation draws a shuffle of the training loader too: what comes after it
  // (on_epoch_end, the caller) must see the stream of the book's loop.
  struct Outcome {
    Run run;
    std::vector<double> epoch_draws;  // a draw in each on_epoch_end
    double after = 0.0;               // a draw after fit()
    std::vector<llmfs::EvalPoint> logged;  // metrics.jsonl
  };
  const auto run_with = [](int64_t eval_freq, bool at_end, int64_t max_steps) {
    auto config = tiny_config(fmt::format("at_end_{}_{}_{}", eval_freq, at_end, max_steps));
    config.eval_freq = eval_freq;
    config.eval_at_end = at_end;
    if (max_steps > 0) config.max_steps = max_steps;
    Outcome out;
    out.run = train_tiny(config, 0.1, [&](llmfs::TrainHooks<>& h, TinyLM) {
      h.on_epoch_end = [&](int64_t) -> std::map<std::string, double> {
        out.epoch_draws.push_back(torch::rand({1}).item<double>());
        return {};
      };
    });
    out.after = torch::rand({1}).item<double>();
    out.logged = llmfs::read_metrics_jsonl(fs::path(config.output_dir) / "metrics.jsonl");
    return out;
  };
  const auto require_book_prefix = [](const Outcome& book, const Outcome& ours) {
    const auto& b = book.run.result.history.points;
    const auto& o = ours.run.result.history.points;
    REQUIRE(o.size() == b.size() + 1);
    for (size_t i = 0; i < b.size(); ++i) CHECK(o[i].same_values(b[i]));
    REQUIRE(ours.logged.size() == o.size());
    CHECK(ours.logged.back().same_values(o.back()));
    require_same_parameters(book.run.model, ours.run.model);
    CHECK(book.epoch_draws == ours.epoch_draws);
    CHECK(book.after == ours.after);
  };

  SECTION("the last step of the last epoch") {  // eval_freq 10: the book stops at step 30
    const auto book = run_with(10, false, 0), ours = run_with(10, true, 0);
    REQUIRE(book.run.result.history.points.back().step == 30);
    require_book_prefix(book, ours);
    CHECK(ours.run.result.history.points.back().step == 35);
    CHECK(ours.run.result.history.points.back().epoch == 3);
    CHECK(ours.run.result.history.points.back().tokens_seen == 36 * 16);
    CHECK(ours.epoch_draws.size() == 3);
  }
  SECTION("a run stopped by max_steps") {  // 32 steps: the book's last evaluation is at 30
    const auto book = run_with(10, false, 32), ours = run_with(10, true, 32);
    require_book_prefix(book, ours);
    CHECK(ours.run.result.history.points.back().step == 31);
  }
  SECTION("nothing to add when the schedule lands on the last step") {  // 35 = 5 x 7
    const auto book = run_with(7, false, 0), ours = run_with(7, true, 0);
    CHECK(ours.run.result.history.points.size() == book.run.result.history.points.size());
    CHECK(ours.run.result.history.points.back().step == 35);
  }
}
