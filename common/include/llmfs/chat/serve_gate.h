#pragma once

// The request gate of ch07 serve: who may use the server, checked before any route runs.
//
// A model served on 127.0.0.1 is reachable from every web page the user opens: a page can make
// its own name resolve to 127.0.0.1 (DNS rebinding) or post a form to it. The gate refuses what
// only such pages send (Ollama's defence after CVE-2024-28224, and more):
//
//   Host          the listening address, localhost, 127.0.0.1 or [::1] (any port), the machine's
//                 own names when listening on every address, or a name in serve.allowed_hosts
//                 ("*": any); else 403
//   Origin        the server's own page, an origin in serve.allowed_origins (default: the
//                 loopback origins on any port, "scheme://host:*" patterns, "*": any); else 403
//   OPTIONS       a preflight from an allowed origin: 204 with the CORS headers
//   Content-Type  a POST body must be application/json, or come without a type; text/plain and
//                 multipart/form-data (what a cross-site form sends without asking) are 415, and
//                 from a browser (Origin or Sec-Fetch-Site present) so is any type but JSON
//   Authorization with serve.api_key (or the variable serve.api_key_env names), every API route
//                 (/api/, /v1/, /llmfs/) needs "Bearer KEY", compared in constant time; else 401
//
// Answers to an allowed origin carry Access-Control-Allow-Origin, streamed ones too. The gate is
// a pure function of the request's method, path and headers, for tests and fuzzing.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmfs/config/config_node.h"

namespace llmfs {

/// The `serve:` keys of the gate.
struct ServeAccess {
  std::vector<std::string> allowed_hosts;  // more Host names (no port), or "*"
  std::vector<std::string> allowed_origins = {
      "http://localhost:*",  "http://127.0.0.1:*",  "http://[::1]:*",
      "https://localhost:*", "https://127.0.0.1:*", "https://[::1]:*"};
  std::string api_key;      // empty: no key
  std::string api_key_env;  // the name of an environment variable holding the key
};

/// Reads the gate's keys of a `serve:` section (allowed_hosts, allowed_origins, api_key,
/// api_key_env) into `access`.
void read_serve_access(ConfigNode node, ServeAccess& access);

/// The headers of a request that the gate reads (nullopt: absent).
struct GateRequest {
  std::string method;
  std::string path;
  std::optional<std::string> host;
  std::optional<std::string> origin;
  std::optional<std::string> content_type;
  std::optional<std::string> authorization;
  std::optional<std::string> sec_fetch_site;
};

/// What the gate decided: status 0 lets the request through (with `headers` to add to its
/// answer); 204 answers a preflight; 401, 403 and 415 refuse it with `message`.
struct GateDecision {
  int status = 0;
  std::string message;
  std::vector<std::pair<std::string, std::string>> headers;
};

class ServeGate {
 public:
  /// `listen_host` is the address the server listens on; `own_names` the machine's names and
  /// addresses (allowed as Host when it listens on every address, 0.0.0.0 or ::). Throws
  /// ConfigError naming serve.api_key_env when that variable is named but unset or empty.
  ServeGate(ServeAccess access, std::string listen_host, std::vector<std::string> own_names = {});

  GateDecision check(const GateRequest& request) const;

  /// Whether an API key is required.
  bool requires_key() const { return !key_.empty(); }

  /// Whether the server listens on a loopback address only.
  bool loopback_only() const;

 private:
  bool host_allowed(std::string_view host) const;
  bool origin_allowed(std::string_view origin, const std::optional<std::string>& host) const;

  ServeAccess access_;
  std::string listen_host_;
  std::vector<std::string> own_names_;
  std::string key_;
};

/// The host part of a Host header ("Example.com:8080" -> "example.com", "[::1]:80" -> "::1"),
/// lowercased; nullopt when malformed.
std::optional<std::string> host_of_host_header(std::string_view header);

/// The machine's host name and the addresses of its interfaces (for ServeGate's own_names).
std::vector<std::string> machine_names();

/// Whether two strings are equal, in a time that depends on their lengths only.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace llmfs
