// `ch05 train` under torchrun (c10d, Gloo on the CPU), as a user launches it: two processes train
// as one process whose batch holds both ranks' batches (with and without gradient accumulation),
// on one "node" or two; a killed rank stops every rank with an error naming it, and the
// checkpoint before it resumes with 1 process or 2 and goes on as the uninterrupted run; a signal
// to one rank stops all at the same step with one checkpoint. A tiny model on the-verdict, no
// dropout; losses are compared within 1e-5. Needs the data files and the venv's torch.
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "catch.h"
#include "child_process.h"
#include "llmfs/core/file_io.h"
#include "llmfs_test_paths.h"

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// The tiny model of test_ch05_train.cpp (2 layers, 32 wide, windows of 32 tokens), no dropout.
std::vector<std::string> tiny_args(const fs::path& out, int64_t batch_size, int64_t max_steps) {
  return {"train",
          "--log-level=info",
          "model.n_layers=2",
          "model.emb_dim=32",
          "model.n_heads=4",
          "model.context_length=32",
          "model.drop_rate=0.0",
          "train.num_epochs=50",
          "train.eval_freq=5",
          "train.eval_iter=2",
          "train.device=cpu",
          "train.sample.max_new_tokens=0",
          "train.data.max_length=32",
          "train.data.stride=32",
          "train.dist.timeout_s=60",
          fmt::format("train.batch_size={}", batch_size),
          fmt::format("train.max_steps={}", max_steps),
          "train.output_dir=" + out.string()};
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / fmt::format("llmfs_ch05_ddp_{}_{}", name, ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(s);
  return ntohs(addr.sin_port);
}

// torchrun (the venv's torch.distributed.run) launching build/bin/ch05 with `launcher` options.
class Torchrun : public llmfs::test::ChildProcess {
 public:
  Torchrun(const std::vector<std::string>& launcher, const std::vector<std::string>& ch05_args)
      : ChildProcess(llmfs::test::kPython, command(launcher, ch05_args)) {}

  // The pid of the worker with RANK=rank (a child of torchrun's agent); -1 if not (yet) there.
  pid_t worker(int rank) const {
    std::ifstream children(fmt::format("/proc/{}/task/{}/children", pid(), pid()));
    for (pid_t child; children >> child;) {
      const std::string environ = read_text(fmt::format("/proc/{}/environ", child));
      if (environ.find(fmt::format("{}RANK={}{}", '\0', rank, '\0')) != std::string::npos) {
        return child;
      }
    }
    return -1;
  }

 private:
  static std::vector<std::string> command(const std::vector<std::string>& launcher,
                                          const std::vector<std::string>& ch05_args) {
    std::vector<std::string> args = {"-m", "torch.distributed.run"};
    args.insert(args.end(), launcher.begin(), launcher.end());
    args.push_back("--no-python");
    args.push_back(std::string(llmfs::test::kBinDir) + "/ch05");
    args.insert(args.end(), ch05_args.begin(), ch05_args.end());
    return args;
  }
  static std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};

std::vector<std::string> standalone(int processes) {
  return {"--standalone", fmt::format("--nproc_per_node={}", processes)};
}

struct Run {
  int code = -1;
  std::string out;  // stdout lines and stderr
};

Run torchrun(const std::vector<std::string>& launcher, const std::vector<std::string>& args) {
  Torchrun t(launcher, args);
  Run r;
  r.code = t.wait();
  for (const auto& line : t.lines()) r.out += line + "\n";
  r.out += t.err();
  return r;
}

// The training loss of every step of the last fit() of a run (timing.json), by step number.
std::map<int64_t, double> step_losses(const fs::path& out) {
  const auto j = nlohmann::json::parse(llmfs::read_file(out / "timing.json"));
  std::map<int64_t, double> losses;
  int64_t step = j.at("first_step").get<int64_t>();
  for (const auto& loss : j.at("step_losses")) losses[step++] = loss.get<double>();
  return losses;
}

void require_same_losses(const std::map<int64_t, double>& got,
                         const std::map<int64_t, double>& expected, int64_t first,
                         int64_t last) {
  for (int64_t step = first; step <= last; ++step) {
    INFO("step " << step);
    REQUIRE(got.count(step) == 1);
    REQUIRE(expected.count(step) == 1);
    CHECK(std::abs(got.at(step) - expected.at(step)) <= 1e-5);
  }
}

int count_lines(const std::string& text, const std::string& part) {
  int n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// The reference: 2 ranks with batch 1, 10 steps, made once.
const fs::path& two_ranks_run() {
  static const fs::path dir = [] {
    const auto d = fresh_dir("two_ranks");
    const auto r = torchrun(standalone(2), tiny_args(d, 1, 10));
    INFO(r.out);
    REQUIRE(r.code == 0);
    return d;
  }();
  return dir;
}

}  // namespace

TEST_CASE("torchrun with 2 processes trains as 1 process whose batch holds both ranks' batches",
          "[chapter][dist]") {
  const auto& two = two_ranks_run();
  const auto one = fresh_dir("one_rank");
  const auto r1 = torchrun(standalone(1), tiny_args(one, 2, 10));
  INFO(r1.out);
  REQUIRE(r1.code == 0);
  require_same_losses(step_losses(two), step_losses(one), 0, 9);

  // Only rank 0 logs, writes and checkpoints: each evaluation line once, one run folder.
  const auto r2 = llmfs::read_file(two / "metrics.jsonl");
  CHECK(count_lines(r2, "\n") == 3);  // steps 0 and 5 (eval_freq 5), and the last, 9
  CHECK(fs::exists(two / "checkpoints" / "step_000009"));
  const auto timing = nlohmann::json::parse(llmfs::read_file(two / "timing.json"));
  CHECK(timing.at("world_size") == 2);
  CHECK(timing.at("gradient_sync_seconds").get<double>() > 0);

  SECTION("and with gradient accumulation 2") {
    const auto two_acc = fresh_dir("two_ranks_acc");
    const auto one_acc = fresh_dir("one_rank_acc");
    const auto a = torchrun(standalone(2), with(tiny_args(two_acc, 1, 10),
                                                {"train.grad_accumulation_steps=2"}));
    INFO(a.out);
    REQUIRE(a.code == 0);
    const auto b = torchrun(standalone(1), with(tiny_args(one_acc, 2, 10),
                                                {"train.grad_accumulation_steps=2"}));
    INFO(b.out);
    REQUIRE(b.code == 0);
    require_same_losses(step_losses(two_acc), step_losses(one_acc), 0, 9);
  }
}

TEST_CASE("two torchrun 'nodes' meeting at a c10d rendezvous on 127.0.0.1 train the same",
          "[chapter][dist]") {
  const auto& two = two_ranks_run();
  const auto out = fresh_dir("two_nodes");
  const std::string endpoint = fmt::format("--rdzv_endpoint=127.0.0.1:{}", free_port());
  const auto node = [&](int rank) {
    return std::vector<std::string>{"--nnodes=2", fmt::format("--node_rank={}", rank),
                                    "--nproc_per_node=1", "--rdzv_backend=c10d", endpoint,
                                    fmt::format("--rdzv_id=llmfs_test_{}", ::getpid())};
  };
  Torchrun node0(node(0), tiny_args(out, 1, 10));
  Torchrun node1(node(1), tiny_args(out, 1, 10));
  const int code1 = node1.wait();
  const int code0 = node0.wait();
  INFO(node0.err() << node1.err());
  REQUIRE(code0 == 0);
  REQUIRE(code1 == 0);
  require_same_losses(step_losses(out), step_losses(two), 0, 9);
}

TEST_CASE("a killed rank stops every rank with an error naming it, and its checkpoint resumes",
          "[chapter][dist]") {
  const auto out = fresh_dir("killed");
  // A long run (50 epochs) with a checkpoint every 2 steps; rank 1 is killed after step 6.
  Torchrun run(standalone(2), with(tiny_args(out, 1, 100000),
                                   {"train.checkpoint_every=2", "train.eval_freq=1"}));
  REQUIRE(run.read_until("Step 000006"));
  const pid_t rank1 = run.worker(1);
  REQUIRE(rank1 > 0);
  const auto killed_at = Clock::now();
  ::kill(rank1, SIGKILL);
  const int code = run.wait();
  const double seconds = std::chrono::duration<double>(Clock::now() - killed_at).count();
  const std::string err = run.err();
  INFO(err);
  CHECK(code != 0);
  CHECK(seconds < 60);  // train.dist.timeout_s
  CHECK(err.find("rank 0: lost rank 1 of 2 during") != std::string::npos);

  const auto latest = llmfs::read_file(out / "checkpoints" / "latest");
  const int64_t at = std::stoll(latest.substr(latest.find('_') + 1));
  REQUIRE(at >= 5);
  const int64_t end = at + 6;

  // The uninterrupted run to the same end, 2 ranks.
  const auto whole = fresh_dir("killed_whole");
  const auto w = torchrun(standalone(2), tiny_args(whole, 1, end));
  REQUIRE(w.code == 0);

  SECTION("2 -> 1: one process with both ranks' batch") {
    const auto r = torchrun(standalone(1), with(tiny_args(out, 2, end), {"--resume"}));
    INFO(r.out);
    REQUIRE(r.code == 0);
    require_same_losses(step_losses(out), step_losses(whole), at + 1, end - 1);
  }
  SECTION("2 -> 2") {
    const auto r = torchrun(standalone(2), with(tiny_args(out, 1, end), {"--resume"}));
    INFO(r.out);
    REQUIRE(r.code == 0);
    require_same_losses(step_losses(out), step_losses(whole), at + 1, end - 1);
  }
}

TEST_CASE("a checkpoint of 1 process resumes with 2 and goes on as the 2-process run",
          "[chapter][dist]") {
  const auto& two = two_ranks_run();
  const auto out = fresh_dir("one_then_two");
  const auto first = torchrun(standalone(1), tiny_args(out, 2, 4));
  REQUIRE(first.code == 0);
  const auto second = torchrun(standalone(2), with(tiny_args(out, 1, 10), {"--resume"}));
  INFO(second.out);
  REQUIRE(second.code == 0);
  require_same_losses(step_losses(out), step_losses(two), 4, 9);
}

TEST_CASE("SIGTERM to one rank stops every rank at the same step with one checkpoint",
          "[chapter][dist]") {
  const auto out = fresh_dir("sigterm");
  Torchrun run(standalone(2), with(tiny_args(out, 1, 100000), {"train.eval_freq=1"}));
  REQUIRE(run.read_until("Step 000004"));
  const pid_t rank1 = run.worker(1);
  REQUIRE(rank1 > 0);
  ::kill(rank1, SIGTERM);
  const int code = run.wait();
  const std::string err = run.err();
  INFO(err);
  CHECK(code != 0);  // torchrun reports the ranks' exit code 130
  CHECK(err.find("a signal to another rank at step") != std::string::npos);
  CHECK(err.find("SIGTERM at step") != std::string::npos);
  const auto latest = llmfs::read_file(out / "checkpoints" / "latest");
  int checkpoints = 0;
  for (const auto& e : fs::directory_iterator(out / "checkpoints")) {
    checkpoints += e.is_directory() ? 1 : 0;
  }
  CHECK(checkpoints == 1);
  // Both ranks named the same step: the one of the checkpoint.
  const std::string step = latest.substr(latest.find('_') + 1);
  CHECK(count_lines(err, fmt::format("at step {}: ", std::stoll(step))) == 2);
}

TEST_CASE("inconsistent launcher variables are one-line errors naming the variable",
          "[chapter][dist]") {
  const auto out = fresh_dir("bad_env");
  const auto run = [&](const std::string& env) {
    return llmfs::test::ChildProcess("/usr/bin/env",
                                     with({"-S", env, std::string(llmfs::test::kBinDir) + "/ch05"},
                                          tiny_args(out, 1, 2)));
  };
  {
    auto c = run("WORLD_SIZE=2 RANK=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29999");
    CHECK(c.wait() != 0);
    CHECK(c.err().find("RANK=2 is outside the world (WORLD_SIZE=2") != std::string::npos);
  }
  {
    auto c = run("WORLD_SIZE=two");
    CHECK(c.wait() != 0);
    CHECK(c.err().find("environment variable WORLD_SIZE=\"two\"") != std::string::npos);
  }
  {
    auto c = run("WORLD_SIZE=2 RANK=1");
    CHECK(c.wait() != 0);
    CHECK(c.err().find("MASTER_ADDR is not set") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(out / "checkpoints"));
}

TEST_CASE("a plain run's checkpoint from inside an epoch is refused under torchrun, naming it",
          "[chapter][dist]") {
  const auto out = fresh_dir("plain_then_torchrun");
  llmfs::test::ChildProcess plain(std::string(llmfs::test::kBinDir) + "/ch05",
                                  tiny_args(out, 2, 3));
  REQUIRE(plain.wait() == 0);
  const auto r = torchrun(standalone(2), with(tiny_args(out, 1, 6), {"--resume"}));
  CHECK(r.code != 0);
  CHECK(r.out.find(fmt::format("error: {}: DataLoader: the saved position is batch 3 of a "
                               "single-process pass",
                               (out / "checkpoints" / "step_000002").string())) !=
        std::string::npos);
  CHECK_FALSE(fs::exists(out / "checkpoints" / "step_000003"));
}

TEST_CASE("a command-line or config error under torchrun is printed once, by rank 0",
          "[chapter][dist]") {
  const auto out = fresh_dir("config_error");
  // Every rank reads the same arguments: 3 processes, one error line, the code of a config error.
  const auto bad_key = torchrun(standalone(3), with(tiny_args(out, 1, 2), {"train.no_such_key=1"}));
  INFO(bad_key.out);
  CHECK(bad_key.code != 0);
  CHECK(count_lines(bad_key.out, "train.no_such_key") == 1);
  CHECK(count_lines(bad_key.out, "error: ") == 1);
  CHECK(count_lines(bad_key.out, "exitcode  : 2") + count_lines(bad_key.out, "exitcode: 2") >= 1);

  const auto bad_flag = torchrun(standalone(3), with(tiny_args(out, 1, 2), {"--no-such-flag"}));
  INFO(bad_flag.out);
  CHECK(bad_flag.code != 0);
  CHECK(count_lines(bad_flag.out, "--no-such-flag") == 1);
}
