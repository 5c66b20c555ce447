// Catch2 for the tests, 2.x (Debian 12) or 3.x (newer distributions), behind one include.
#pragma once

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#define LLMFS_CATCH3 1
#else
#include <catch2/catch.hpp>
#define LLMFS_CATCH3 0
#endif

#include <string>

namespace llmfs::test {

/// Matcher: the exception message (or string) contains `text`.
#if LLMFS_CATCH3
inline auto contains_text(const std::string& text) { return Catch::Matchers::ContainsSubstring(text); }
#else
inline auto contains_text(const std::string& text) { return Catch::Matchers::Contains(text); }
#endif

}  // namespace llmfs::test
