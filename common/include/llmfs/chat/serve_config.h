#pragma once

#include <cstdint>
#include <string>

#include "llmfs/chat/serve_gate.h"
#include "llmfs/config/config_node.h"

namespace llmfs {

/// The `serve:` section: `ch07 serve`, an HTTP server with Ollama's and OpenAI's APIs and a
/// chat page.
///
///   serve:
///     host: 127.0.0.1        # 0.0.0.0: every interface (others on the network can use the model)
///     port: 11434            # Ollama's port; 0: a free one
///     model_name: llmfs      # the name /api/tags and /v1/models list
///     parallel: 8            # answers generated at once, batched (each keeps a KV cache)
///     queue_size: 16         # requests waiting beyond those; one more gets 503 + Retry-After
///     threads: 32            # connections served at once
///     max_body_bytes: 1048576  # larger request bodies get 413
///     max_new_tokens: 1024   # no answer is longer (and none outlasts the context)
///     timeout_s: 60          # reading a request, writing a reply
///     allowed_hosts: []      # Host names besides this machine's addresses ("*": any)
///     allowed_origins: [http://localhost:*, ...]  # pages that may call the API (serve_gate.h)
///     api_key: ""            # when set, every API route needs Authorization: Bearer KEY
///     api_key_env: ""        # ... or the name of the environment variable holding the key
struct ServeConfig {
  std::string host = "127.0.0.1";
  int64_t port = 11434;
  std::string model_name = "llmfs";
  int64_t parallel = 8;
  int64_t queue_size = 16;
  int64_t threads = 32;
  int64_t max_body_bytes = int64_t{1} << 20;
  int64_t max_new_tokens = 1024;
  double timeout_s = 60.0;
  ServeAccess access;  // who may use it: the request gate (serve_gate.h)
};
ServeConfig parse_serve_config(ConfigNode node, const ServeConfig& defaults = {});

}  // namespace llmfs
