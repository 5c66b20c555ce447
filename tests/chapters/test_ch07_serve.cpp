// ch07 serve and ch07 chat as users run them: curl, the real Ollama and OpenAI client libraries,
// chapter 7's own judge, bad and heavy traffic, the web page in a real browser (headless Chromium),
// the terminal chat through a pipe and under a pseudo-terminal (tmux). The model is a random
// GPT-2 with the real vocabulary saved by transformers (fixtures_weights.py).
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include "catch.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/utf8.h"
#include "llmfs_test_paths.h"
#include "run_chapter.h"

namespace fs = std::filesystem;
using llmfs::test::fresh_dir;
using llmfs::test::run_chapter;

namespace {

fs::path fixture_model() { return fs::path(llmfs::test::kFixturesDir) / "weights" / "gpt2_vocab"; }

// Runs a shell command line from the source folder; stdout and stderr together.
llmfs::test::ChapterRun shell(const std::string& line) {
  const auto full = fmt::format("cd \"{}\" && {} 2>&1", llmfs::test::kSourceDir, line);
  FILE* pipe = popen(full.c_str(), "r");
  REQUIRE(pipe != nullptr);
  llmfs::test::ChapterRun r;
  char buffer[4096];
  for (std::size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) r.out.append(buffer, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string python_script(const std::string& name, const std::string& args) {
  return fmt::format("\"{}\" tests/serve/{} {}", llmfs::test::kPython, name, args);
}

// `ch07 serve` on a free port in the background, stopped with SIGTERM.
class ServeProcess {
 public:
  // `env`: NAME=VALUE words for its environment; `checkpoint`: the model it serves.
  explicit ServeProcess(const fs::path& dir, const std::string& args = "",
                        const fs::path& checkpoint = fixture_model(), const std::string& env = "")
      : log_(dir / "serve.log") {
    const auto line = fmt::format(
        "cd \"{}\" && exec env OMP_NUM_THREADS=1 {} \"{}/ch07\" serve --checkpoint \"{}\" "
        "--port 0 train.output_dir=\"{}\" {} > \"{}\" 2>&1",
        llmfs::test::kSourceDir, env, llmfs::test::kBinDir, checkpoint.string(),
        (dir / "run").string(), args, log_.string());
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const std::regex listening(R"(Listening on (http://[0-9.]+:\d+))");
    for (int i = 0; i < 600 && url_.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const auto text = log();
      std::smatch m;
      if (std::regex_search(text, m, listening)) url_ = m[1];
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL("ch07 serve exited before listening:\n" << log());
      }
    }
    REQUIRE_FALSE(url_.empty());
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  const std::string& url() const { return url_; }
  std::string log() const { return fs::exists(log_) ? llmfs::read_file(log_) : ""; }

  // SIGTERM: the exit code (-1: still running after 20 s).
  int stop() {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return -1;
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  std::string url_;
};

void check_stopped(ServeProcess& server) {
  CHECK(server.stop() == 0);
  const auto log = server.log();
  INFO(log);
  CHECK(log.find("Server stopped.") != std::string::npos);
}

}  // namespace

TEST_CASE("ch07 serve answers the Ollama and OpenAI clients and chapter 7's judge",
          "[chapter][ch07][serve]") {
  const auto dir = fresh_dir("serve", "clients");
  // Alpaca, as ch07 generate answers a base model; greedy answers must be the same.
  ServeProcess server(dir, "chat.format=alpaca");
  const std::string prompt = "Name three fruits.";
  // Its answer alone (stdout; the log goes to stderr).
  const auto generated = shell(fmt::format(
      "{{ OMP_NUM_THREADS=1 \"{}/ch07\" generate --checkpoint \"{}\" --instruction \"{}\" "
      "--max-new-tokens 20 train.output_dir=\"{}\" 2>/dev/null; }}",
      llmfs::test::kBinDir, fixture_model().string(), prompt, (dir / "run").string()));
  REQUIRE(generated.exit_code == 0);
  llmfs::write_file_atomic(dir / "generate.txt", generated.out);

  const auto clients = shell(python_script(
      "clients_check.py",
      fmt::format("--url {} --out \"{}\" --expect-generate \"{}\" --expect-prompt \"{}\" "
                  "--expect-tokens 20",
                  server.url(), dir.string(), (dir / "generate.txt").string(), prompt)));
  INFO(clients.out);
  CHECK(clients.exit_code == 0);
  CHECK(clients.out.find("FAIL") == std::string::npos);

  // curl, as the Ollama and OpenAI documentation shows it.
  const auto curl = [&](const std::string& args) {
    return shell(fmt::format("curl -sS --max-time 120 {}", args));
  };
  const auto greedy = curl(fmt::format(
      "{}/api/generate -d '{{\"model\": \"llmfs\", \"prompt\": \"{}\", \"stream\": false, "
      "\"options\": {{\"temperature\": 0, \"seed\": 123, \"num_predict\": 20}}}}'",
      server.url(), prompt));
  INFO(greedy.out);
  REQUIRE(greedy.exit_code == 0);
  const auto answer = nlohmann::json::parse(greedy.out);
  CHECK(answer.at("done") == true);
  CHECK(answer.at("eval_count").get<int64_t>() <= 20);
  std::string expected = generated.out;
  while (!expected.empty() && expected.back() == '\n') expected.pop_back();
  CHECK(answer.at("response").get<std::string>() == expected);
  const auto streamed = curl(fmt::format(
      "-N {}/v1/chat/completions -H 'Content-Type: application/json' -d '{{\"model\": "
      "\"llmfs\", \"stream\": true, \"max_tokens\": 8, \"messages\": [{{\"role\": "
      "\"user\", \"content\": \"안녕하세요\"}}]}}'",
      server.url()));
  INFO(streamed.out);
  CHECK(streamed.exit_code == 0);
  CHECK(streamed.out.find("data: {") == 0);
  CHECK(streamed.out.find("\"finish_reason\":") != std::string::npos);
  CHECK(streamed.out.ends_with("data: [DONE]\n\n"));
  CHECK(llmfs::find_invalid_utf8(streamed.out) == std::string::npos);
  const auto missing = curl(fmt::format("-w '\\n%{{http_code}}' {}/api/nope", server.url()));
  CHECK(missing.out.ends_with("\n404"));
  CHECK(missing.out.find("\"error\"") != std::string::npos);

  // The book's judge (§7.8) pointed at our server: every request answered, scores or not.
  llmfs::write_file_atomic(dir / "responses.json", R"([
    {"instruction": "Rewrite the sentence using a simile.", "input": "The car is very fast.",
     "output": "The car is as fast as lightning.", "model_response": "The car is as fast as a bullet."},
    {"instruction": "What is the capital of Korea?", "input": "",
     "output": "Seoul.", "model_response": "서울입니다."}
  ])");
  const auto judged = run_chapter(
      "ch07", fmt::format("evaluate --responses \"{}\" --judge-url {}/api/chat "
                          "train.output_dir=\"{}\" judge.num_ctx=1024",
                          (dir / "responses.json").string(), server.url(),
                          (dir / "run").string()));
  INFO(judged.out);
  CHECK(judged.exit_code == 0);
  CHECK(judged.out.find("Number of scores: ") != std::string::npos);
  CHECK(judged.out.find(" of 2") != std::string::npos);
  check_stopped(server);
  const auto log = server.log();
  CHECK(log.find("POST /api/chat 200") != std::string::npos);
  CHECK(log.find("POST /v1/chat/completions 200") != std::string::npos);
}

TEST_CASE("ch07 serve reads a model folder's own tokenizer, with no data folder and no network",
          "[chapter][ch07][serve]") {
  // A Hugging Face GPT-2 folder as a member has it: the weights, and the tokenizer as
  // transformers 5 saves it (tokenizer.json alone) or as the Hub holds it (vocab.json and
  // merges.txt). Served with an empty data folder, an empty cache and downloads forbidden.
  const auto dir = fresh_dir("serve", "own_tokenizer");
  const char* data = std::getenv("LLMFS_DATA_DIR");
  REQUIRE(data != nullptr);  // the GPT-2 files the folders' tokenizers are made of
  const fs::path gpt2 = fs::path(data) / "gpt2";
  const auto make_folder = [&](const std::string& name) {
    const auto folder = dir / name;
    fs::create_directories(folder);
    for (const char* file : {"config.json", "model.safetensors"}) {
      fs::copy_file(fixture_model() / file, folder / file);
    }
    return folder;
  };
  const auto hf5 = make_folder("transformers5");
  const auto made = shell(fmt::format(
      "\"{}\" -c \"import json, sys; from transformers import GPT2TokenizerFast; "
      "vocab = json.load(open(sys.argv[1])); "
      "merges = [tuple(l.split()) for l in open(sys.argv[2]).read().splitlines()[1:] if l]; "
      "GPT2TokenizerFast(vocab=vocab, merges=merges).save_pretrained(sys.argv[3])\" "
      "\"{}\" \"{}\" \"{}\"",
      llmfs::test::kPython, (gpt2 / "encoder.json").string(), (gpt2 / "vocab.bpe").string(),
      hf5.string()));
  INFO(made.out);
  REQUIRE(made.exit_code == 0);
  REQUIRE(fs::exists(hf5 / "tokenizer.json"));
  const auto hub = make_folder("hub");
  fs::copy_file(gpt2 / "encoder.json", hub / "vocab.json");
  fs::copy_file(gpt2 / "vocab.bpe", hub / "merges.txt");

  // The expected answer: ch07 generate on the same weights with GPT-2's files from the data folder.
  const std::string prompt = "Name three fruits.";
  const auto generated = shell(fmt::format(
      "{{ OMP_NUM_THREADS=1 \"{}/ch07\" generate --checkpoint \"{}\" --instruction \"{}\" "
      "--max-new-tokens 12 train.output_dir=\"{}\" 2>/dev/null; }}",
      llmfs::test::kBinDir, fixture_model().string(), prompt, (dir / "run").string()));
  REQUIRE(generated.exit_code == 0);
  std::string expected = generated.out;
  while (!expected.empty() && expected.back() == '\n') expected.pop_back();

  fs::create_directories(dir / "empty_data");
  fs::create_directories(dir / "empty_cache");
  const auto offline = fmt::format("LLMFS_DATA_DIR=\"{}\" LLMFS_CACHE_DIR=\"{}\" LLMFS_OFFLINE=1",
                                   (dir / "empty_data").string(), (dir / "empty_cache").string());
  for (const auto& folder : {hf5, hub}) {
    INFO(folder.string());
    const auto served_dir = dir / ("served_" + folder.filename().string());
    fs::create_directories(served_dir);
    ServeProcess server(served_dir, "chat.format=alpaca", folder, offline);
    const auto answer = shell(fmt::format(
        "curl -sS --max-time 120 {}/api/generate -d '{{\"model\": \"llmfs\", \"prompt\": \"{}\", "
        "\"stream\": false, \"options\": {{\"temperature\": 0, \"num_predict\": 12}}}}'",
        server.url(), prompt));
    INFO(answer.out << server.log());
    REQUIRE(answer.exit_code == 0);
    CHECK(nlohmann::json::parse(answer.out).at("response").get<std::string>() == expected);
    check_stopped(server);
  }
  // What the folders held is what was read: without them, the data folder is needed (and empty).
  fs::remove(hub / "vocab.json");
  const auto without = shell(fmt::format(
      "env {} OMP_NUM_THREADS=1 \"{}/ch07\" generate --checkpoint \"{}\" --instruction \"{}\" "
      "--max-new-tokens 2 train.output_dir=\"{}\"",
      offline, llmfs::test::kBinDir, hub.string(), prompt, (dir / "run").string()));
  INFO(without.out);
  CHECK(without.exit_code != 0);
  CHECK(without.out.find("LLMFS_OFFLINE=1") != std::string::npos);
}

TEST_CASE("ch07 serve lets in only who it should: Host, Origin, CORS, content type, API key",
          "[chapter][ch07][serve]") {
  const auto dir = fresh_dir("serve", "gate");
  for (const char* sub : {"open", "keyed", "lan"}) fs::create_directories(dir / sub);
  {
    ServeProcess server(dir / "open", "chat.format=alpaca");
    const auto gate = shell(python_script("gate_check.py", "--url " + server.url()));
    INFO(gate.out);
    CHECK(gate.exit_code == 0);
    CHECK(gate.out.find("FAIL") == std::string::npos);
    check_stopped(server);
    const auto log = server.log();
    CHECK(log.find("POST /api/generate 403") != std::string::npos);
    CHECK(log.find("POST /api/generate 415") != std::string::npos);
    CHECK(log.find("OPTIONS /api/chat 204") != std::string::npos);
    CHECK(log.find("without an API key") == std::string::npos);  // 127.0.0.1 needs none
  }
  {
    // The key from the environment, as the README advises for a LAN.
    ServeProcess server(dir / "keyed", "chat.format=alpaca serve.api_key_env=LLMFS_TEST_SERVE_KEY",
                        fixture_model(), "LLMFS_TEST_SERVE_KEY=k3y-for-tests");
    const auto gate =
        shell(python_script("gate_check.py", "--url " + server.url() + " --api-key k3y-for-tests"));
    INFO(gate.out);
    CHECK(gate.exit_code == 0);
    CHECK(gate.out.find("FAIL") == std::string::npos);
    const auto page = shell(python_script(
        "browser_check.py", fmt::format("--url {} --out \"{}\" --api-key k3y-for-tests",
                                        server.url(), (dir / "keyed").string())));
    INFO(page.out);
    CHECK(page.exit_code == 0);
    check_stopped(server);
    CHECK(server.log().find("POST /api/generate 401") != std::string::npos);
  }
  // Every address, no key: one warning at start; a key named but not set: a config error.
  {
    ServeProcess server(dir / "lan", "chat.format=alpaca --host 0.0.0.0");
    const auto log = server.log();
    INFO(log);
    CHECK(log.find("serving on 0.0.0.0 without an API key") != std::string::npos);
    check_stopped(server);
  }
  const auto unset = run_chapter(
      "ch07", fmt::format("serve --checkpoint \"{}\" --port 0 serve.api_key_env=LLMFS_NO_SUCH_KEY "
                          "train.output_dir=\"{}\"",
                          fixture_model().string(), (dir / "run").string()));
  INFO(unset.out);
  CHECK(unset.exit_code == 2);
  CHECK(unset.out.find("serve.api_key_env: the environment variable LLMFS_NO_SUCH_KEY is not set") !=
        std::string::npos);
}

TEST_CASE("ch07 serve survives bad and heavy traffic", "[chapter][ch07][serve]") {
  const auto dir = fresh_dir("serve", "traffic");
  ServeProcess server(dir, "serve.parallel=2 serve.queue_size=4");
  // Under AddressSanitizer (scripts/test.sh --sanitize) freed memory waits in its quarantine,
  // 256 MiB by default, before the server can reuse it: the memory check allows that much more.
#if defined(__SANITIZE_ADDRESS__)
  constexpr int kAllocatorSlackMib = 256;
#else
  constexpr int kAllocatorSlackMib = 0;
#endif
  const auto traffic = shell(python_script(
      "traffic_check.py", fmt::format("--url {} --out \"{}\" --allocator-slack-mib {}",
                                      server.url(), dir.string(), kAllocatorSlackMib)));
  INFO(traffic.out);
  CHECK(traffic.exit_code == 0);
  CHECK(traffic.out.find("FAIL") == std::string::npos);
  check_stopped(server);
  const auto log = server.log();
  CHECK(log.find(" 400 ") != std::string::npos);
  CHECK(log.find(" 503 ") != std::string::npos);
  CHECK(log.find("(client gone)") != std::string::npos);
}

TEST_CASE("The chat page streams a reply in headless Chromium", "[chapter][ch07][serve]") {
  const auto dir = fresh_dir("serve", "browser");
  ServeProcess server(dir, "chat.format=alpaca");
  const auto page = shell(python_script(
      "browser_check.py", fmt::format("--url {} --out \"{}\"", server.url(), dir.string())));
  INFO(page.out);
  CHECK(page.exit_code == 0);
  CHECK(fs::exists(dir / "chat.png"));
  check_stopped(server);
}

TEST_CASE("ch07 chat answers through a pipe, one line per message", "[chapter][ch07][chat]") {
  const auto dir = fresh_dir("chat", "pipe");
  const auto input = dir / "input.txt";
  llmfs::write_file_atomic(input,
                           "Hello there\n/set max_tokens 12\n안녕하세요, 반갑습니다\n/show\n"
                           "/reset\n/set seed 123\nHello there\n/set temperature oops\n/quit\n"
                           "never read\n");
  const auto r = run_chapter(
      "ch07", fmt::format("chat --checkpoint \"{}\" --max-new-tokens 12 --seed 123 "
                          "chat.format=alpaca train.output_dir=\"{}\" < \"{}\"",
                          fixture_model().string(), (dir / "run").string(), input.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(llmfs::find_invalid_utf8(r.out) == std::string::npos);
  // Answers and bracketed notes, one a line: the same seed after /reset, the same answer.
  std::vector<std::string> lines;
  for (size_t pos = 0, end; pos < r.out.size(); pos = end + 1) {
    end = r.out.find('\n', pos);
    if (end == std::string::npos) end = r.out.size();
    const auto line = r.out.substr(pos, end - pos);
    if (line.find("[info]") == std::string::npos && line.find("[warn") == std::string::npos) {
      lines.push_back(line);
    }
  }
  REQUIRE(lines.size() >= 8);
  const auto note = [](const std::string& s) { return !s.empty() && s[0] == '['; };
  std::vector<std::string> answers;
  for (const auto& l : lines) {
    if (!note(l)) answers.push_back(l);
  }
  REQUIRE(answers.size() == 3);
  CHECK(answers[0] == answers[2]);
  CHECK(r.out.find("[max_tokens = 12]") != std::string::npos);
  CHECK(r.out.find("[conversation reset]") != std::string::npos);
  CHECK(r.out.find("[/set temperature: 'oops' is not a valid value]") != std::string::npos);
  CHECK(r.out.find("never read") == std::string::npos);
}

TEST_CASE("ch07 chat runs in a terminal (tmux)", "[chapter][ch07][chat]") {
  if (shell("command -v tmux").exit_code != 0) FAIL("tmux is not installed (scripts/setup.sh installs it)");
  const auto dir = fresh_dir("chat", "tty");
  const auto socket = fmt::format("llmfs_test_{}", ::getpid());
  const auto tmux = [&](const std::string& args) {
    return shell(fmt::format("LANG=C.UTF-8 LC_ALL=C.UTF-8 tmux -u -L {} {}", socket, args));
  };
  const auto command = fmt::format(
      "cd '{}' && OMP_NUM_THREADS=1 '{}/ch07' chat --checkpoint '{}' --max-new-tokens 8 "
      "chat.format=alpaca train.output_dir='{}'; echo EXITED=$?; sleep 60",
      llmfs::test::kSourceDir, llmfs::test::kBinDir, fixture_model().string(),
      (dir / "run").string());
  REQUIRE(tmux(fmt::format("new-session -d -x 160 -y 50 \"{}\"", command)).exit_code == 0);
  const auto screen = [&] { return tmux("capture-pane -p -J -S -200").out; };
  const auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
    return n;
  };
  // Waits until the screen shows `n` prompts (or the text), up to 60 s.
  const auto wait_for = [&](const std::string& what, size_t n) {
    for (int i = 0; i < 600; ++i) {
      if (count(screen(), what) >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  CHECK(wait_for(">>> ", 1));
  CHECK(screen().find("Chatting with") != std::string::npos);
  tmux("send-keys -l 'Hello there'");
  tmux("send-keys Enter");
  CHECK(wait_for(">>> ", 2));
  tmux("send-keys -l '한국어로 대답해 주세요'");
  tmux("send-keys Enter");
  CHECK(wait_for(">>> ", 3));
  tmux("send-keys -l '/reset'");
  tmux("send-keys Enter");
  CHECK(wait_for("conversation reset", 1));
  tmux("send-keys -l '/quit'");
  tmux("send-keys Enter");
  CHECK(wait_for("EXITED=0", 1));
  const auto text = screen();
  INFO(text);
  CHECK(text.find(">>> 한국어로 대답해 주세요") != std::string::npos);
  CHECK(llmfs::find_invalid_utf8(text) == std::string::npos);
  llmfs::write_file_atomic(dir / "screen.txt", text);
  tmux("kill-server");
}
