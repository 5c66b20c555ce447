#include "llmfs/core/http.h"

#include "llmfs/core/error.h"

namespace llmfs {

UrlParts split_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos || scheme_end == 0) {
    fail("malformed URL '{}' (expected scheme://host[:port][/path])", url);
  }
  const auto path_start = url.find('/', scheme_end + 3);
  if (path_start == std::string::npos) return {url, "/"};
  return {url.substr(0, path_start), url.substr(path_start)};
}

}  // namespace llmfs
