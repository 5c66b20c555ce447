#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "llmfs/chat/chat_engine.h"
#include "llmfs/chat/serve_config.h"
#include "llmfs/config/config_node.h"
#include "llmfs/generate/generation_config.h"

namespace llmfs {

/// What the server reports while it runs.
struct ServeCallbacks {
  std::function<void(const std::string& url)> on_listening;  // after binding
  std::function<void(const std::string& line)> on_request;   // one line per request
};

/// Serves `engine` until SIGINT or SIGTERM, then stops taking connections, ends the
/// generations in progress and returns. `defaults`: the sampling and answer length of requests
/// that do not set them (the run's `generate:` section). llmfs::Error when the address cannot be
/// bound.
///
/// Routes: GET / (the chat page), Ollama's /api/generate, /api/chat, /api/tags, /api/show,
/// /api/version, OpenAI's /v1/chat/completions, /v1/completions, /v1/models, and /llmfs/stats.
/// Up to serve.parallel requests generate at once (serve() sets the engine's sequences to it; one
/// batched forward pass per token); up to queue_size more wait. Errors are JSON in the API's shape:
/// 400 malformed, 404 unknown route, 413 body too large, 422 prompt longer than the context,
/// 503 queue full. Before any route, the request gate (serve_gate.h): 403 for a Host or an
/// Origin not allowed, 415 for a form body, 401 without the API key (serve.api_key), 204 for a
/// preflight from an allowed origin.
void serve(ChatEngine& engine, const GenerationConfig& defaults, const ServeConfig& config,
           const ServeCallbacks& callbacks = {});

}  // namespace llmfs
