// ch07 serve: Ollama's and OpenAI's HTTP APIs and a chat page over one model (cpp-httplib).
//
// Handler threads parse and check a request, render its prompt and hand a job to the scheduler,
// whose one thread owns the model: jobs are generated one at a time, each streaming its pieces
// back to the handler that writes them in the API's framing (NDJSON or server-sent events). A
// handler that cannot write (the client went away) cancels its job, which ends the generation
// at the next token.
#include "llmfs/chat/server.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <httplib.h>
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "llmfs/chat/chat_page.h"
#include "llmfs/chat/serve_gate.h"
#include "llmfs/chat/serve_request.h"
#include "llmfs/core/build_info.h"
#include "llmfs/model/parameter_count.h"
#include "llmfs/train/interrupt.h"

namespace llmfs {

namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// --- Errors ----------------------------------------------------------------------------------

enum class Api { kOllama, kOpenAI };

Api api_of(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 ? Api::kOpenAI : Api::kOllama;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json error_json(Api api, int status, const std::string& message) {
  if (api == Api::kOpenAI) {
    return {{"error",
             {{"message", message},
              {"type", status >= 500 ? "server_error" : "invalid_request_error"},
              {"param", nullptr},
              {"code", nullptr}}}};
  }
  return {{"error", message}};
}

void send_error(httplib::Response& res, Api api, int status, const std::string& message) {
  res.status = status;
  if (status == 503) res.set_header("Retry-After", "1");
  res.set_content(dump(error_json(api, status, message)), "application/json");
}

std::string status_message(int status) {
  switch (status) {
    case 400: return "bad request";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 413: return "the request body is too large";
    case 414: return "the request URI is too long";
    default: return fmt::format("HTTP status {}", status);
  }
}

// --- Scheduling ------------------------------------------------------------------------------

// One generation: filled by a handler, run by the scheduler, read back by the handler.
struct Job {
  CompletionRequest request;
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::string> pieces;  // generated, not yet written
  bool done = false;
  CompletionResult result;
  std::string error;  // generation failed (or the server is stopping)
  std::atomic<bool> cancelled{false};
};

struct Stats {
  std::atomic<int64_t> requests{0}, active{0}, completed{0}, cancelled{0}, rejected{0},
      tokens{0}, refused{0};
};

std::optional<std::string> header_of(const httplib::Request& req, const char* name) {
  if (!req.has_header(name)) return std::nullopt;
  return req.get_header_value(name);
}

GateRequest gate_request(const httplib::Request& req) {
  return {.method = req.method,
          .path = req.path,
          .host = header_of(req, "Host"),
          .origin = header_of(req, "Origin"),
          .content_type = header_of(req, "Content-Type"),
          .authorization = header_of(req, "Authorization"),
          .sec_fetch_site = header_of(req, "Sec-Fetch-Site")};
}

int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

// Runs the jobs on its own thread, the only one that touches the model: up to
// engine.sequences() at once, one batched step per token, jobs that arrive meanwhile joining
// at the next step; the others wait in a bounded queue.
class Scheduler {
 public:
  Scheduler(ChatEngine& engine, size_t capacity, Stats& stats)
      : engine_(engine), capacity_(capacity), stats_(stats), thread_([this] { run(); }) {}
  ~Scheduler() { stop(); }

  // false: the queue is full (or the server is stopping).
  bool submit(const std::shared_ptr<Job>& job) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_ || queue_.size() >= capacity_) {
        ++stats_.rejected;
        return false;
      }
      queue_.push_back(job);
    }
    wake_.notify_one();
    return true;
  }

  int64_t queued() const {
    std::lock_guard lock(mutex_);
    return static_cast<int64_t>(queue_.size());
  }

  // Ends the generations in progress, fails the queued jobs, joins.
  void stop() {
    std::deque<std::shared_ptr<Job>> left;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      left.swap(queue_);
    }
    wake_.notify_all();
    for (const auto& job : left) finish(*job, {}, "the server is shutting down");
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Running {
    std::shared_ptr<Job> job;
    std::unique_ptr<Generation> generation;
  };

  static void finish(Job& job, CompletionResult result, std::string error) {
    {
      std::lock_guard lock(job.mutex);
      job.result = std::move(result);
      job.error = std::move(error);
      job.done = true;
    }
    job.changed.notify_all();
  }

  void run() {
    std::vector<Running> running;
    for (;;) {
      std::vector<std::shared_ptr<Job>> admitted;
      {
        std::unique_lock lock(mutex_);
        if (running.empty()) wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) break;
        while (!queue_.empty() &&
               static_cast<int64_t>(running.size() + admitted.size()) < engine_.sequences()) {
          admitted.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      for (auto& job : admitted) begin(std::move(job), running);
      advance(running);
      if (running.empty() && queued() == 0) {  // idle: give memory back
        engine_.release_idle_memory();
        malloc_trim(0);
      }
    }
    for (auto& r : running) {
      --stats_.active;
      ++stats_.cancelled;
      finish(*r.job, r.generation->result(), "the server is shutting down");
    }
  }

  void begin(std::shared_ptr<Job> job, std::vector<Running>& running) {
    if (job->cancelled) {
      ++stats_.cancelled;
      finish(*job, {}, "cancelled");
      return;
    }
    Job* raw = job.get();
    const auto sink = [this, raw](std::string_view piece) {
      {
        std::lock_guard lock(raw->mutex);
        raw->pieces.emplace_back(piece);
      }
      raw->changed.notify_all();
      return !raw->cancelled && !stopping_;
    };
    ++stats_.active;
    try {
      Running r{std::move(job), engine_.start(raw->request, sink)};
      if (r.generation->finished()) done(r);
      else running.push_back(std::move(r));
    } catch (const std::exception& e) {
      --stats_.active;
      ++stats_.completed;
      finish(*raw, {}, e.what());
    }
  }

  void advance(std::vector<Running>& running) {
    if (running.empty()) return;
    std::vector<Generation*> generations;
    for (auto& r : running) {
      if (r.job->cancelled) r.generation->cancel();
      generations.push_back(r.generation.get());
    }
    try {
      engine_.step(generations);
    } catch (const std::exception& e) {  // every generation of the batch fails
      for (auto& r : running) {
        --stats_.active;
        ++stats_.completed;
        finish(*r.job, r.generation->result(), e.what());
      }
      running.clear();
      return;
    }
    std::erase_if(running, [&](Running& r) {
      if (!r.generation->finished()) return false;
      done(r);
      return true;
    });
  }

  void done(Running& r) {
    const auto& result = r.generation->result();
    stats_.tokens += result.new_tokens;
    if (result.finish_reason == "cancelled") ++stats_.cancelled;
    else ++stats_.completed;
    --stats_.active;
    finish(*r.job, result, "");
  }

  ChatEngine& engine_;
  size_t capacity_;
  Stats& stats_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// --- Replies ---------------------------------------------------------------------------------

std::string iso_time() {
  const auto now = std::chrono::system_clock::now();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch());
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:09}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(now)),
                     ns.count() % 1000000000);
}

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t nanoseconds(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

std::string done_reason(const CompletionResult& r) {
  return r.finish_reason == "length" ? "length" : "stop";
}

// How one API frames a reply: the whole answer, or a stream of pieces.
struct Reply {
  std::string content_type;                                  // of the stream
  std::function<std::string()> begin;                        // stream: before the first piece
  std::function<std::string(std::string_view)> piece;        // stream: one piece
  std::function<std::string(const CompletionResult&)> end;   // stream: after the last piece
  std::function<json(const CompletionResult&)> whole;        // not streamed
  std::function<std::string(const std::string&)> error;     // stream: a failure after the start
};

json ollama_counts(json j, const CompletionResult& r, Clock::time_point received) {
  j["done"] = true;
  j["done_reason"] = done_reason(r);
  j["total_duration"] = nanoseconds(std::chrono::duration<double>(Clock::now() - received).count());
  j["load_duration"] = 0;
  j["prompt_eval_count"] = r.prompt_tokens;
  j["prompt_eval_duration"] = nanoseconds(r.prompt_seconds);
  j["eval_count"] = r.new_tokens;
  j["eval_duration"] = nanoseconds(r.generate_seconds);
  return j;
}

Reply ollama_reply(const std::string& model, bool chat) {
  const auto received = Clock::now();
  const auto line = [model, chat](std::string_view text) {
    json j = {{"model", model}, {"created_at", iso_time()}};
    if (chat) j["message"] = {{"role", "assistant"}, {"content", text}};
    else j["response"] = text;
    return j;
  };
  Reply r;
  r.content_type = "application/x-ndjson";
  r.begin = [] { return std::string(); };
  r.piece = [line](std::string_view text) {
    json j = line(text);
    j["done"] = false;
    return dump(j) + "\n";
  };
  r.end = [line, received](const CompletionResult& result) {
    return dump(ollama_counts(line(""), result, received)) + "\n";
  };
  r.whole = [line, received](const CompletionResult& result) {
    return ollama_counts(line(result.text), result, received);
  };
  r.error = [](const std::string& message) { return dump(json{{"error", message}}) + "\n"; };
  return r;
}

json usage(const CompletionResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.new_tokens},
          {"total_tokens", r.prompt_tokens + r.new_tokens}};
}

std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

Reply openai_reply(const std::string& model, bool chat, bool include_usage) {
  static std::atomic<uint64_t> counter{0};
  const std::string id = fmt::format("{}-{:x}{:06x}", chat ? "chatcmpl" : "cmpl", unix_time(),
                                     counter++);
  const int64_t created = unix_time();
  const std::string object = chat ? "chat.completion" : "text_completion";
  const auto chunk = [=](json choice) {
    return json{{"id", id},
                {"object", chat ? "chat.completion.chunk" : "text_completion"},
                {"created", created},
                {"model", model},
                {"choices", json::array({std::move(choice)})}};
  };
  const auto choice = [chat](json text, json finish) {
    json c = {{"index", 0}};
    if (chat) c["delta"] = std::move(text);
    else c["text"] = std::move(text), c["logprobs"] = nullptr;
    c["finish_reason"] = std::move(finish);
    return c;
  };
  Reply r;
  r.content_type = "text/event-stream";
  r.begin = [=] {
    return chat ? sse(chunk(choice({{"role", "assistant"}, {"content", ""}}, nullptr)))
                : std::string();
  };
  r.piece = [=](std::string_view text) {
    return sse(chunk(chat ? choice({{"content", text}}, nullptr) : choice(text, nullptr)));
  };
  r.end = [=](const CompletionResult& result) {
    std::string out =
        sse(chunk(chat ? choice(json::object(), done_reason(result)) : choice("", done_reason(result))));
    if (include_usage) {
      json u = chunk(json());
      u["choices"] = json::array();
      u["usage"] = usage(result);
      out += sse(u);
    }
    return out + "data: [DONE]\n\n";
  };
  r.whole = [=](const CompletionResult& result) {
    json c = {{"index", 0}};
    if (chat) c["message"] = {{"role", "assistant"}, {"content", result.text}};
    else c["text"] = result.text, c["logprobs"] = nullptr;
    c["finish_reason"] = done_reason(result);
    return json{{"id", id},         {"object", object},        {"created", created},
                {"model", model},   {"choices", json::array({c})}, {"usage", usage(result)}};
  };
  r.error = [](const std::string& message) {
    return sse(error_json(Api::kOpenAI, 500, message)) + "data: [DONE]\n\n";
  };
  return r;
}

// Per connection thread: what the request log line reports.
struct RequestLog {
  Clock::time_point start;
  int64_t tokens = -1;
  std::string finish;
  GateDecision gate;  // the request gate's answer (a POST's refusal waits for its body)
};
thread_local RequestLog request_log;

// --- The server ------------------------------------------------------------------------------

// cpp-httplib listens with a backlog of 5 connections (CPPHTTPLIB_LISTEN_BACKLOG, fixed when
// Debian built the library). A burst of clients while both cores are busy overflows it: the
// kernel drops the connections that do not fit (TcpExtListenOverflows), and their clients see
// a reset instead of an answer (measured: 70 of 200 clients with the suite's load). listen() on
// the listening socket again sets the kernel's maximum (net.core.somaxconn); returns it, or -1
// when the socket was not found.
int raise_listen_backlog(int port) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = -1;
    try {
      fd = std::stoi(entry.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    int listening = 0;
    socklen_t size = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || !listening) continue;
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) continue;
    int bound = -1;
    if (address.ss_family == AF_INET) {
      bound = ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
    } else if (address.ss_family == AF_INET6) {
      bound = ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
    }
    if (bound == port && ::listen(fd, SOMAXCONN) == 0) return SOMAXCONN;
  }
  return -1;
}

std::string parameter_size(int64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.1f}B", n / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.1f}M", n / 1e6);
  return fmt::format("{:.1f}K", n / 1e3);
}

class Server {
 public:
  Server(ChatEngine& engine, const GenerationConfig& defaults, const ServeConfig& config,
         const ServeCallbacks& callbacks)
      : engine_(engine),
        defaults_(defaults),
        request_defaults_{defaults.max_new_tokens, defaults.sampling()},
        config_(config),
        callbacks_(callbacks),
        scheduler_(engine, static_cast<size_t>(config.queue_size), stats_),
        gate_(config.access, config.host,
              config.host == "0.0.0.0" || config.host == "::" ? machine_names()
                                                              : std::vector<std::string>{}),
        parameters_(count_parameters(*engine.model().model)),
        started_(iso_time()) {
    routes();
  }

  void run() {
    int port = static_cast<int>(config_.port);
    if (port == 0) {
      port = http_.bind_to_any_port(config_.host);
    } else if (!http_.bind_to_port(config_.host, port)) {
      port = -1;
    }
    if (port <= 0) {
      fail("cannot listen on {}:{} (address in use, or not an address of this machine)",
           config_.host, config_.port);
    }
    if (raise_listen_backlog(port) < 0) {
      spdlog::warn("could not raise the listen backlog: bursts of clients may be reset");
    }
    if (!gate_.loopback_only() && !gate_.requires_key()) {
      spdlog::warn("serving on {} without an API key: anyone who can reach this machine can use "
                   "the model (set serve.api_key or serve.api_key_env)",
                   config_.host);
    }
    if (callbacks_.on_listening) callbacks_.on_listening(fmt::format("http://{}:{}", config_.host, port));
    InterruptGuard interrupt;
    std::atomic<bool> listening{true};
    std::thread watcher([&] {
      while (listening) {
        if (interrupt.requested()) {
          spdlog::info("{}: stopping (requests in progress end now)", interrupt.signal_name());
          scheduler_.stop();
          http_.stop();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    http_.listen_after_bind();
    listening = false;
    watcher.join();
    scheduler_.stop();
  }

 private:
  void routes() {
    const auto threads = static_cast<size_t>(config_.threads);
    http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http_.set_payload_max_length(static_cast<size_t>(config_.max_body_bytes));
    const auto seconds = static_cast<time_t>(config_.timeout_s);
    http_.set_read_timeout(seconds, 0);
    http_.set_write_timeout(seconds, 0);
    // The gate (serve_gate.h) first. A refused POST is answered once its body is read (post()):
    // closing a connection with the body unread would reset it before the client reads why.
    http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      request_log = {Clock::now(), -1, {}, gate_.check(gate_request(req))};
      const auto& gate = request_log.gate;
      for (const auto& [name, value] : gate.headers) res.set_header(name, value);
      if (gate.status == 0 || req.method == "POST") return httplib::Server::HandlerResponse::Unhandled;
      if (gate.status == 204) {
        res.status = 204;
      } else {
        ++stats_.refused;
        send_error(res, api_of(req.path), gate.status, gate.message);
      }
      return httplib::Server::HandlerResponse::Handled;
    });
    http_.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      const std::string what = res.status == 404
                                   ? fmt::format("no route {} {}", req.method, req.path)
                                   : status_message(res.status);
      res.set_content(dump(error_json(api_of(req.path), res.status, what)), "application/json");
    });
    http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const double ms =
          std::chrono::duration<double, std::milli>(Clock::now() - request_log.start).count();
      std::string line = fmt::format("{} {} {} {:.1f} ms", req.method, req.path, res.status, ms);
      if (request_log.tokens >= 0) line += fmt::format(" {} tokens", request_log.tokens);
      if (!request_log.finish.empty()) line += " (" + request_log.finish + ")";
      if (callbacks_.on_request) callbacks_.on_request(line);
    });

    http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
      const auto page = chat_page_html();
      res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
    });
    http_.Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(dump(json{{"version", std::string(kVersion)}}), "application/json");
    });
    http_.Get("/api/tags", [this](const httplib::Request&, httplib::Response& res) {
      json model = {{"name", config_.model_name}, {"model", config_.model_name},
                    {"modified_at", started_},    {"size", parameters_ * 4},
                    {"digest", digest()},         {"details", details()}};
      res.set_content(dump(json{{"models", json::array({model})}}), "application/json");
    });
    http_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      json model = {{"id", config_.model_name},
                    {"object", "model"},
                    {"created", unix_time()},
                    {"owned_by", "llmfs"}};
      res.set_content(dump(json{{"object", "list"}, {"data", json::array({model})}}),
                      "application/json");
    });
    http_.Get("/llmfs/stats", [this](const httplib::Request&, httplib::Response& res) {
      json j = {{"requests", stats_.requests.load()},   {"active", stats_.active.load()},
                {"queued", scheduler_.queued()},        {"completed", stats_.completed.load()},
                {"cancelled", stats_.cancelled.load()}, {"rejected", stats_.rejected.load()},
                {"tokens", stats_.tokens.load()},       {"refused", stats_.refused.load()},
                {"rss_bytes", rss_bytes()}};
      res.set_content(dump(j), "application/json");
    });
    const auto handle = [this](const ServeRequest& r, httplib::Response& res) { answer(r, res); };
    post("/api/show", ServeRoute::kOllamaShow,
         [this](const ServeRequest&, httplib::Response& res) { show(res); });
    post("/api/generate", ServeRoute::kOllamaGenerate, handle);
    post("/api/chat", ServeRoute::kOllamaChat, handle);
    post("/v1/chat/completions", ServeRoute::kOpenAIChat, handle);
    post("/v1/completions", ServeRoute::kOpenAICompletion, handle);
  }

  // A POST route taking a JSON body (parse_serve_request); errors become the API's JSON error.
  void post(const std::string& path, ServeRoute route,
            std::function<void(const ServeRequest&, httplib::Response&)> handle) {
    http_.Post(path, [this, path, route, handle = std::move(handle)](const httplib::Request& req,
                                                                    httplib::Response& res) {
      const Api api = api_of(path);
      if (request_log.gate.status != 0) {  // refused at the gate: nothing is parsed or queued
        ++stats_.refused;
        send_error(res, api, request_log.gate.status, request_log.gate.message);
        return;
      }
      try {
        handle(parse_serve_request(route, req.body, request_defaults_), res);
      } catch (const HttpError& e) {
        send_error(res, api, e.status, e.message);
      } catch (const ContextOverflow& e) {
        send_error(res, api, 422, e.what());
      } catch (const Error& e) {  // invalid UTF-8, a bad value the library refused
        send_error(res, api, 400, e.what());
      } catch (const std::exception& e) {
        send_error(res, api, 500, e.what());
      }
    });
  }

  std::string digest() const {
    return fmt::format("{:016x}", std::hash<std::string>{}(engine_.model().source));
  }

  json details() const {
    return {{"format", "llmfs"},
            {"family", "gpt2"},
            {"families", json::array({"gpt2"})},
            {"parameter_size", parameter_size(parameters_)},
            {"quantization_level", "F32"}};
  }

  void show(httplib::Response& res) {
    const auto& cfg = engine_.model().model->config();
    const auto markers = turn_markers(engine_.format());
    std::string parameters = fmt::format("num_predict {}\ntemperature {}", defaults_.max_new_tokens,
                                         defaults_.temperature);
    for (const auto& m : markers) parameters += fmt::format("\nstop \"{}\"", m);
    const std::vector<ChatMessage> example = {{"user", "{{ .Prompt }}"}};
    const std::string tmpl = render_chat(example, engine_.format(), engine_.system());
    json info = {{"general.architecture", "gpt2"},
                 {"general.parameter_count", parameters_},
                 {"gpt2.context_length", cfg.context_length},
                 {"gpt2.embedding_length", cfg.emb_dim},
                 {"gpt2.block_count", cfg.n_layers},
                 {"gpt2.attention.head_count", cfg.n_heads},
                 {"gpt2.vocab_size", cfg.vocab_size},
                 {"llmfs.chat_format", std::string(chat_format_name(engine_.format()))},
                 {"llmfs.source", engine_.model().source}};
    json j = {{"modelfile", fmt::format("# llmfs\nFROM {}\nTEMPLATE \"\"\"{}\"\"\"\n",
                                        engine_.model().source, tmpl)},
              {"parameters", parameters},
              {"template", tmpl},
              {"details", details()},
              {"model_info", info},
              {"capabilities", json::array({"completion"})},
              {"modified_at", started_}};
    res.set_content(dump(j), "application/json");
  }

  // The answer length a request may have: its own, at most serve.max_new_tokens.
  int64_t capped(int64_t max_new_tokens) const {
    return std::min(max_new_tokens, config_.max_new_tokens);
  }

  // Turns a parsed request into tokens and answers it in its API's shape.
  void answer(const ServeRequest& r, httplib::Response& res) {
    const std::string model = r.model.value_or(config_.model_name);
    CompletionRequest request;
    Reply reply;
    Api api = Api::kOllama;
    switch (r.route) {
      case ServeRoute::kOllamaGenerate:
        if (r.prompt.empty()) {  // Ollama: an empty prompt only loads the model
          json j = {{"model", model}, {"created_at", iso_time()}, {"response", ""},
                    {"done", true},   {"done_reason", "load"}};
          res.set_content(dump(j), "application/json");
          return;
        }
        if (r.raw) {
          request.prompt_ids = engine_.encode(r.prompt);
          engine_.check_fits(request.prompt_ids);
        } else if (r.system) {
          const std::vector<ChatMessage> messages = {{"system", *r.system}, {"user", r.prompt}};
          request = chat_request(messages, r.max_new_tokens);
        } else {
          request = engine_.book_request(r.prompt);
        }
        reply = ollama_reply(model, false);
        break;
      case ServeRoute::kOllamaChat:
        request = chat_request(r.messages, r.max_new_tokens);
        reply = ollama_reply(model, true);
        break;
      case ServeRoute::kOpenAIChat:
        request = chat_request(r.messages, r.max_new_tokens);
        reply = openai_reply(model, true, r.include_usage);
        api = Api::kOpenAI;
        break;
      case ServeRoute::kOpenAICompletion:
        request.prompt_ids = engine_.encode(r.prompt);
        engine_.check_fits(request.prompt_ids);
        reply = openai_reply(model, false, r.include_usage);
        api = Api::kOpenAI;
        break;
      case ServeRoute::kOllamaShow:
        return;
    }
    request.max_new_tokens = capped(r.max_new_tokens);
    request.sampling = r.sampling;
    request.seed = r.seed;
    request.stop_at_eos = true;
    request.stop.insert(request.stop.end(), r.stop.begin(), r.stop.end());
    answer(std::move(request), std::move(reply), r.stream, api, res);
  }

  CompletionRequest chat_request(const std::vector<ChatMessage>& messages, int64_t max_new) const {
    const auto prompt = engine_.chat_prompt(messages, capped(max_new));
    CompletionRequest request;
    request.prompt_ids = prompt.ids;
    request.stop = turn_markers(engine_.format());
    request.strip = true;
    return request;
  }

  // Queues the request and writes its answer, whole or streamed.
  void answer(CompletionRequest request, Reply reply, bool stream, Api api,
              httplib::Response& res) {
    ++stats_.requests;
    auto job = std::make_shared<Job>();
    job->request = std::move(request);
    if (!scheduler_.submit(job)) {
      send_error(res, api, 503,
                 fmt::format("the server is busy ({} requests waiting); retry later",
                             config_.queue_size));
      return;
    }
    if (!stream) {
      std::unique_lock lock(job->mutex);
      job->changed.wait(lock, [&] { return job->done; });
      if (!job->error.empty()) {
        send_error(res, api, 503, job->error);
        return;
      }
      request_log.tokens = job->result.new_tokens;
      request_log.finish = job->result.finish_reason;
      res.set_content(dump(reply.whole(job->result)), "application/json");
      return;
    }
    auto begun = std::make_shared<bool>(false);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        reply.content_type,
        [job, reply, begun](size_t, httplib::DataSink& sink) {
          const auto write = [&](const std::string& text) {
            if (text.empty() || sink.write(text.data(), text.size())) return true;
            job->cancelled = true;  // the client went away
            request_log.finish = "client gone";
            return false;
          };
          if (!*begun) {
            *begun = true;
            if (!write(reply.begin())) return false;
          }
          std::deque<std::string> pieces;
          bool done = false;
          {
            std::unique_lock lock(job->mutex);
            job->changed.wait_for(lock, std::chrono::milliseconds(100),
                                  [&] { return job->done || !job->pieces.empty(); });
            pieces.swap(job->pieces);
            done = job->done;
          }
          for (const auto& piece : pieces) {
            if (!write(reply.piece(piece))) return false;
          }
          if (done) {
            request_log.tokens = job->result.new_tokens;
            if (request_log.finish.empty()) request_log.finish = job->result.finish_reason;
            if (!write(job->error.empty() ? reply.end(job->result) : reply.error(job->error))) {
              return false;
            }
            sink.done();
          }
          return true;
        },
        [job](bool success) {
          if (!success) job->cancelled = true;
        });
  }

  ChatEngine& engine_;
  GenerationConfig defaults_;
  ServeRequestDefaults request_defaults_;
  ServeConfig config_;
  ServeCallbacks callbacks_;
  Stats stats_;
  Scheduler scheduler_;
  ServeGate gate_;
  httplib::Server http_;
  int64_t parameters_;
  std::string started_;
};

}  // namespace

ServeConfig parse_serve_config(ConfigNode node, const ServeConfig& defaults) {
  ServeConfig c = defaults;
  node.read("host", c.host);
  node.read("port", c.port, in_range(int64_t{0}, int64_t{65535}));
  node.read("model_name", c.model_name);
  node.read("parallel", c.parallel, in_range(int64_t{1}, int64_t{256}));
  node.read("queue_size", c.queue_size, at_least(int64_t{1}));
  node.read("threads", c.threads, at_least(int64_t{2}));
  node.read("max_body_bytes", c.max_body_bytes, at_least(int64_t{1024}));
  node.read("max_new_tokens", c.max_new_tokens, at_least(int64_t{1}));
  node.read("timeout_s", c.timeout_s, greater_than(0.0));
  read_serve_access(node, c.access);
  return c;
}

void serve(ChatEngine& engine, const GenerationConfig& defaults, const ServeConfig& config,
           const ServeCallbacks& callbacks) {
  std::signal(SIGPIPE, SIG_IGN);  // a client gone mid-reply is a failed write, not the end
  engine.set_sequences(config.parallel);  // serve.parallel answers generated together
  Server server(engine, defaults, config, callbacks);
  server.run();
}

}  // namespace llmfs
