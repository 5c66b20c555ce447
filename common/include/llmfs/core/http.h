#pragma once

#include <string>

namespace llmfs {

/// A URL split the way httplib::Client takes it.
struct UrlParts {
  std::string scheme_host_port;  // "https://host:port"
  std::string path;              // "/a/b.txt" ("/" when the URL has none)
};

/// Splits "scheme://host[:port][/path]"; llmfs::Error naming the URL when it has no scheme.
UrlParts split_url(const std::string& url);

}  // namespace llmfs
