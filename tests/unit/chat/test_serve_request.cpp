#include "catch.h"
#include "llmfs/chat/serve_request.h"

namespace {

using llmfs::ServeRoute;

const llmfs::ServeRequestDefaults kDefaults{50, {}};

llmfs::ServeRequest parse(ServeRoute route, std::string_view body) {
  return llmfs::parse_serve_request(route, body, kDefaults);
}

// The status and message of the HttpError a body gets ("" when it reads).
std::string refusal(ServeRoute route, std::string_view body) {
  try {
    parse(route, body);
  } catch (const llmfs::HttpError& e) {
    return std::to_string(e.status) + " " + e.message;
  }
  return "";
}

}  // namespace

TEST_CASE("An Ollama generate request reads its prompt and options", "[chat][serve]") {
  const auto r =
      parse(ServeRoute::kOllamaGenerate,
            R"({"model": "m", "prompt": "운수 좋은 날", "raw": true, "system": "Be brief.",
                           "options": {"seed": 123, "temperature": 0.7, "top_k": 5, "top_p": 0.9,
                                       "num_predict": 20, "num_ctx": 2048, "stop": "###",
                                       "mirostat": 1}})");
  CHECK(r.model == "m");
  CHECK(r.prompt == "운수 좋은 날");
  CHECK(r.raw);
  CHECK(r.system == "Be brief.");
  CHECK(r.stream);  // Ollama streams unless told not to
  CHECK(r.seed == 123);
  CHECK(r.sampling.temperature == 0.7);
  CHECK(r.sampling.top_k == 5);
  CHECK(r.sampling.top_p == 0.9);
  CHECK(r.max_new_tokens == 20);
  CHECK(r.stop == std::vector<std::string>{"###"});
  // Defaults: the run's answer length, greedy, no seed; -1 is "until the context is full".
  const auto d = parse(ServeRoute::kOllamaGenerate, R"({"prompt": "hi"})");
  CHECK(d.max_new_tokens == 50);
  CHECK(d.sampling.temperature == 0.0);
  CHECK_FALSE(d.seed);
  CHECK_FALSE(d.model);
  CHECK(parse(ServeRoute::kOllamaGenerate, R"({"prompt": "", "options": {"num_predict": -1}})")
            .max_new_tokens == llmfs::kUntilContextFull);
}

TEST_CASE("OpenAI requests read their messages, content parts and sampling fields",
          "[chat][serve]") {
  const auto r = parse(ServeRoute::kOpenAIChat,
                       R"({"messages": [{"role": "developer", "content": "Be brief."},
                                        {"role": "user", "content": [{"type": "text", "text": "안녕"},
                                                                     {"type": "text", "text": "하세요"}]},
                                        {"role": "assistant", "content": null}],
                           "stream": true, "stream_options": {"include_usage": true},
                           "temperature": 1.0, "top_p": 1, "seed": 7, "max_completion_tokens": 30,
                           "n": 1, "stop": ["a", "b"]})");
  REQUIRE(r.messages.size() == 3);
  CHECK(r.messages[0].role == "system");
  CHECK(r.messages[1].content == "안녕하세요");
  CHECK(r.messages[2].content.empty());
  CHECK(r.stream);
  CHECK(r.include_usage);
  CHECK_FALSE(r.sampling.top_p);  // 1 keeps everything
  CHECK(r.max_new_tokens == 30);
  CHECK(r.stop == std::vector<std::string>{"a", "b"});
  const auto c = parse(ServeRoute::kOpenAICompletion, R"({"prompt": ["Every effort moves you"]})");
  CHECK(c.prompt == "Every effort moves you");
  CHECK(c.max_new_tokens == 16);  // OpenAI's default for completions
  CHECK_FALSE(c.stream);
}

TEST_CASE("A malformed request is a 400 that says which field, on one line", "[chat][serve]") {
  CHECK(refusal(ServeRoute::kOllamaGenerate, "") ==
        "400 the request body is empty (expected a JSON object)");
  CHECK(refusal(ServeRoute::kOllamaGenerate, "[1]") ==
        "400 the request body must be a JSON object");
  CHECK(refusal(ServeRoute::kOllamaGenerate, "{}") == "400 'prompt' is missing");
  CHECK(refusal(ServeRoute::kOllamaChat, R"({"messages": []})") == "400 'messages' is empty");
  CHECK(refusal(ServeRoute::kOllamaGenerate, R"({"prompt": "a", "options": {"top_p": 0}})") ==
        "400 'top_p' must be in (0, 1], got 0");
  CHECK(refusal(ServeRoute::kOpenAIChat,
                R"({"messages": [{"role": "user", "content": "a"}], "n": 2})") ==
        "400 'n' must be 1 (one answer per request), got 2");
  CHECK(refusal(ServeRoute::kOpenAIChat,
                R"({"messages": [{"role": "user", "content": [{"type": 1, "text": "a"}]}]})") ==
        "400 messages[0].content: only text parts are supported");
  CHECK(refusal(ServeRoute::kOllamaShow, R"({"name": 3})") == "400 'name' must be a string");
  // A role the client made up is quoted, so its newline stays on the line.
  CHECK(refusal(ServeRoute::kOllamaChat, R"({"messages": [{"role": "x\ny", "content": "a"}]})") ==
        R"(400 messages[0].role "x\ny" is not system, user or assistant)");
  const std::string bad_json = refusal(ServeRoute::kOllamaChat, "{\"messages\": \"\xff\"}");
  CHECK(bad_json.starts_with("400 invalid JSON: "));
  CHECK(bad_json.find('\n') == std::string::npos);
  CHECK(bad_json.find("\xff") == std::string::npos);  // the byte it quotes, as U+FFFD
  CHECK(
      refusal(ServeRoute::kOllamaChat, R"({"messages": 1e999})").starts_with("400 invalid JSON: "));
}
