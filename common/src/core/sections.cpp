#include "llmfs/core/sections.h"

#include <fmt/format.h>

#include <cstdio>

#include "llmfs/core/error.h"

namespace llmfs {

int run_sections(const std::vector<Section>& sections, const std::string& only) {
  bool found = only.empty();
  bool first = true;
  for (const auto& section : sections) {
    if (!only.empty() && section.number != only && !section.number.starts_with(only + "."))
      continue;
    found = true;
    const std::string heading = section.number + " " + section.title;
    fmt::print("{}{}\n{}\n\n", first ? "" : "\n", heading, std::string(heading.size(), '-'));
    first = false;
    section.run();
    std::fflush(stdout);
  }
  if (!found) {
    std::string numbers;
    for (const auto& s : sections) numbers += (numbers.empty() ? "" : ", ") + s.number;
    fail("--section: unknown section '{}' (available: {})", only, numbers);
  }
  return 0;
}

}  // namespace llmfs
