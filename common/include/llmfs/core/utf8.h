#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace llmfs {

/// One step of UTF-8 decoding: the code point at a position and how many bytes it took.
/// For an ill-formed sequence `valid` is false and `length` is the length of its maximal
/// subpart (Unicode §3.9), the unit Python's errors="replace" turns into one U+FFFD.
struct Utf8Step {
  char32_t code_point = 0;
  std::size_t length = 1;
  bool valid = true;
};

/// Decodes the sequence starting at text[pos] (pos < text.size()).
Utf8Step utf8_step(std::string_view text, std::size_t pos);

/// Number of code points, Python's len(str) of the decoded text. An ill-formed sequence counts
/// once per maximal subpart (as utf8_replace_invalid would make it one U+FFFD).
int64_t utf8_length(std::string_view text);

/// Python's text[begin:end] by code points, as a view of the bytes: 0 <= begin, end (no negative
/// indices: llmfs::Error), each clamped to the length; empty when end <= begin.
///
///   utf8_slice("운수 좋은 날", 3, 5)  ->  "좋은"
std::string_view utf8_slice(std::string_view text, int64_t begin, int64_t end);

/// Appends the UTF-8 encoding of a code point.
void append_utf8(std::string& out, char32_t code_point);

/// Byte offset of the first ill-formed sequence, or npos when the text is valid UTF-8.
std::size_t find_invalid_utf8(std::string_view text);

/// Throws llmfs::Error naming `what` and the byte offset when the text is not valid UTF-8.
void require_valid_utf8(std::string_view text, std::string_view what);

/// Bytes to valid UTF-8 as Python's bytes.decode("utf-8", errors="replace") does: each maximal
/// ill-formed subpart becomes U+FFFD.
std::string utf8_replace_invalid(std::string_view bytes);

}  // namespace llmfs
