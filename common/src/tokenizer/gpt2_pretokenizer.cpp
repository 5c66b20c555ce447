// GPT-2's pre-tokenisation pattern as a hand-written scanner (BOOK.md §1.2).
//
// Each alternative of the pattern, tried in order at the start of a chunk, becomes one branch:
// contractions, then an optional space and a run of one class (letters, numbers, other), then
// whitespace runs with the (?!\S) rule. Because every character belongs to exactly one of the
// classes letter / number / whitespace / other, some alternative always matches, so chunks are
// contiguous and a scanner that only looks forward reproduces leftmost-first regex matching.
#include "llmfs/tokenizer/gpt2_pretokenizer.h"

#include <unicode/uchar.h>

#include <array>
#include <cstdint>
#include <memory>

namespace llmfs {

namespace {

enum CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

// Letters and numbers that Unicode 15.1 and 16.0 added, which tiktoken's regex tables know and
// ICU 72 (Debian 12, Unicode 15.0) reports as unassigned. Consulted only for code points ICU calls
// unassigned, so a newer ICU takes precedence. Found by classifying every code point with tiktoken
// 0.14 (probes "x" + c, "1" + c, "\t" + c) and comparing with ICU; nothing else differs.
struct ClassRange {
  char32_t first, last;
  CharClass cls;
};
constexpr ClassRange kNewerThanIcu72[] = {
    {0x1C89, 0x1C8A, kLetter},   {0xA7CB, 0xA7CD, kLetter},   {0xA7DA, 0xA7DC, kLetter},
    {0x105C0, 0x105F3, kLetter}, {0x10D40, 0x10D49, kNumber}, {0x10D4A, 0x10D65, kLetter},
    {0x10D6F, 0x10D85, kLetter}, {0x10EC2, 0x10EC4, kLetter}, {0x11380, 0x11389, kLetter},
    {0x1138B, 0x1138B, kLetter}, {0x1138E, 0x1138E, kLetter}, {0x11390, 0x113B5, kLetter},
    {0x113B7, 0x113B7, kLetter}, {0x113D1, 0x113D1, kLetter}, {0x113D3, 0x113D3, kLetter},
    {0x116D0, 0x116E3, kNumber}, {0x11BC0, 0x11BE0, kLetter}, {0x11BF0, 0x11BF9, kNumber},
    {0x13460, 0x143FA, kLetter}, {0x16100, 0x1611D, kLetter}, {0x16130, 0x16139, kNumber},
    {0x16D40, 0x16D6C, kLetter}, {0x16D70, 0x16D79, kNumber}, {0x18CFF, 0x18CFF, kLetter},
    {0x1CCF0, 0x1CCF9, kNumber}, {0x1E5D0, 0x1E5ED, kLetter}, {0x1E5F0, 0x1E5F0, kLetter},
    {0x1E5F1, 0x1E5FA, kNumber}, {0x2EBF0, 0x2EE5D, kLetter},
};

CharClass classify_icu(char32_t cp) {
  const auto c = static_cast<UChar32>(cp);
  if (u_isUWhiteSpace(c)) return kSpace;  // Rust regex's \s: the White_Space property
  const uint32_t mask = U_GET_GC_MASK(c);
  if (mask & U_GC_L_MASK) return kLetter;
  if (mask & U_GC_N_MASK) return kNumber;
  if (u_charType(c) == U_UNASSIGNED) {
    for (const auto& r : kNewerThanIcu72) {
      if (cp >= r.first && cp <= r.last) return r.cls;
    }
  }
  return kOther;
}

// The classes of the Basic Multilingual Plane, computed once; beyond it ICU is asked directly.
const std::array<uint8_t, 0x10000>& bmp_classes() {
  static const auto table = [] {
    auto t = std::make_unique<std::array<uint8_t, 0x10000>>();
    for (char32_t cp = 0; cp < 0x10000; ++cp) (*t)[cp] = classify_icu(cp);
    return t;
  }();
  return *table;
}

struct CodePoint {
  char32_t value;
  std::size_t length;
};

// Decodes the code point at `pos` of valid UTF-8. Invalid bytes (which encode() rejects before
// calling us) are read as one-byte "other" characters, so scanning still always advances.
inline CodePoint decode_at(std::string_view s, std::size_t pos) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[pos + i]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return {b0, 1};
  const std::size_t left = s.size() - pos;
  if (b0 >= 0xF0 && left >= 4) {
    return {(char32_t(b0 & 0x07) << 18) | (char32_t(byte(1) & 0x3F) << 12) |
                (char32_t(byte(2) & 0x3F) << 6) | char32_t(byte(3) & 0x3F),
            4};
  }
  if (b0 >= 0xE0 && b0 < 0xF0 && left >= 3) {
    return {
        (char32_t(b0 & 0x0F) << 12) | (char32_t(byte(1) & 0x3F) << 6) | char32_t(byte(2) & 0x3F),
        3};
  }
  if (b0 >= 0xC0 && b0 < 0xE0 && left >= 2) {
    return {(char32_t(b0 & 0x1F) << 6) | char32_t(byte(1) & 0x3F), 2};
  }
  return {0xFFFD, 1};
}

inline CharClass classify(char32_t cp) {
  if (cp < 0x10000) return static_cast<CharClass>(bmp_classes()[cp]);
  if (cp > 0x10FFFF) return kOther;
  return classify_icu(cp);
}

constexpr std::array<uint8_t, 128> make_ascii_classes() {
  std::array<uint8_t, 128> t{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      t[c] = kLetter;
    } else if (c >= '0' && c <= '9') {
      t[c] = kNumber;
    } else if (c == ' ' || (c >= 0x09 && c <= 0x0D)) {  // White_Space in ASCII
      t[c] = kSpace;
    } else {
      t[c] = kOther;
    }
  }
  return t;
}
constexpr std::array<uint8_t, 128> kAsciiClasses = make_ascii_classes();

struct Classified {
  CharClass cls;
  std::size_t length;
};

inline Classified classify_at(std::string_view s, std::size_t pos) {
  const auto b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) return {static_cast<CharClass>(kAsciiClasses[b]), 1};
  const CodePoint cp = decode_at(s, pos);
  return {classify(cp.value), cp.length};
}

// End of the run of characters of class `cls` that starts at `pos` (whose class is `cls`).
inline std::size_t run_end(std::string_view s, std::size_t pos, CharClass cls) {
  const std::size_t n = s.size();
  while (pos < n) {
    const auto b = static_cast<unsigned char>(s[pos]);
    if (b < 0x80) {
      if (kAsciiClasses[b] != cls) break;
      ++pos;
      continue;
    }
    const Classified c = classify_at(s, pos);
    if (c.cls != cls) break;
    pos += c.length;
  }
  return pos;
}

}  // namespace

std::size_t gpt2_chunk_end(std::string_view text, std::size_t pos) {
  const std::size_t n = text.size();
  const char c = text[pos];

  // 's 't 're 've 'm 'll 'd
  if (c == '\'' && pos + 1 < n) {
    const char c1 = text[pos + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return pos + 2;
    if (pos + 2 < n) {
      const char c2 = text[pos + 2];
      if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
        return pos + 3;
    }
  }

  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional space, then a run of one class.
  if (c == ' ' && pos + 1 < n) {
    const Classified next = classify_at(text, pos + 1);
    if (next.cls != kSpace) return run_end(text, pos + 1 + next.length, next.cls);
  }
  const Classified first = classify_at(text, pos);
  if (first.cls != kSpace) return run_end(text, pos + first.length, first.cls);

  // "\s+(?!\S)" then "\s+": a whitespace run that reaches the end of the text is one chunk;
  // one followed by a non-space leaves its last character to start the next chunk (so that
  // " word" stays together), unless it is that single character.
  std::size_t last = pos;
  std::size_t end = pos + first.length;
  while (end < n) {
    const Classified next = classify_at(text, end);
    if (next.cls != kSpace) break;
    last = end;
    end += next.length;
  }
  if (end == n || last == pos) return end;
  return last;
}

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  std::vector<std::string_view> chunks;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = gpt2_chunk_end(text, pos);
    chunks.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return chunks;
}

}  // namespace llmfs
