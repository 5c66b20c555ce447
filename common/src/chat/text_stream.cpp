// Streaming generated text: whole UTF-8 characters, stop strings, deleted markers, stripping.
#include "llmfs/chat/text_stream.h"

#include <algorithm>

#include "llmfs/core/utf8.h"
#include "llmfs/finetune/responses.h"

namespace llmfs {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
// A token sequence that still ends in U+FFFD after this many tokens is not waiting for bytes.
constexpr size_t kMaxHeldTokens = 8;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Length of the longest suffix of text that is a proper prefix of one of the strings.
size_t partial_match(std::string_view text, const std::vector<std::string>& strings) {
  size_t best = 0;
  for (const auto& s : strings) {
    for (size_t n = std::min(text.size(), s.size() - 1); n > best; --n) {
      if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
        best = n;
        break;
      }
    }
  }
  return best;
}

// Byte length of the trailing Python white space of text.
size_t trailing_space(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xc0) == 0x80) --start;
    const auto step = utf8_step(text, start);
    if (!step.valid || start + step.length != end || !is_py_space(step.code_point)) break;
    end = start;
  }
  return text.size() - end;
}

// Byte length of an unfinished UTF-8 character at the end of text (its first bytes only).
size_t unfinished_character(std::string_view text) {
  for (size_t back = 1; back <= std::min<size_t>(4, text.size()); ++back) {
    const auto byte = static_cast<unsigned char>(text[text.size() - back]);
    if ((byte & 0xc0) == 0x80) continue;  // a continuation byte: look further back
    const size_t length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return length > back ? back : 0;
  }
  return 0;
}

// Byte length of the leading Python white space of text.
size_t leading_space(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const auto step = utf8_step(text, pos);
    if (!step.valid || !is_py_space(step.code_point)) break;
    pos += step.length;
  }
  return pos;
}

}  // namespace

std::string TokenTextStream::push(int64_t id) {
  ids_.push_back(id);
  ++held_;
  std::string text = tokenizer_->decode(ids_);
  if (ends_with(text, kReplacement) && held_ < kMaxHeldTokens) return {};  // wait for the rest
  if (text.size() <= emitted_) return {};
  std::string piece = text.substr(emitted_);
  emitted_ = text.size();
  held_ = 0;
  return piece;
}

std::string TokenTextStream::finish() {
  if (ids_.empty()) return {};
  const std::string text = tokenizer_->decode(ids_);
  std::string piece = text.size() > emitted_ ? text.substr(emitted_) : std::string{};
  emitted_ = text.size();
  held_ = 0;
  return piece;
}

StreamFilter::StreamFilter(std::vector<std::string> stops, std::vector<std::string> removes,
                           bool strip)
    : stops_(std::move(stops)), removes_(std::move(removes)), strip_(strip) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
  std::erase_if(removes_, [](const std::string& s) { return s.empty(); });
}

std::string StreamFilter::release(std::string text, bool final) {
  if (!strip_) return text;
  text = spaces_ + text;
  spaces_.clear();
  if (!started_) {
    text.erase(0, leading_space(text));
    if (!final && text.size() == unfinished_character(text)) {  // maybe more leading space
      spaces_ = std::move(text);
      return {};
    }
    if (text.empty()) return {};
    started_ = true;
  }
  // Held back until more text shows whether they end the answer: trailing white space and a
  // character whose last bytes have not come yet (it may be white space).
  const size_t unfinished = final ? 0 : unfinished_character(text);
  const size_t n = trailing_space(std::string_view(text).substr(0, text.size() - unfinished));
  if (!final) spaces_ = text.substr(text.size() - unfinished - n);
  text.resize(text.size() - unfinished - n);
  return text;
}

std::string StreamFilter::push(std::string_view text) {
  if (stopped_) return {};
  pending_ += text;
  std::string out;
  for (;;) {
    // The earliest stop or remove string in what is pending (a stop wins a tie).
    size_t at = std::string::npos, length = 0;
    bool stop = false;
    for (const auto& s : stops_) {
      const size_t i = pending_.find(s);
      if (i < at) at = i, length = s.size(), stop = true;
    }
    for (const auto& s : removes_) {
      const size_t i = pending_.find(s);
      if (i < at) at = i, length = s.size(), stop = false;
    }
    if (at == std::string::npos) break;
    out += pending_.substr(0, at);
    if (stop) {
      pending_.clear();
      stopped_ = true;
      return release(std::move(out), true);
    }
    pending_.erase(0, at + length);
  }
  const size_t keep = std::max(partial_match(pending_, stops_), partial_match(pending_, removes_));
  out += pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return release(std::move(out), false);
}

std::string StreamFilter::finish() {
  if (stopped_) return {};
  std::string rest = std::move(pending_);
  pending_.clear();
  return release(std::move(rest), true);
}

}  // namespace llmfs
