// ch07 serve's request gate (serve_gate.h): Host, Origin, preflights, content types, the API key.
#include <cstdlib>

#include "catch.h"
#include "llmfs/chat/serve_gate.h"
#include "llmfs/config/config_node.h"

namespace {

using llmfs::GateRequest;
using llmfs::ServeAccess;
using llmfs::ServeGate;

GateRequest post(std::string host, std::optional<std::string> origin = std::nullopt) {
  GateRequest r;
  r.method = "POST";
  r.path = "/api/generate";
  r.host = std::move(host);
  r.origin = std::move(origin);
  r.content_type = "application/json";
  return r;
}

std::string header(const llmfs::GateDecision& d, const std::string& name) {
  for (const auto& [k, v] : d.headers) {
    if (k == name) return v;
  }
  return "";
}

}  // namespace

TEST_CASE("the gate lets in the loopback names and the listening address, any port",
          "[unit][chat][serve]") {
  const ServeGate gate({}, "127.0.0.1");
  for (const char* host : {"127.0.0.1:11434", "localhost:8080", "LOCALHOST", "[::1]:11434",
                           "127.0.0.1"}) {
    INFO(host);
    CHECK(gate.check(post(host)).status == 0);
  }
  GateRequest no_host = post("x");
  no_host.host.reset();  // HTTP/1.0 clients: no browser sends a request without Host
  CHECK(gate.check(no_host).status == 0);
}

TEST_CASE("a forged Host is refused unless allowed_hosts names it (DNS rebinding)",
          "[unit][chat][serve]") {
  const ServeGate gate({}, "127.0.0.1");
  for (const char* host : {"evil.example:11434", "evil.example", "127.0.0.1.evil.example",
                           "localhost.evil:80", "[::2]:1", "a b", "[::1", "host:port"}) {
    INFO(host);
    const auto d = gate.check(post(host));
    CHECK(d.status == 403);
    CHECK_THAT(d.message, llmfs::test::contains_text("serve.allowed_hosts"));
  }
  ServeAccess access;
  access.allowed_hosts = {"My-Box.lan"};
  const ServeGate named(access, "127.0.0.1");
  CHECK(named.check(post("my-box.lan:11434")).status == 0);
  CHECK(named.check(post("other.lan:11434")).status == 403);
  access.allowed_hosts = {"*"};
  CHECK(ServeGate(access, "127.0.0.1").check(post("anything.example")).status == 0);
}

TEST_CASE("listening on every address lets in the machine's own names", "[unit][chat][serve]") {
  const ServeGate gate({}, "0.0.0.0", {"box", "192.168.1.5"});
  CHECK(gate.check(post("192.168.1.5:11434")).status == 0);
  CHECK(gate.check(post("box:11434")).status == 0);
  CHECK(gate.check(post("localhost:11434")).status == 0);
  CHECK(gate.check(post("evil.example:11434")).status == 403);
  CHECK_FALSE(gate.loopback_only());
  CHECK(ServeGate({}, "127.0.0.1").loopback_only());
  CHECK_FALSE(llmfs::machine_names().empty());
}

TEST_CASE("origins: the page itself and loopback pages pass with CORS headers, others get 403",
          "[unit][chat][serve]") {
  const ServeGate gate({}, "127.0.0.1");
  // The chat page, served by this server.
  auto own = gate.check(post("127.0.0.1:11434", "http://127.0.0.1:11434"));
  CHECK(own.status == 0);
  // A front-end on another local port (the default allowed_origins).
  const auto local = gate.check(post("127.0.0.1:11434", "http://localhost:3000"));
  CHECK(local.status == 0);
  CHECK(header(local, "Access-Control-Allow-Origin") == "http://localhost:3000");
  CHECK(header(local, "Vary") == "Origin");
  for (const char* origin : {"http://evil.example", "null", "http://localhost.evil.example:3000",
                             "file://", "http://127.0.0.2:80", "http://::1:0"}) {
    INFO(origin);
    const auto d = gate.check(post("127.0.0.1:11434", std::string(origin)));
    CHECK(d.status == 403);
    CHECK_THAT(d.message, llmfs::test::contains_text("serve.allowed_origins"));
    CHECK(d.headers.empty());
  }
  ServeAccess access;
  access.allowed_origins = {"https://chat.example", "http://ui.lan:*"};
  const ServeGate listed(access, "127.0.0.1");
  CHECK(listed.check(post("127.0.0.1:1", "https://chat.example")).status == 0);
  CHECK(listed.check(post("127.0.0.1:1", "https://chat.example:8443")).status == 403);
  CHECK(listed.check(post("127.0.0.1:1", "http://ui.lan:5173")).status == 0);
  CHECK(listed.check(post("127.0.0.1:1", "http://localhost:3000")).status == 403);  // replaced
}

TEST_CASE("a preflight from an allowed origin is answered 204 with what the API takes",
          "[unit][chat][serve]") {
  const ServeGate gate({}, "127.0.0.1");
  GateRequest r = post("127.0.0.1:11434", "http://localhost:5173");
  r.method = "OPTIONS";
  r.content_type.reset();
  const auto d = gate.check(r);
  CHECK(d.status == 204);
  CHECK(header(d, "Access-Control-Allow-Origin") == "http://localhost:5173");
  CHECK(header(d, "Access-Control-Allow-Methods") == "GET, POST, OPTIONS");
  CHECK_THAT(header(d, "Access-Control-Allow-Headers"), llmfs::test::contains_text("Authorization"));
  r.origin = "http://evil.example";
  CHECK(gate.check(r).status == 403);
}

TEST_CASE("POST bodies: JSON or no type, and what a cross-site form sends is 415",
          "[unit][chat][serve]") {
  const ServeGate gate({}, "127.0.0.1");
  auto r = post("127.0.0.1:11434");
  r.content_type = "application/json; charset=utf-8";
  CHECK(gate.check(r).status == 0);
  r.content_type.reset();
  CHECK(gate.check(r).status == 0);
  for (const char* type : {"text/plain", "text/plain;charset=UTF-8", "multipart/form-data; b=x"}) {
    INFO(type);
    r.content_type = type;
    const auto d = gate.check(r);
    CHECK(d.status == 415);
    CHECK_THAT(d.message, llmfs::test::contains_text("application/json"));
  }
  // curl -d sends a form type: fine from a program, refused from a page.
  r.content_type = "application/x-www-form-urlencoded";
  CHECK(gate.check(r).status == 0);
  r.sec_fetch_site = "same-origin";
  CHECK(gate.check(r).status == 415);
  auto page = post("127.0.0.1:11434", "http://127.0.0.1:11434");
  page.content_type = "application/x-www-form-urlencoded";
  CHECK(gate.check(page).status == 415);
}

TEST_CASE("with an API key every API route needs it, the page does not", "[unit][chat][serve]") {
  ServeAccess access;
  access.api_key = "s3cret-key";
  const ServeGate gate(access, "127.0.0.1");
  CHECK(gate.requires_key());
  auto r = post("127.0.0.1:11434");
  auto d = gate.check(r);
  CHECK(d.status == 401);
  CHECK(header(d, "WWW-Authenticate") == "Bearer");
  CHECK_THAT(d.message, llmfs::test::contains_text("required"));
  r.authorization = "Bearer wrong";
  CHECK(gate.check(r).status == 401);
  r.authorization = "Bearer s3cret-key-and-more";
  CHECK(gate.check(r).status == 401);
  r.authorization = "Basic s3cret-key";
  CHECK(gate.check(r).status == 401);
  r.authorization = "Bearer s3cret-key";
  CHECK(gate.check(r).status == 0);
  r.authorization = "bearer  s3cret-key ";
  CHECK(gate.check(r).status == 0);
  for (const char* path : {"/v1/models", "/api/tags", "/llmfs/stats"}) {
    GateRequest get{.method = "GET", .path = path, .host = "127.0.0.1:11434"};
    CHECK(gate.check(get).status == 401);
  }
  GateRequest page{.method = "GET", .path = "/", .host = "127.0.0.1:11434"};
  CHECK(gate.check(page).status == 0);
  // A refusal to an allowed page still carries CORS headers, so the page can read it.
  auto cross = post("127.0.0.1:11434", "http://localhost:3000");
  d = gate.check(cross);
  CHECK(d.status == 401);
  CHECK(header(d, "Access-Control-Allow-Origin") == "http://localhost:3000");

  CHECK(llmfs::constant_time_equal("abc", "abc"));
  CHECK_FALSE(llmfs::constant_time_equal("abc", "abd"));
  CHECK_FALSE(llmfs::constant_time_equal("abc", "abcd"));
  CHECK_FALSE(llmfs::constant_time_equal("", "a"));
}

TEST_CASE("the key can come from an environment variable the config names", "[unit][chat][serve]") {
  ServeAccess access;
  access.api_key_env = "LLMFS_TEST_SERVE_KEY";
  ::unsetenv("LLMFS_TEST_SERVE_KEY");
  CHECK_THROWS_WITH(ServeGate(access, "127.0.0.1"),
                    llmfs::test::contains_text("serve.api_key_env: the environment variable "
                                               "LLMFS_TEST_SERVE_KEY is not set"));
  ::setenv("LLMFS_TEST_SERVE_KEY", "from-env", 1);
  const ServeGate gate(access, "127.0.0.1");
  auto r = post("127.0.0.1:1");
  r.authorization = "Bearer from-env";
  CHECK(gate.check(r).status == 0);
  ::unsetenv("LLMFS_TEST_SERVE_KEY");
}

TEST_CASE("the gate's config keys are checked", "[unit][chat][serve]") {
  const auto problems = [](const std::string& yaml) {
    try {
      const auto doc = llmfs::ConfigDocument::from_string(yaml, "serve.yaml");
      auto node = doc.root().child("serve");
      ServeAccess access;
      llmfs::read_serve_access(node, access);
      doc.finish();
    } catch (const llmfs::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(problems("serve:\n  allowed_origins: [http://localhost:*, '*']\n").empty());
  CHECK_THAT(problems("serve:\n  allowed_origins: [localhost]\n"),
             llmfs::test::contains_text("serve.allowed_origins: 'localhost' is not an origin"));
  CHECK_THAT(problems("serve:\n  allowed_hosts: ['evil.example:80/x']\n"),
             llmfs::test::contains_text("serve.allowed_hosts"));
}
