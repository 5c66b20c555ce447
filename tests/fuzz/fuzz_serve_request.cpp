// libFuzzer target: the requests `ch07 serve` reads from the network. Two ways in, chosen by the
// first byte:
//   0-4  the JSON body of a POST to one of the five routes, read by parse_serve_request (the
//        function the server calls). Properties: it returns or throws HttpError 400 with a
//        one-line UTF-8 message, nothing else; what it returns is valid (sampling options that
//        check_sampling_options accepts, an answer length >= 0, valid UTF-8 text, messages with
//        known roles on the chat routes); and the request written back as a body of its route
//        reads again to the same request.
//   5+   raw HTTP bytes given to cpp-httplib's request parser (the server's own, through
//        Server::process_request), with the five POST routes, the body limit and the error
//        handling of ch07 serve. Properties: every request gets an HTTP/1.1 status line; a body
//        longer than the limit never reaches a handler; a handler sees exactly the body read.
#include <httplib.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "fuzz_input_file.h"
#include "llmfs/chat/serve_request.h"
#include "llmfs/core/error.h"
#include "llmfs/core/utf8.h"
#include "llmfs/generate/sampling.h"

namespace {

using llmfs::ServeRequest;
using llmfs::ServeRoute;
using llmfs::fuzz::broken;
using json = nlohmann::ordered_json;

constexpr ServeRoute kRoutes[] = {ServeRoute::kOllamaShow, ServeRoute::kOllamaGenerate,
                                  ServeRoute::kOllamaChat, ServeRoute::kOpenAIChat,
                                  ServeRoute::kOpenAICompletion};
constexpr const char* kPaths[] = {"/api/show", "/api/generate", "/api/chat", "/v1/chat/completions",
                                  "/v1/completions"};
constexpr size_t kBodyLimit = 4096;

const llmfs::ServeRequestDefaults kDefaults{50, {}};

bool valid_utf8(std::string_view s) {
  return llmfs::find_invalid_utf8(s) == std::string_view::npos;
}

bool is_chat(ServeRoute r) { return r == ServeRoute::kOllamaChat || r == ServeRoute::kOpenAIChat; }
bool is_ollama(ServeRoute r) {
  return r == ServeRoute::kOllamaShow || r == ServeRoute::kOllamaGenerate ||
         r == ServeRoute::kOllamaChat;
}

// The request as a body of its own route, in the API's field names.
std::string to_body(const ServeRequest& r) {
  json j = json::object();
  if (r.model) j["model"] = *r.model;
  if (r.route == ServeRoute::kOllamaShow) return j.dump();
  json messages = json::array();
  for (const auto& m : r.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
  json stop = json::array();
  for (const auto& s : r.stop) stop.push_back(s);
  json sampling = {{"temperature", r.sampling.temperature}};
  if (r.sampling.top_p) sampling["top_p"] = *r.sampling.top_p;
  if (r.seed) sampling["seed"] = *r.seed;
  sampling["stop"] = stop;
  j["stream"] = r.stream;
  if (is_ollama(r.route)) {
    if (r.sampling.top_k) sampling["top_k"] = *r.sampling.top_k;
    sampling["num_predict"] = r.max_new_tokens == llmfs::kUntilContextFull ? -1 : r.max_new_tokens;
    j["options"] = sampling;
    if (r.route == ServeRoute::kOllamaGenerate) {
      j["prompt"] = r.prompt;
      j["raw"] = r.raw;
      if (r.system) j["system"] = *r.system;
    } else {
      j["messages"] = messages;
    }
  } else {
    j.update(sampling);
    j["max_tokens"] = r.max_new_tokens;
    j["stream_options"] = {{"include_usage", r.include_usage}};
    if (r.route == ServeRoute::kOpenAIChat)
      j["messages"] = messages;
    else
      j["prompt"] = r.prompt;
  }
  return j.dump();
}

bool same(const ServeRequest& a, const ServeRequest& b) {
  if (a.messages.size() != b.messages.size()) return false;
  for (size_t i = 0; i < a.messages.size(); ++i) {
    if (a.messages[i].role != b.messages[i].role ||
        a.messages[i].content != b.messages[i].content) {
      return false;
    }
  }
  return a.route == b.route && a.model == b.model && a.stream == b.stream &&
         a.include_usage == b.include_usage && a.raw == b.raw && a.system == b.system &&
         a.prompt == b.prompt && a.max_new_tokens == b.max_new_tokens &&
         a.sampling.temperature == b.sampling.temperature && a.sampling.top_k == b.sampling.top_k &&
         a.sampling.top_p == b.sampling.top_p && a.seed == b.seed && a.stop == b.stop;
}

void check_error(const llmfs::HttpError& e, size_t size) {
  if (e.status != 400) broken("a malformed request is a 400", size);
  if (e.message.empty()) broken("the error says why", size);
  for (const char c : e.message) {
    if (static_cast<unsigned char>(c) < 0x20) broken("the error is one line", size);
  }
  if (!valid_utf8(e.message)) broken("the error is valid UTF-8", size);
}

void check_request(const ServeRequest& r, size_t size) {
  try {
    llmfs::check_sampling_options(r.sampling);
  } catch (const llmfs::Error&) {
    broken("the sampling options are valid", size);
  }
  if (r.max_new_tokens < 0) broken("the answer length is >= 0", size);
  if (is_chat(r.route) != !r.messages.empty()) broken("chat routes (only) have messages", size);
  for (const auto& m : r.messages) {
    if (m.role != "system" && m.role != "user" && m.role != "assistant") {
      broken("roles are system, user or assistant", size);
    }
    if (!valid_utf8(m.content)) broken("messages are valid UTF-8", size);
  }
  if (!valid_utf8(r.prompt) || !valid_utf8(r.model.value_or("")) ||
      !valid_utf8(r.system.value_or(""))) {
    broken("the text is valid UTF-8", size);
  }
  for (const auto& s : r.stop) {
    if (!valid_utf8(s)) broken("stop strings are valid UTF-8", size);
  }
}

// The request read from a body: checked, written back, read again the same.
void body(ServeRoute route, std::string_view text, size_t size) {
  ServeRequest r;
  try {
    r = llmfs::parse_serve_request(route, text, kDefaults);
  } catch (const llmfs::HttpError& e) {
    check_error(e, size);
    return;
  } catch (...) {
    broken("a malformed request is an HttpError, nothing else", size);
  }
  check_request(r, size);
  ServeRequest again;
  try {
    again = llmfs::parse_serve_request(route, to_body(r), kDefaults);
  } catch (const llmfs::HttpError& e) {
    broken("written back, the request reads again", size);
  }
  if (!same(r, again)) broken("written back, the request reads again the same", size);
}

// cpp-httplib reading from the fuzzer's bytes, writing into a string.
class InputStream : public httplib::Stream {
 public:
  explicit InputStream(std::string_view input) : input_(input) {}
  bool is_readable() const override { return true; }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, input_.size() - position_);
    std::memcpy(ptr, input_.data() + position_, n);
    position_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    output.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 40000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 11434;
  }
  socket_t socket() const override { return 0; }

  std::string output;

 private:
  std::string_view input_;
  size_t position_ = 0;
};

class FuzzServer : public httplib::Server {
 public:
  FuzzServer() {
    set_payload_max_length(kBodyLimit);
    for (size_t i = 0; i < std::size(kRoutes); ++i) {
      Post(kPaths[i],
           [this, route = kRoutes[i]](const httplib::Request& req, httplib::Response& res) {
             if (req.body.size() > kBodyLimit)
               broken("a body over the limit never reaches a handler", size_);
             handled_ = 200;
             try {
               check_request(llmfs::parse_serve_request(route, req.body, kDefaults), size_);
               res.set_content("{}", "application/json");
             } catch (const llmfs::HttpError& e) {
               check_error(e, size_);
               handled_ = e.status;
               res.status = e.status;
               res.set_content(
                   json{{"error", e.message}}.dump(-1, ' ', false, json::error_handler_t::replace),
                   "application/json");
             }
           });
    }
  }

  void serve(std::string_view input) {
    size_ = input.size();
    handled_ = 0;
    InputStream stream(input);
    bool closed = false;
    process_request(stream, true, closed, nullptr);
    if (!stream.output.empty() && stream.output.rfind("HTTP/1.1 ", 0) != 0) {
      broken("a reply starts with an HTTP/1.1 status line", size_);
    }
    if (handled_ != 0 && !carries(stream.output, handled_)) {
      broken("the reply carries the handler's status", size_);
    }
  }

 private:
  // The reply's status is the handler's (after a "100 Continue"; a Range header makes a 200
  // into 206 or 416).
  static bool carries(std::string_view output, int status) {
    constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    if (output.starts_with(kContinue)) output.remove_prefix(kContinue.size());
    const auto is = [&](int s) {
      return output.starts_with("HTTP/1.1 " + std::to_string(s) + " ");
    };
    return is(status) || (status == 200 && (is(206) || is(416)));
  }

  size_t size_ = 0;
  int handled_ = 0;  // the status a route's handler gave this input (0: none ran)
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] < std::size(kRoutes)) {
    body(kRoutes[data[0]], rest, size);
  } else {
    static FuzzServer server;
    server.serve(rest);
  }
  return 0;
}
