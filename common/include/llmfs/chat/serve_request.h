#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmfs/chat/chat_format.h"
#include "llmfs/generate/sampling.h"

namespace llmfs {

/// A request `ch07 serve` refuses: the HTTP status and a one-line reason (what the client reads
/// in the API's JSON error).
struct HttpError {
  int status;
  std::string message;
};

/// The POST routes that take a JSON body.
enum class ServeRoute {
  kOllamaShow,        // /api/show
  kOllamaGenerate,    // /api/generate
  kOllamaChat,        // /api/chat
  kOpenAIChat,        // /v1/chat/completions
  kOpenAICompletion,  // /v1/completions
};

/// An answer length meaning "until the context is full" (Ollama's num_predict -1 / -2, or a
/// number beyond int64).
inline constexpr int64_t kUntilContextFull = std::numeric_limits<int64_t>::max();

/// What a request asks for, read from its body alone (no model needed). The server then turns
/// the prompt or messages into tokens and caps the answer length at serve.max_new_tokens.
struct ServeRequest {
  ServeRoute route = ServeRoute::kOllamaGenerate;
  std::optional<std::string> model;   // as given; the server answers with its own name otherwise
  bool stream = false;                // Ollama's default true, OpenAI's false
  bool include_usage = false;         // OpenAI stream_options.include_usage
  bool raw = false;                   // Ollama generate: the prompt as it is, no template
  std::optional<std::string> system;  // Ollama generate's system prompt
  std::string prompt;                 // generate, completions
  std::vector<ChatMessage> messages;  // chat routes: roles system, user or assistant; not empty
  int64_t max_new_tokens = 0;         // >= 0; kUntilContextFull
  SamplingOptions sampling;           // valid (check_sampling_options passes)
  std::optional<int64_t> seed;
  std::vector<std::string> stop;  // stop strings
};

/// The defaults of a request that does not set them: the run's `generate:` section.
struct ServeRequestDefaults {
  int64_t max_new_tokens = 0;
  SamplingOptions sampling;
};

/// Reads the JSON body of a POST to `route`, as Ollama and OpenAI define the fields: Ollama's
/// "options" (seed, temperature, top_k, top_p, num_predict, num_ctx, stop; other keys ignored),
/// OpenAI's sampling fields (temperature, top_p, seed, max_tokens, max_completion_tokens, n = 1,
/// stop), messages whose content is a string or OpenAI's text parts ("developer" is "system").
/// HttpError 400 with a one-line message for anything malformed: invalid JSON or UTF-8, a body
/// that is not an object, a field of the wrong type or out of range, a missing prompt or
/// messages. Never throws anything else.
ServeRequest parse_serve_request(ServeRoute route, std::string_view body,
                                 const ServeRequestDefaults& defaults);

}  // namespace llmfs
