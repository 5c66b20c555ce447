#pragma once

#include <functional>
#include <string>
#include <vector>

namespace llmfs {

/// One narrated section of a chapter: its book number, its title and what it prints.
struct Section {
  std::string number;  // "2.6"
  std::string title;   // "Data sampling with a sliding window"
  std::function<void()> run;
};

/// Runs all sections in order, or only those `only` names (non-empty): the section of that
/// number and its subsections ("5.3" runs 5.3, 5.3.1, 5.3.2 ...), each under a heading
/// ("2.6 Data sampling with a sliding window" and an underline) on stdout. An unknown number is
/// an llmfs::Error listing the available ones. Returns 0.
int run_sections(const std::vector<Section>& sections, const std::string& only = "");

}  // namespace llmfs
