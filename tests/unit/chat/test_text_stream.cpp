#include "llmfs/chat/text_stream.h"

#include <random>

#include "catch.h"
#include "llmfs/finetune/responses.h"

namespace {

// The rules applied to the whole text at once: cut at the first stop string, delete the
// remove strings left to right (Python's str.replace), strip (Python's str.strip).
std::string whole(std::string text, const std::vector<std::string>& stops,
                  const std::vector<std::string>& removes, bool strip) {
  size_t cut = std::string::npos;
  size_t pos = 0;
  std::string out;
  // Scan as the filter does: the earliest stop or remove string decides.
  for (;;) {
    size_t at = std::string::npos, len = 0;
    bool stop = false;
    for (const auto& s : stops) {
      const auto i = text.find(s, pos);
      if (i < at) at = i, len = s.size(), stop = true;
    }
    for (const auto& s : removes) {
      const auto i = text.find(s, pos);
      if (i < at) at = i, len = s.size(), stop = false;
    }
    if (at == std::string::npos) break;
    out += text.substr(pos, at - pos);
    pos = at + len;
    if (stop) {
      cut = at;
      break;
    }
  }
  if (cut == std::string::npos) out += text.substr(pos);
  return strip ? llmfs::py_strip(out) : out;
}

std::string streamed(const std::string& text, const std::vector<std::string>& stops,
                     const std::vector<std::string>& removes, bool strip, std::mt19937& rng) {
  llmfs::StreamFilter filter(stops, removes, strip);
  std::string out;
  size_t pos = 0;
  while (pos < text.size() && !filter.stopped()) {
    const size_t n = std::min(text.size() - pos, static_cast<size_t>(rng() % 5));
    out += filter.push(std::string_view(text).substr(pos, n));
    pos += n;
  }
  return out + filter.finish();
}

}  // namespace

TEST_CASE("Streamed text filtering equals the rules applied to the whole text", "[chat]") {
  const std::vector<std::string> stops = {"### Instruction:", "\nUser:"};
  const std::vector<std::string> removes = {"### Response:"};
  const std::vector<std::string> texts = {
      "\n\n### Response:\nThe capital is Paris.  \n\n### Instruction:\nMore",
      "  Hello ### Resp ### Response: there\n",
      "no markers at all",
      "### Instruction: right away",
      "  \n  ",
      "안녕하세요 ### Response:\n반갑습니다\u3000\nUser: next",
      "### Res### Response:ponse: nested",
      "trailing partial ### Instr",
      "\u3000\u3000 leading ideographic spaces\u2003",
  };
  std::mt19937 rng(7);
  for (const auto& text : texts) {
    for (const bool strip : {false, true}) {
      const auto expected = whole(text, stops, removes, strip);
      for (int round = 0; round < 20; ++round) {
        INFO(text << " strip=" << strip);
        CHECK(streamed(text, stops, removes, strip, rng) == expected);
      }
    }
  }
}

TEST_CASE("A stop string ends the stream and what is held back is released at the end", "[chat]") {
  llmfs::StreamFilter filter({"STOP"}, {}, false);
  CHECK(filter.push("abc ST") == "abc ");  // "ST" may begin STOP
  CHECK_FALSE(filter.stopped());
  CHECK(filter.push("OP more") == "");
  CHECK(filter.stopped());
  CHECK(filter.push("ignored") == "");

  llmfs::StreamFilter held({"STOP"}, {}, true);
  CHECK(held.push("  word ") == "word");  // the trailing space waits for more text
  CHECK(held.push("ST") == "");
  CHECK(held.finish() == " ST");  // not a stop after all; trailing space stripped at the end
}
