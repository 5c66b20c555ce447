// libFuzzer target: a YAML config with `key.sub=value` overrides, read by real section parsers
// (model:, tokenizer:). Properties: malformed YAML, bad overrides, unknown keys and bad
// values are an llmfs::Error (any other exception or a crash is a finding); a config that loads
// resolves to YAML that loads again to the same resolved YAML (the saved config reproduces the run).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "llmfs/config/config_node.h"
#include "llmfs/core/error.h"
#include "llmfs/model/gpt_config.h"
#include "llmfs/tokenizer/tokenizer_config.h"

namespace {

// Reads what a chapter's config reads from these sections; the resolved YAML of the document.
std::string load(std::string_view yaml, const std::vector<std::string>& overrides) {
  auto document = llmfs::ConfigDocument::from_string(yaml, "fuzz.yaml", overrides);
  const auto root = document.root();
  llmfs::parse_gpt_config(root.child("model"));
  llmfs::parse_tokenizer_config(root.child("tokenizer"));
  document.finish();
  return document.resolved_yaml();
}

}  // namespace

// Input: YAML text, then (after a NUL byte) overrides, one a line.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const auto yaml = input.substr(0, split);
  std::vector<std::string> overrides;
  if (split != std::string_view::npos) {
    for (size_t pos = split + 1; pos <= input.size();) {
      const size_t end = std::min(input.find('\n', pos), input.size());
      overrides.emplace_back(input.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  std::string resolved;
  try {
    resolved = load(yaml, overrides);
  } catch (const llmfs::Error&) {
    return 0;  // refused with a message: what bad input must get
  }
  std::string again;
  try {
    again = load(resolved, {});
  } catch (const llmfs::Error& e) {
    std::fprintf(stderr, "property violated: the resolved config does not load: %s\n---\n%s\n",
                 e.what(), resolved.c_str());
    std::abort();
  }
  if (again != resolved) {
    std::fprintf(stderr, "property violated: resolving twice changes the YAML\n---\n%s\n---\n%s\n",
                 resolved.c_str(), again.c_str());
    std::abort();
  }
  return 0;
}
