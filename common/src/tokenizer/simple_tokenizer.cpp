// The book's regex tokenizers (§2.2-2.4), without a regex engine: the splitting and decoding
// rules of BOOK.md §3.1 written as scanners, with Python's notion of whitespace.
#include "llmfs/tokenizer/simple_tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "llmfs/core/error.h"
#include "llmfs/core/utf8.h"

namespace llmfs {

namespace {

// Length of the whitespace character at pos, or 0.
std::size_t space_at(std::string_view text, std::size_t pos) {
  const Utf8Step step = utf8_step(text, pos);
  return step.valid && is_python_space(step.code_point) ? step.length : 0;
}

// The book's delimiter: ([,.:;?_!"()\']|--|\s)
std::size_t book_delimiter_at(std::string_view text, std::size_t pos) {
  static constexpr std::string_view kSingle = ",.:;?_!\"()'";
  if (kSingle.find(text[pos]) != std::string_view::npos) return 1;
  if (text.substr(pos, 2) == "--") return 2;
  return space_at(text, pos);
}

// Python's repr quoting of a token, for messages ('Hello', "It's").
std::string python_quoted(std::string_view token) {
  const char quote =
      token.find('\'') != std::string_view::npos && token.find('"') == std::string_view::npos
          ? '"'
          : '\'';
  return fmt::format("{}{}{}", quote, token, quote);
}

// re.sub(r'\s+([<punctuation>])', r'\1', text)
std::string remove_space_before(std::string_view text, std::string_view punctuation) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t len = space_at(text, pos);
    if (len == 0) {
      out.push_back(text[pos++]);
      continue;
    }
    std::size_t end = pos;
    while (end < text.size() && (len = space_at(text, end)) > 0) end += len;
    const bool drop = end < text.size() && punctuation.find(text[end]) != std::string_view::npos;
    if (!drop) out.append(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

}  // namespace

bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::vector<std::string> split_keep_delimiters(std::string_view text,
                                               const DelimiterMatcher& delimiter_at) {
  std::vector<std::string> items;
  std::size_t start = 0, pos = 0;
  while (pos < text.size()) {
    const std::size_t len = delimiter_at(text, pos);
    if (len == 0) {
      pos += utf8_step(text, pos).length;
      continue;
    }
    items.emplace_back(text.substr(start, pos - start));
    items.emplace_back(text.substr(pos, len));
    pos += len;
    start = pos;
  }
  items.emplace_back(text.substr(start));
  return items;
}

std::vector<std::string> strip_and_drop_empty(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const auto& item : items) {
    std::string_view s = item;
    while (!s.empty()) {  // leading whitespace
      const std::size_t len = space_at(s, 0);
      if (len == 0) break;
      s.remove_prefix(len);
    }
    // Trailing whitespace: find the end of the last non-space character.
    std::size_t end = 0, pos = 0;
    while (pos < s.size()) {
      const std::size_t len = space_at(s, pos);
      const std::size_t step = len ? len : utf8_step(s, pos).length;
      if (!len) end = pos + step;
      pos += step;
    }
    if (end > 0) out.emplace_back(s.substr(0, end));
  }
  return out;
}

std::vector<std::string> simple_split(std::string_view text) {
  return strip_and_drop_empty(split_keep_delimiters(text, book_delimiter_at));
}

std::vector<std::string> build_vocabulary(const std::vector<std::string>& tokens,
                                          const std::vector<std::string>& extra) {
  // Byte order of UTF-8 is code point order, which is how Python sorts str.
  std::vector<std::string> vocab = tokens;
  std::sort(vocab.begin(), vocab.end());
  vocab.erase(std::unique(vocab.begin(), vocab.end()), vocab.end());
  for (const auto& token : extra) {
    if (std::find(vocab.begin(), vocab.end(), token) != vocab.end()) {
      fail("build_vocabulary: {} is already in the vocabulary", python_quoted(token));
    }
    vocab.push_back(token);
  }
  return vocab;
}

// --- SimpleTokenizerV1 -----------------------------------------------------------------------

SimpleTokenizerV1::SimpleTokenizerV1(std::vector<std::string> vocabulary)
    : vocabulary_(std::move(vocabulary)) {
  if (vocabulary_.empty()) fail("SimpleTokenizer: empty vocabulary");
  for (std::size_t id = 0; id < vocabulary_.size(); ++id) {
    require_valid_utf8(vocabulary_[id], fmt::format("SimpleTokenizer: vocabulary entry {}", id));
    if (!ids_.emplace(vocabulary_[id], static_cast<int64_t>(id)).second) {
      fail("SimpleTokenizer: {} appears twice in the vocabulary (ids {} and {})",
           python_quoted(vocabulary_[id]), ids_.at(vocabulary_[id]), id);
    }
  }
}

std::vector<int64_t> SimpleTokenizerV1::encode(std::string_view text, const EncodeOptions&) const {
  require_valid_utf8(text, "text to encode");
  std::vector<int64_t> ids;
  for (const auto& item : simple_split(text)) {
    const auto it = ids_.find(item);
    if (it == ids_.end()) {
      fail(
          "SimpleTokenizerV1: unknown token {} (not in the vocabulary; SimpleTokenizerV2 maps it "
          "to <|unk|>)",
          python_quoted(item));
    }
    ids.push_back(it->second);
  }
  return ids;
}

std::string SimpleTokenizerV1::join_tokens(std::span<const int64_t> ids) const {
  std::string text;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (id < 0 || id >= vocab_size())
      fail("decode: token id {} out of range (vocabulary size {})", id, vocab_size());
    if (i > 0) text.push_back(' ');
    text += vocabulary_[id];
  }
  return text;
}

std::string SimpleTokenizerV1::decode(std::span<const int64_t> ids) const {
  return remove_space_before(join_tokens(ids), ",.?!\"()'");
}

int64_t SimpleTokenizerV1::vocab_size() const { return static_cast<int64_t>(vocabulary_.size()); }

std::optional<int64_t> SimpleTokenizerV1::special_token_id(std::string_view token) const {
  if (token.size() < 4 || token.substr(0, 2) != "<|" || token.substr(token.size() - 2) != "|>")
    return std::nullopt;
  return token_id(token);
}

std::string SimpleTokenizerV1::name() const {
  return fmt::format("SimpleTokenizerV1 ({} tokens)", vocab_size());
}

std::optional<int64_t> SimpleTokenizerV1::token_id(std::string_view token) const {
  const auto it = ids_.find(std::string(token));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

// --- SimpleTokenizerV2 -----------------------------------------------------------------------

SimpleTokenizerV2::SimpleTokenizerV2(std::vector<std::string> vocabulary)
    : SimpleTokenizerV1(std::move(vocabulary)) {
  const auto unk = token_id("<|unk|>");
  if (!unk) fail("SimpleTokenizerV2: the vocabulary has no <|unk|> token");
  unk_id_ = *unk;
}

std::vector<int64_t> SimpleTokenizerV2::encode(std::string_view text, const EncodeOptions&) const {
  require_valid_utf8(text, "text to encode");
  std::vector<int64_t> ids;
  for (const auto& item : simple_split(text)) {
    const auto it = ids_.find(item);
    ids.push_back(it == ids_.end() ? unk_id_ : it->second);
  }
  return ids;
}

std::string SimpleTokenizerV2::decode(std::span<const int64_t> ids) const {
  return remove_space_before(join_tokens(ids), ",.:;?!\"()'");
}

std::string SimpleTokenizerV2::name() const {
  return fmt::format("SimpleTokenizerV2 ({} tokens)", vocab_size());
}

}  // namespace llmfs
