#include "llmfs/core/utf8.h"

#include <algorithm>

#include "llmfs/core/error.h"

namespace llmfs {

namespace {

constexpr bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

}  // namespace

Utf8Step utf8_step(std::string_view text, std::size_t pos) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return {lead, 1, true};

  // Expected length and the allowed range of the second byte (Unicode Table 3-7).
  std::size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  char32_t cp = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2, cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 3, cp = lead & 0x0F;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 4, cp = lead & 0x07;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {0, 1, false};  // 0x80..0xC1 or 0xF5..0xFF cannot start a sequence
  }

  std::size_t i = 1;
  for (; i < need; ++i) {
    if (pos + i >= text.size()) return {0, i, false};  // truncated: the prefix is one subpart
    const unsigned char b = byte(i);
    const bool ok = (i == 1) ? (b >= lo && b <= hi) : is_continuation(b);
    if (!ok) return {0, i, false};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, need, true};
}

int64_t utf8_length(std::string_view text) {
  int64_t count = 0;
  for (std::size_t pos = 0; pos < text.size(); ++count) pos += utf8_step(text, pos).length;
  return count;
}

std::string_view utf8_slice(std::string_view text, int64_t begin, int64_t end) {
  if (begin < 0 || end < 0) fail("utf8_slice: negative index ({}:{})", begin, end);
  // The byte offset `count` code points after byte `pos` (or the end of the text).
  const auto skip = [&](std::size_t pos, int64_t count) {
    for (; count > 0 && pos < text.size(); --count) pos += utf8_step(text, pos).length;
    return pos;
  };
  const std::size_t first = skip(0, begin);
  if (end <= begin) return text.substr(first, 0);
  return text.substr(first, skip(first, end - begin) - first);
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::size_t find_invalid_utf8(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {  // ASCII fast path
      ++pos;
      continue;
    }
    const Utf8Step step = utf8_step(text, pos);
    if (!step.valid) return pos;
    pos += step.length;
  }
  return std::string_view::npos;
}

void require_valid_utf8(std::string_view text, std::string_view what) {
  const std::size_t bad = find_invalid_utf8(text);
  if (bad != std::string_view::npos) {
    fail("{}: invalid UTF-8 at byte {} (0x{:02X})", what, bad,
         static_cast<unsigned>(static_cast<unsigned char>(text[bad])));
  }
}

std::string utf8_replace_invalid(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const Utf8Step step = utf8_step(bytes, pos);
    if (step.valid) {
      out.append(bytes.substr(pos, step.length));
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
    }
    pos += step.length;
  }
  return out;
}

}  // namespace llmfs
