#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace llmfs {

/// An input problem (a file, a key, a line, a tensor) that stops the program with a one-line
/// message. The message names what is wrong and, where there is something to do, what to do.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Throws llmfs::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

/// Thrown to end the program early and successfully (e.g. after --print-config); run_main
/// returns its code.
struct EarlyExit {
  int code = 0;
};

}  // namespace llmfs
