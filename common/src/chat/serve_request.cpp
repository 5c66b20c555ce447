#include "llmfs/chat/serve_request.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "llmfs/core/utf8.h"

namespace llmfs {

namespace {

using json = nlohmann::ordered_json;

template <typename... Args>
[[noreturn]] void reject(fmt::format_string<Args...> format, Args&&... args) {
  throw HttpError{400, fmt::format(format, std::forward<Args>(args)...)};
}

// A value the client sent, for an error message: JSON-quoted (so a newline in it stays on the
// line) and cut after 40 bytes.
std::string client_value(const std::string& value) {
  std::string q = json(value).dump(-1, ' ', false, json::error_handler_t::replace);
  if (q.size() > 42) q = q.substr(0, 40) + "...\"";
  return q;
}

json parse_body(std::string_view text) {
  if (text.empty()) reject("the request body is empty (expected a JSON object)");
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    std::string what = e.what();        // "[json.exception.parse_error.101] parse error at ..."
    if (const auto at = what.find("] "); at != std::string::npos) what.erase(0, at + 2);
    // nlohmann quotes the bytes it last read, which may be the invalid UTF-8 it refused.
    reject("invalid JSON: {}", utf8_replace_invalid(what));
  }
  if (!body.is_object()) reject("the request body must be a JSON object");
  return body;
}

// A field that is there and not null.
const json* field(const json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::optional<std::string> get_string(const json& object, const char* key) {
  const json* v = field(object, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) reject("'{}' must be a string", key);
  return v->get<std::string>();
}

std::optional<bool> get_bool(const json& object, const char* key) {
  const json* v = field(object, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) reject("'{}' must be true or false", key);
  return v->get<bool>();
}

std::optional<double> get_number(const json& object, const char* key) {
  const json* v = field(object, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) reject("'{}' must be a number", key);
  return v->get<double>();
}

std::optional<int64_t> get_integer(const json& object, const char* key) {
  const json* v = field(object, key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_unsigned()) return kUntilContextFull;  // beyond int64: as large as it gets
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9e18) {
      return static_cast<int64_t>(d);
    }
  }
  reject("'{}' must be an integer", key);
}

std::vector<std::string> get_stop(const json& object, const char* key) {
  const json* v = field(object, key);
  if (v == nullptr) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array()) reject("'{}' must be a string or an array of strings", key);
  std::vector<std::string> out;
  for (const auto& s : *v) {
    if (!s.is_string()) reject("'{}' must be a string or an array of strings", key);
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::string text_content(const json& content, size_t index) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {  // OpenAI's content parts: only text
    std::string text;
    for (const auto& part : content) {
      const json* type = part.is_object() ? field(part, "type") : nullptr;
      const json* part_text = part.is_object() ? field(part, "text") : nullptr;
      if (type == nullptr || *type != "text" || part_text == nullptr || !part_text->is_string()) {
        reject("messages[{}].content: only text parts are supported", index);
      }
      text += part_text->get<std::string>();
    }
    return text;
  }
  reject("messages[{}].content must be a string", index);
}

std::vector<ChatMessage> parse_messages(const json& body) {
  const json* v = field(body, "messages");
  if (v == nullptr) reject("'messages' is missing");
  if (!v->is_array()) reject("'messages' must be an array");
  if (v->empty()) reject("'messages' is empty");
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    if (!m.is_object()) reject("messages[{}] must be an object", i);
    const json* role = field(m, "role");
    if (role == nullptr || !role->is_string()) reject("messages[{}].role must be a string", i);
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";
    if (r != "system" && r != "user" && r != "assistant") {
      reject("messages[{}].role {} is not system, user or assistant", i, client_value(r));
    }
    const json* content = field(m, "content");
    if (content == nullptr) {
      if (r != "assistant") reject("messages[{}].content is missing", i);
      messages.push_back({r, ""});
      continue;
    }
    messages.push_back({r, text_content(*content, i)});
  }
  return messages;
}

void read_temperature(const json& object, ServeRequest& r) {
  if (const auto t = get_number(object, "temperature")) {
    if (*t < 0.0 || !std::isfinite(*t)) reject("'temperature' must be >= 0, got {}", *t);
    r.sampling.temperature = *t;
  }
}

void read_top_p(const json& object, ServeRequest& r) {
  if (const auto v = get_number(object, "top_p")) {
    if (!(*v > 0.0 && *v <= 1.0)) reject("'top_p' must be in (0, 1], got {}", *v);
    r.sampling.top_p = *v < 1.0 ? std::optional<double>(*v) : std::nullopt;
  }
}

// Ollama's "options" (unknown keys are ignored, as Ollama has many).
void read_ollama_options(const json& body, ServeRequest& r) {
  const json* o = field(body, "options");
  if (o == nullptr) return;
  if (!o->is_object()) reject("'options' must be an object");
  read_temperature(*o, r);
  read_top_p(*o, r);
  if (const auto k = get_integer(*o, "top_k")) {
    if (*k < 0) reject("'top_k' must be >= 0 (0: off), got {}", *k);
    r.sampling.top_k = *k > 0 ? std::optional<int64_t>(*k) : std::nullopt;
  }
  if (const auto s = get_integer(*o, "seed")) r.seed = *s;
  if (const auto n = get_integer(*o, "num_predict")) {
    if (*n < -2) reject("'num_predict' must be >= 0, or -1 / -2 (until the context is full)");
    r.max_new_tokens = *n < 0 ? kUntilContextFull : *n;
  }
  if (const auto n = get_integer(*o, "num_ctx")) {
    if (*n < 1) reject("'num_ctx' must be >= 1, got {}", *n);
  }
  r.stop = get_stop(*o, "stop");
}

// OpenAI's sampling fields.
void read_openai_params(const json& body, ServeRequest& r, bool chat) {
  read_temperature(body, r);
  read_top_p(body, r);
  if (const auto s = get_integer(body, "seed")) r.seed = *s;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (!chat && std::string_view(key) == "max_completion_tokens") continue;
    if (const auto n = get_integer(body, key)) {
      if (*n < 1) reject("'{}' must be >= 1, got {}", key, *n);
      r.max_new_tokens = *n;
    }
  }
  if (const auto n = get_integer(body, "n"); n && *n != 1) {
    reject("'n' must be 1 (one answer per request), got {}", *n);
  }
  r.stop = get_stop(body, "stop");
}

}  // namespace

ServeRequest parse_serve_request(ServeRoute route, std::string_view text,
                                 const ServeRequestDefaults& defaults) {
  const json body = parse_body(text);
  ServeRequest r;
  r.route = route;
  r.max_new_tokens = defaults.max_new_tokens;
  r.sampling = defaults.sampling;
  r.model = get_string(body, "model");
  switch (route) {
    case ServeRoute::kOllamaShow: {
      const auto name = get_string(body, "name");
      if (!r.model) r.model = name;
      break;
    }
    case ServeRoute::kOllamaGenerate: {
      const auto prompt = get_string(body, "prompt");
      if (!prompt) reject("'prompt' is missing");
      r.prompt = *prompt;
      r.raw = get_bool(body, "raw").value_or(false);
      r.system = get_string(body, "system");
      r.stream = get_bool(body, "stream").value_or(true);
      read_ollama_options(body, r);
      break;
    }
    case ServeRoute::kOllamaChat:
      r.messages = parse_messages(body);
      r.stream = get_bool(body, "stream").value_or(true);
      read_ollama_options(body, r);
      break;
    case ServeRoute::kOpenAIChat:
    case ServeRoute::kOpenAICompletion: {
      const bool chat = route == ServeRoute::kOpenAIChat;
      r.stream = get_bool(body, "stream").value_or(false);
      if (const json* o = field(body, "stream_options")) {
        if (!o->is_object()) reject("'stream_options' must be an object");
        r.include_usage = get_bool(*o, "include_usage").value_or(false);
      }
      if (!chat) r.max_new_tokens = 16;  // OpenAI's default for completions
      read_openai_params(body, r, chat);
      if (chat) {
        r.messages = parse_messages(body);
        break;
      }
      const json* prompt = field(body, "prompt");
      if (prompt == nullptr) reject("'prompt' is missing");
      if (prompt->is_string()) {
        r.prompt = prompt->get<std::string>();
      } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
        r.prompt = (*prompt)[0].get<std::string>();
      } else {
        reject("'prompt' must be a string");
      }
      break;
    }
  }
  return r;
}

}  // namespace llmfs
