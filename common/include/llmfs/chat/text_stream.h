#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llmfs/tokenizer/tokenizer.h"

namespace llmfs {

/// Turns token ids into text as they are generated. A character whose UTF-8 bytes are split
/// across tokens (Korean, emoji: byte-level BPE often splits them) is held back until its last
/// byte arrives, so every piece returned is whole UTF-8 and the pieces joined equal
/// tokenizer.decode(all ids).
class TokenTextStream {
 public:
  explicit TokenTextStream(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  /// The text that id completes (often empty while a character is unfinished).
  std::string push(int64_t id);
  /// The rest: an unfinished character at the end becomes U+FFFD, as decode() makes it.
  std::string finish();

 private:
  const Tokenizer* tokenizer_;
  std::vector<int64_t> ids_;
  size_t emitted_ = 0;  // bytes of decode(ids_) already returned
  size_t held_ = 0;     // tokens pushed since text was last returned
};

/// Shapes generated text while it streams, with the same result as applying the rules to the
/// whole text at the end: the text ends before the first of `stops`; every occurrence of a
/// `removes` string is deleted (left to right, as Python's str.replace); with `strip`, leading
/// and trailing white space goes (Python's str.strip). Text that could still become one of
/// those strings, or trailing white space, is held back until it is decided.
class StreamFilter {
 public:
  StreamFilter(std::vector<std::string> stops, std::vector<std::string> removes, bool strip);

  /// What may be shown now of the text so far.
  std::string push(std::string_view text);
  /// The held-back rest at the end of generation.
  std::string finish();
  /// A stop string was seen: the answer is complete, generation can end.
  bool stopped() const { return stopped_; }

 private:
  std::string release(std::string text, bool final);

  std::vector<std::string> stops_, removes_;
  bool strip_;
  bool stopped_ = false;
  bool started_ = false;  // strip: a non-space character was returned
  std::string pending_;   // not yet scanned to the end (may begin a stop or remove string)
  std::string spaces_;    // strip: white space held until more text follows it
};

}  // namespace llmfs
