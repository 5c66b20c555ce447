// libFuzzer target: the request gate of `ch07 serve` (serve_gate.h), over the headers a client
// controls. The first byte picks the server's setup (listening on 127.0.0.1 or 0.0.0.0, with or
// without an API key, allowed hosts and origins added or not) and which headers are present; the
// rest is split at newlines into the method, path, Host, Origin, Content-Type, Authorization and
// Sec-Fetch-Site values. Properties:
//   - every answer is one of the documented statuses: 0 (through), 204, 401, 403, 415;
//   - a refusal has a one-line message; a refused Host or Origin (403) carries no CORS headers;
//   - nothing passes with a Host outside the allowed names, or an Origin outside the allowed
//     origins and not the page's own;
//   - with a key, an API route passes only with "Bearer <the key>";
//   - what passes with an Origin answers with Access-Control-Allow-Origin equal to it.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input_file.h"
#include "llmfs/chat/serve_gate.h"

namespace {

using llmfs::fuzz::broken;

constexpr std::string_view kKey = "fuzz-key";

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
  return out;
}

std::string header(const llmfs::GateDecision& d, std::string_view name) {
  for (const auto& [k, v] : d.headers) {
    if (k == name) return v;
  }
  return "";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t setup = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string> fields;
  for (size_t pos = 0; fields.size() < 7;) {
    const size_t end = rest.find('\n', pos);
    fields.emplace_back(rest.substr(pos, end == std::string_view::npos ? rest.npos : end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  fields.resize(7);

  llmfs::ServeAccess access;
  const bool with_key = (setup & 1) != 0;
  const bool everywhere = (setup & 2) != 0;
  if (with_key) access.api_key = std::string(kKey);
  if ((setup & 4) != 0) access.allowed_hosts = {"box.lan"};
  if ((setup & 8) != 0) access.allowed_origins.push_back("https://ui.example:*");
  const std::vector<std::string> own = {"box", "10.0.0.7"};
  const llmfs::ServeGate gate(access, everywhere ? "0.0.0.0" : "127.0.0.1", own);

  llmfs::GateRequest r;
  r.method = fields[0];
  r.path = fields[1];
  const auto maybe = [&](int bit, const std::string& value) -> std::optional<std::string> {
    return (setup & (16 << bit)) != 0 ? std::optional<std::string>(value) : std::nullopt;
  };
  r.host = maybe(0, fields[2]);
  r.origin = maybe(1, fields[3]);
  r.content_type = maybe(2, fields[4]);
  r.authorization = maybe(3, fields[5]);
  if (!fields[6].empty()) r.sec_fetch_site = fields[6];

  const auto d = gate.check(r);
  if (d.status != 0 && d.status != 204 && d.status != 401 && d.status != 403 && d.status != 415) {
    broken("an undocumented status", size);
  }
  if (d.status >= 400 && (d.message.empty() || d.message.find('\n') != std::string::npos)) {
    broken("a refusal without a one-line message", size);
  }
  if (d.status == 0 || d.status == 204) {
    if (r.host) {
      const auto host = llmfs::host_of_host_header(*r.host);
      if (!host) broken("a malformed Host passed", size);
      const bool named = *host == "localhost" || *host == "127.0.0.1" || *host == "::1" ||
                         (!everywhere && *host == "127.0.0.1") ||
                         (everywhere && (*host == "0.0.0.0" || *host == "box" || *host == "10.0.0.7")) ||
                         ((setup & 4) != 0 && *host == "box.lan");
      if (!named) broken("a Host outside the allowed names passed", size);
    }
    if (r.origin) {
      const auto o = lower(*r.origin);
      const bool loopback = o.starts_with("http://localhost") || o.starts_with("http://127.0.0.1") ||
                            o.starts_with("http://[::1]") || o.starts_with("https://localhost") ||
                            o.starts_with("https://127.0.0.1") || o.starts_with("https://[::1]");
      const bool own_page = r.host && o == "http://" + lower(*r.host);
      const bool listed = (setup & 8) != 0 && o.starts_with("https://ui.example");
      if (!loopback && !own_page && !listed) broken("an Origin outside the allowed ones passed", size);
      if (header(d, "Access-Control-Allow-Origin") != *r.origin) {
        broken("an allowed Origin without Access-Control-Allow-Origin", size);
      }
    }
    const bool api = r.path.starts_with("/api/") || r.path.starts_with("/v1/") ||
                     r.path.starts_with("/llmfs/");
    if (d.status == 0 && with_key && api) {
      const std::string auth = r.authorization ? *r.authorization : "";
      const auto trimmed = [](std::string s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.erase(s.begin());
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
        return s;
      };
      const auto t = trimmed(auth);
      if (t.size() < 7 || lower(t.substr(0, 7)) != "bearer " || trimmed(t.substr(7)) != kKey) {
        broken("an API route passed without the key", size);
      }
    }
  } else if (d.status == 403 && !header(d, "Access-Control-Allow-Origin").empty()) {
    broken("a refused Host or Origin answered with CORS headers", size);
  }
  return 0;
}
