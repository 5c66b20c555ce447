// LLM-as-judge (book §7.8): Ollama's /api/chat or an OpenAI-compatible chat endpoint.
#include "llmfs/eval/judge.h"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "llmfs/core/error.h"
#include "llmfs/core/http.h"
#include "llmfs/core/utf8.h"

namespace llmfs {

namespace {

// A reply fragment fit for a one-line error: valid UTF-8, no line breaks, at most 80 characters.
std::string snippet(const std::string& text) {
  std::string s = utf8_replace_invalid(text);
  for (auto& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (utf8_length(s) > 80) return std::string(utf8_slice(s, 0, 80)) + "...";
  return s;
}

}  // namespace

std::string JudgeConfig::endpoint() const {
  if (!url.empty()) return url;
  return api == "openai" ? "https://api.openai.com/v1/chat/completions"
                         : "http://localhost:11434/api/chat";
}

JudgeConfig parse_judge_config(ConfigNode node, const JudgeConfig& defaults) {
  JudgeConfig c = defaults;
  node.read<std::string>("api", c.api, one_of({"ollama", "openai"}));
  node.read<std::string>("url", c.url, [](const std::string& u) -> std::optional<std::string> {
    if (u.empty() || u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0) return {};
    return fmt::format("'{}' is not an http:// or https:// URL", u);
  });
  node.read("model", c.model);
  node.read("seed", c.seed);
  node.read("temperature", c.temperature, at_least(0.0));
  node.read("num_ctx", c.num_ctx, at_least(int64_t{1}));
  node.read("api_key_env", c.api_key_env);
  node.read("retries", c.retries, at_least(int64_t{0}));
  node.read("backoff_s", c.backoff_s, at_least(0.0));
  node.read("timeout_s", c.timeout_s, greater_than(0.0));
  return c;
}

std::string judge_prompt(const std::string& formatted_input, const std::string& output,
                         const std::string& model_response) {
  return fmt::format(
      "Given the input `{}` and correct output `{}`, score the model response `{}` on a scale "
      "from 0 to 100, where 100 is the best score. Respond with the integer number only.",
      formatted_input, output, model_response);
}

std::optional<int64_t> parse_score(const std::string& reply) {
  const auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  size_t begin = 0, end = reply.size();
  while (begin < end && space(reply[begin])) ++begin;
  while (end > begin && space(reply[end - 1])) --end;
  if (begin == end) return std::nullopt;
  bool negative = false;
  if (reply[begin] == '+' || reply[begin] == '-') negative = reply[begin++] == '-';
  int64_t value = 0;
  bool digit_before = false;
  for (size_t i = begin; i < end; ++i) {
    const char c = reply[i];
    if (c == '_' && digit_before && i + 1 < end && reply[i + 1] >= '0' && reply[i + 1] <= '9') {
      digit_before = false;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    if (value > (INT64_MAX - 9) / 10) return std::nullopt;  // no judge means that
    value = value * 10 + (c - '0');
    digit_before = true;
  }
  if (!digit_before) return std::nullopt;
  return negative ? -value : value;
}

Judge::Judge(JudgeConfig config) : config_(std::move(config)) {
  split_url(config_.endpoint());  // a malformed URL fails here, before any work
  if (config_.api == "openai" && !config_.api_key_env.empty()) {
    if (const char* key = std::getenv(config_.api_key_env.c_str())) api_key_ = key;
  }
}

std::string Judge::ask(const std::string& prompt) const {
  const std::string url = config_.endpoint();
  const UrlParts parts = split_url(url);
  nlohmann::json body;
  body["model"] = config_.model;
  body["messages"] = nlohmann::json::array({{{"role", "user"}, {"content", prompt}}});
  if (config_.api == "ollama") {
    // As the book's query_model: no "stream" key, so Ollama streams JSON lines.
    body["options"] = {{"seed", config_.seed},
                       {"temperature", config_.temperature},
                       {"num_ctx", config_.num_ctx}};
  } else {
    body["seed"] = config_.seed;
    body["temperature"] = config_.temperature;
  }
  httplib::Client client(parts.scheme_host_port);
  client.set_connection_timeout(10);
  const auto timeout = std::chrono::duration<double>(config_.timeout_s);
  client.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  client.set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  httplib::Headers headers;
  if (!api_key_.empty()) headers.emplace("Authorization", "Bearer " + api_key_);

  httplib::Result result{nullptr, httplib::Error::Unknown};
  for (int64_t attempt = 0;; ++attempt) {
    result = client.Post(parts.path, headers, body.dump(), "application/json");
    if (result) break;
    const auto error = httplib::to_string(result.error());
    if (attempt >= config_.retries) {
      fail("judge {}: no answer after {} attempt(s): {} (is the server running?{})", url,
           attempt + 1, error,
           config_.api == "ollama"
               ? fmt::format(" start it with `ollama serve` and `ollama pull {}`", config_.model)
               : "");
    }
    const double wait = config_.backoff_s * std::pow(2.0, static_cast<double>(attempt));
    spdlog::warn("judge {}: {}; retrying in {:.1f} s", url, error, wait);
    std::this_thread::sleep_for(std::chrono::duration<double>(wait));
  }
  if (result->status != 200) {
    fail("judge {}: HTTP status {}: {}", url, result->status, snippet(result->body));
  }

  const auto garbage = [&](const std::string& what) {
    fail("judge {}: the reply is not {} JSON ({}): {}", url,
         config_.api == "ollama" ? "Ollama /api/chat" : "OpenAI chat completions", what,
         snippet(result->body));
  };
  const auto parse = [&](const std::string& text, size_t line) {
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) garbage(line > 0 ? fmt::format("line {}", line) : "malformed");
    if (j.is_object() && j.contains("error")) {
      const auto& e = j["error"];
      fail("judge {}: the server says: {}", url,
           snippet(e.is_string() ? e.get<std::string>()
                                 : (e.is_object() && e.contains("message") && e["message"].is_string()
                                        ? e["message"].get<std::string>()
                                        : e.dump())));
    }
    return j;
  };
  if (config_.api == "openai") {
    const auto j = parse(result->body, 0);
    const auto* content = j.is_object() && j.contains("choices") && j["choices"].is_array() &&
                                  !j["choices"].empty() && j["choices"][0].is_object() &&
                                  j["choices"][0].contains("message") &&
                                  j["choices"][0]["message"].is_object() &&
                                  j["choices"][0]["message"].contains("content") &&
                                  j["choices"][0]["message"]["content"].is_string()
                              ? &j["choices"][0]["message"]["content"]
                              : nullptr;
    if (content == nullptr) garbage("no choices[0].message.content");
    return content->get<std::string>();
  }
  // Ollama: one JSON object per line (streamed) or one object; the contents concatenated.
  std::string reply;
  size_t line_number = 0, start = 0, objects = 0;
  const std::string& text = result->body;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_number;
    const auto line = text.substr(start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto j = parse(line, line_number);
    if (!j.is_object() || !j.contains("message") || !j["message"].is_object() ||
        !j["message"].contains("content") || !j["message"]["content"].is_string()) {
      garbage(fmt::format("line {} has no message.content", line_number));
    }
    reply += j["message"]["content"].get<std::string>();
    ++objects;
  }
  if (objects == 0) garbage("empty");
  return reply;
}

JudgeScores judge_responses(
    const Judge& judge, const std::vector<JudgeItem>& items,
    const std::function<void(size_t, const std::string&, const std::optional<int64_t>&)>&
        on_item) {
  JudgeScores out;
  double sum = 0.0;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    auto reply = judge.ask(judge_prompt(item.formatted_input, item.output, item.model_response));
    const auto score = parse_score(reply);
    if (score) {
      ++out.parsed;
      sum += static_cast<double>(*score);
    } else {
      ++out.unparseable;
    }
    if (on_item) on_item(i, reply, score);
    out.scores.push_back(score);
    out.replies.push_back(std::move(reply));
  }
  if (out.parsed > 0) out.average = sum / static_cast<double>(out.parsed);
  return out;
}

}  // namespace llmfs
