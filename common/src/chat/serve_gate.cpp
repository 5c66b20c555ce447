// The request gate of ch07 serve (serve_gate.h): Host, Origin, preflight, content type, key.
#include "llmfs/chat/serve_gate.h"

#include <fmt/format.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>

#include "llmfs/core/error.h"

namespace llmfs {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_loopback_name(std::string_view host) {
  return host == "localhost" || host == "127.0.0.1" || host == "::1";
}

bool listens_everywhere(std::string_view host) { return host == "0.0.0.0" || host == "::"; }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// An origin "scheme://host[:port]" split; nullopt when it is not one (e.g. "null").
struct Origin {
  std::string scheme, host;
  std::optional<std::string> port;
};

std::optional<Origin> parse_origin(std::string_view text) {
  const auto sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  Origin o;
  o.scheme = lower(text.substr(0, sep));
  std::string_view rest = text.substr(sep + 3);
  if (rest.empty() || rest.find('/') != std::string_view::npos) return std::nullopt;
  if (rest.front() == '[') {  // [v6]:port
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    o.host = lower(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      o.port = std::string(rest.substr(1));
    }
  } else {
    // An IPv6 address is written in brackets: "http://::1:80" is not an origin (found by the
    // fuzzer), and a port is digits.
    const auto colon = rest.find(':');
    o.host = lower(rest.substr(0, colon));
    if (colon != std::string_view::npos) o.port = std::string(rest.substr(colon + 1));
  }
  if (o.host.empty()) return std::nullopt;
  if (o.port && !(all_digits(*o.port) || *o.port == "*")) return std::nullopt;
  return o;
}

// "http://localhost:*" matches any port (and none); anything else must be the same origin.
bool origin_matches(const Origin& origin, std::string_view pattern) {
  if (pattern == "*") return true;
  const auto p = parse_origin(pattern);
  if (!p || p->scheme != origin.scheme || p->host != origin.host) return false;
  if (p->port && *p->port == "*") return true;
  return p->port == origin.port;
}

std::string media_type(std::string_view content_type) {
  return lower(trim(content_type.substr(0, content_type.find(';'))));
}

bool is_api_path(std::string_view path) {
  for (const std::string_view prefix : {"/api/", "/v1/", "/llmfs/"}) {
    if (path.starts_with(prefix)) return true;
  }
  return false;
}

}  // namespace

void read_serve_access(ConfigNode node, ServeAccess& access) {
  node.read("allowed_hosts", access.allowed_hosts);
  node.read("allowed_origins", access.allowed_origins);
  node.read("api_key", access.api_key);
  node.read("api_key_env", access.api_key_env);
  for (const auto& origin : access.allowed_origins) {
    node.check(origin == "*" || parse_origin(origin).has_value(), "allowed_origins",
               "'{}' is not an origin (scheme://host[:port], a port of * for any, or *)", origin);
  }
  for (const auto& host : access.allowed_hosts) {
    node.check(!host.empty() && host.find_first_of(" /") == std::string::npos, "allowed_hosts",
               "'{}' is not a host name (a name without port, or *)", host);
  }
}

std::optional<std::string> host_of_host_header(std::string_view header) {
  header = trim(header);
  if (header.empty()) return std::nullopt;
  std::string_view host = header;
  if (header.front() == '[') {
    const auto close = header.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = header.substr(1, close - 1);
    const auto rest = header.substr(close + 1);
    if (!rest.empty() && !(rest.front() == ':' && all_digits(rest.substr(1)))) return std::nullopt;
  } else {
    const auto colon = header.find(':');
    if (colon != std::string_view::npos) {
      if (!all_digits(header.substr(colon + 1))) return std::nullopt;
      host = header.substr(0, colon);
    }
  }
  if (host.empty() || host.find_first_of(" /\\@") != std::string_view::npos) return std::nullopt;
  return lower(host);
}

std::vector<std::string> machine_names() {
  std::vector<std::string> names;
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) == 0 && name[0] != '\0') {
    names.push_back(lower(name.data()));
  }
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) == 0) {
    for (const ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
      if (a->ifa_addr == nullptr) continue;
      const int family = a->ifa_addr->sa_family;
      if (family != AF_INET && family != AF_INET6) continue;
      std::array<char, NI_MAXHOST> host{};
      const socklen_t size = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      if (::getnameinfo(a->ifa_addr, size, host.data(), host.size(), nullptr, 0, NI_NUMERICHOST) ==
          0) {
        std::string address = host.data();
        address = address.substr(0, address.find('%'));  // fe80::1%eth0
        names.push_back(lower(address));
      }
    }
    ::freeifaddrs(list);
  }
  return names;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Every byte of the longer string is looked at, whatever the contents.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

ServeGate::ServeGate(ServeAccess access, std::string listen_host,
                     std::vector<std::string> own_names)
    : access_(std::move(access)),
      listen_host_(lower(listen_host)),
      own_names_(std::move(own_names)),
      key_(access_.api_key) {
  if (!listen_host_.empty() && listen_host_.front() == '[' && listen_host_.back() == ']') {
    listen_host_ = listen_host_.substr(1, listen_host_.size() - 2);
  }
  for (auto& h : access_.allowed_hosts) h = lower(h);
  if (!access_.api_key_env.empty()) {
    const char* value = std::getenv(access_.api_key_env.c_str());
    if (value == nullptr || *value == '\0') {
      throw ConfigError("serve", {fmt::format("serve.api_key_env: the environment variable {} is "
                                              "not set (or empty): no key to require",
                                              access_.api_key_env)});
    }
    key_ = value;
  }
}

bool ServeGate::loopback_only() const {
  return is_loopback_name(listen_host_) || listen_host_.starts_with("127.");
}

bool ServeGate::host_allowed(std::string_view host) const {
  if (is_loopback_name(host) || host == listen_host_) return true;
  if (listens_everywhere(listen_host_) &&
      std::find(own_names_.begin(), own_names_.end(), host) != own_names_.end()) {
    return true;
  }
  for (const auto& allowed : access_.allowed_hosts) {
    if (allowed == "*" || allowed == host) return true;
  }
  return false;
}

bool ServeGate::origin_allowed(std::string_view text,
                               const std::optional<std::string>& host) const {
  // The server's own page: its origin is the address the browser asked (the Host header).
  if (host && lower(text) == "http://" + lower(*host)) return true;
  const auto origin = parse_origin(text);
  for (const auto& pattern : access_.allowed_origins) {
    if (pattern == "*") return true;
    if (origin && origin_matches(*origin, pattern)) return true;
  }
  return false;
}

GateDecision ServeGate::check(const GateRequest& r) const {
  GateDecision d;
  const auto refuse = [&](int status, std::string message) {
    d.status = status;
    d.message = std::move(message);
    d.headers.clear();
    return d;
  };
  // DNS rebinding: a page on evil.example whose name now resolves to this machine.
  if (r.host) {
    const auto host = host_of_host_header(*r.host);
    if (!host || !host_allowed(*host)) {
      return refuse(403, fmt::format("Host '{}' is not allowed here (serve.allowed_hosts)", *r.host));
    }
  }
  // Cross-site requests: browsers name the page that makes them.
  if (r.origin) {
    if (!origin_allowed(*r.origin, r.host)) {
      return refuse(403,
                    fmt::format("Origin '{}' is not allowed here (serve.allowed_origins)", *r.origin));
    }
    d.headers = {{"Access-Control-Allow-Origin", *r.origin}, {"Vary", "Origin"}};
  }
  if (r.method == "OPTIONS") {  // a preflight (or a plain OPTIONS): what the routes take
    d.status = 204;
    d.headers.emplace_back("Allow", "GET, POST, OPTIONS");
    if (r.origin) {
      d.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      d.headers.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type");
      d.headers.emplace_back("Access-Control-Max-Age", "600");
    }
    return d;
  }
  if (r.method == "POST" && r.content_type) {
    const auto type = media_type(*r.content_type);
    const bool browser = r.origin.has_value() || r.sec_fetch_site.has_value();
    // A form on any page can post these without asking first; a browser's fetch declares JSON.
    const bool form_type = type == "text/plain" || type == "multipart/form-data";
    if (type != "application/json" && (form_type || browser)) {
      return refuse(415, fmt::format("Content-Type '{}': the body must be application/json",
                                     *r.content_type));
    }
  }
  if (!key_.empty() && is_api_path(r.path)) {
    static constexpr std::string_view kBearer = "bearer ";
    const std::string_view auth = r.authorization ? trim(*r.authorization) : std::string_view{};
    const bool bearer = auth.size() > kBearer.size() && lower(auth.substr(0, kBearer.size())) == kBearer;
    const auto given = bearer ? trim(auth.substr(kBearer.size())) : std::string_view{};
    if (!bearer || !constant_time_equal(given, key_)) {
      // The CORS headers stay: the page that asked may read the refusal.
      d.status = 401;
      d.message = r.authorization ? "the API key is wrong (Authorization: Bearer KEY)"
                                  : "an API key is required (Authorization: Bearer KEY)";
      d.headers.emplace_back("WWW-Authenticate", "Bearer");
      return d;
    }
  }
  return d;
}

}  // namespace llmfs
