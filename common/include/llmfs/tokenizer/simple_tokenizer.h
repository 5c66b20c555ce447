#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "llmfs/tokenizer/tokenizer.h"

namespace llmfs {

/// Python's str.isspace() for one code point, which is what `\s` and str.strip() use in the
/// book's regular expressions (U+0009..U+000D, U+001C..U+001F, U+0020, U+0085, U+00A0, U+1680,
/// U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000).
bool is_python_space(char32_t code_point);

/// Length of a delimiter that starts at text[pos] (0: none there).
using DelimiterMatcher = std::function<std::size_t(std::string_view text, std::size_t pos)>;

/// Python's re.split(r'(...)', text) for a pattern whose one capturing group is the whole
/// delimiter: the pieces between delimiters and the delimiters themselves, empty pieces included.
///   split_keep_delimiters("a, b", matcher for [,]|\s)  ->  {"a", ",", "", " ", "b"}
std::vector<std::string> split_keep_delimiters(std::string_view text,
                                               const DelimiterMatcher& delimiter_at);

/// [item.strip() for item in items if item.strip()]
std::vector<std::string> strip_and_drop_empty(const std::vector<std::string>& items);

/// The book's splitting rule (§2.2; BOOK.md §3.1): cut at each of , . : ; ? _ ! " ( ) ' at "--"
/// and at every whitespace character, keep the delimiters, strip every item and drop empty ones.
/// "Hello, world. Is this-- a test?" -> Hello , world . Is this -- a test ?
std::vector<std::string> simple_split(std::string_view text);

/// The distinct tokens sorted by code point (Python's sorted(set(tokens))), then `extra` appended
/// in the order given (e.g. {"<|endoftext|>", "<|unk|>"}, ids 1130 and 1131 on the-verdict).
std::vector<std::string> build_vocabulary(const std::vector<std::string>& tokens,
                                          const std::vector<std::string>& extra = {});

/// The book's first tokenizer (§2.3): simple_split, then each item's index in the vocabulary. An
/// item not in the vocabulary is an llmfs::Error naming it (the book's KeyError). Decoding joins
/// the tokens with spaces and removes the whitespace before , . ? ! " ( ) ' (so "It's" comes back
/// as "It' s", C2-11). EncodeOptions are ignored: "<|endoftext|>" is an ordinary vocabulary item.
class SimpleTokenizerV1 : public Tokenizer {
 public:
  /// `vocabulary[id]` is the token of that id; tokens must be unique.
  explicit SimpleTokenizerV1(std::vector<std::string> vocabulary);

  std::vector<int64_t> encode(std::string_view text,
                              const EncodeOptions& options = {}) const override;
  std::string decode(std::span<const int64_t> ids) const override;
  int64_t vocab_size() const override;
  std::optional<int64_t> special_token_id(std::string_view token) const override;
  std::string name() const override;

  const std::vector<std::string>& vocabulary() const { return vocabulary_; }
  std::optional<int64_t> token_id(std::string_view token) const;

 protected:
  std::string join_tokens(std::span<const int64_t> ids) const;
  std::vector<std::string> vocabulary_;
  std::unordered_map<std::string, int64_t> ids_;
};

/// The book's second tokenizer (§2.4): unknown items become "<|unk|>" (which the vocabulary must
/// contain), and decoding also removes the whitespace before : and ;.
///   SimpleTokenizerV2 tok(build_vocabulary(simple_split(text), {"<|endoftext|>", "<|unk|>"}));
class SimpleTokenizerV2 final : public SimpleTokenizerV1 {
 public:
  explicit SimpleTokenizerV2(std::vector<std::string> vocabulary);

  std::vector<int64_t> encode(std::string_view text,
                              const EncodeOptions& options = {}) const override;
  std::string decode(std::span<const int64_t> ids) const override;
  std::string name() const override;

 private:
  int64_t unk_id_ = 0;
};

}  // namespace llmfs
