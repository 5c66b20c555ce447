#pragma once
// A stand-in for an LLM judge: a loopback HTTP server speaking Ollama's /api/chat (streamed
// JSON lines) and OpenAI's /v1/chat/completions, answering each request with the next canned
// reply. Tests start one on a free port and point a judge at url().

#include <httplib.h>

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace llmfs::test {

class StubJudge {
 public:
  /// A canned answer: a score text, or a raw HTTP body and status (garbage, errors).
  struct Reply {
    std::string content;   // the message content (split over two streamed lines for Ollama)
    int status = 200;
    std::string raw_body;  // non-empty: sent as is instead of the API's JSON
  };

  explicit StubJudge(std::vector<Reply> replies) : replies_(std::move(replies)) {
    server_.Post("/api/chat", [this](const httplib::Request& req, httplib::Response& res) {
      const auto reply = next(req);
      res.status = reply.status;
      if (!reply.raw_body.empty()) return res.set_content(reply.raw_body, "application/json");
      // Streamed as Ollama does: the content in pieces, then a final object with done: true.
      const auto half = reply.content.size() / 2;
      std::string body;
      for (const auto& piece : {reply.content.substr(0, half), reply.content.substr(half)}) {
        body += nlohmann::json{{"model", "stub"},
                               {"message", {{"role", "assistant"}, {"content", piece}}},
                               {"done", false}}
                    .dump() +
                "\n";
      }
      body += nlohmann::json{{"model", "stub"},
                             {"message", {{"role", "assistant"}, {"content", ""}}},
                             {"done", true}}
                  .dump() +
              "\n";
      res.set_content(body, "application/x-ndjson");
    });
    server_.Post("/v1/chat/completions",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   const auto reply = next(req);
                   res.status = reply.status;
                   if (!reply.raw_body.empty()) {
                     return res.set_content(reply.raw_body, "application/json");
                   }
                   nlohmann::json j;
                   j["choices"] = nlohmann::json::array(
                       {{{"index", 0},
                         {"message", {{"role", "assistant"}, {"content", reply.content}}}}});
                   res.set_content(j.dump(), "application/json");
                 });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~StubJudge() {
    server_.stop();
    thread_.join();
  }
  StubJudge(const StubJudge&) = delete;
  StubJudge& operator=(const StubJudge&) = delete;

  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string ollama_url() const { return base() + "/api/chat"; }
  std::string openai_url() const { return base() + "/v1/chat/completions"; }

  /// The JSON bodies and Authorization headers received, in order.
  std::vector<nlohmann::json> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::vector<std::string> authorizations() const {
    std::lock_guard lock(mutex_);
    return authorizations_;
  }

 private:
  Reply next(const httplib::Request& req) {
    std::lock_guard lock(mutex_);
    requests_.push_back(nlohmann::json::parse(req.body, nullptr, false));
    authorizations_.push_back(req.get_header_value("Authorization"));
    if (replies_.empty()) return {"", 500, "{\"error\": \"stub: no replies left\"}"};
    const auto r = replies_[served_ % replies_.size()];
    ++served_;
    return r;
  }

  std::vector<Reply> replies_;
  size_t served_ = 0;
  mutable std::mutex mutex_;
  std::vector<nlohmann::json> requests_;
  std::vector<std::string> authorizations_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace llmfs::test
