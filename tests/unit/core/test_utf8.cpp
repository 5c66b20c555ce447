#include "llmfs/core/utf8.h"

#include "catch.h"

TEST_CASE("Valid UTF-8 passes, invalid UTF-8 is found at its byte offset", "[unit][utf8]") {
  CHECK(llmfs::find_invalid_utf8("plain ASCII") == std::string_view::npos);
  CHECK(llmfs::find_invalid_utf8("운수 좋은 날 🙂") == std::string_view::npos);
  CHECK(llmfs::find_invalid_utf8("ab\xFF") == 2);
  CHECK(llmfs::find_invalid_utf8("\xED\xA0\x80") == 0);  // a surrogate
  CHECK(llmfs::find_invalid_utf8("\xC0\xAF") == 0);      // overlong
  CHECK(llmfs::find_invalid_utf8("x\xE2\x82") == 1);     // truncated
}

TEST_CASE("require_valid_utf8 names the input and the byte", "[unit][utf8]") {
  CHECK_THROWS_WITH(llmfs::require_valid_utf8("ok\x80", "input.txt"),
                    "input.txt: invalid UTF-8 at byte 2 (0x80)");
}

TEST_CASE("Invalid bytes become U+FFFD per maximal subpart, as Python's errors='replace'", "[unit][utf8]") {
  // b"\xe2\x82".decode(errors="replace") == "\ufffd"; b"\xf0\x9f\x99x" -> "\ufffdx";
  // b"\xff\xfe" -> "\ufffd\ufffd"; b"\xed\xa0\x80" -> three replacements.
  CHECK(llmfs::utf8_replace_invalid("\xE2\x82") == "\xEF\xBF\xBD");
  CHECK(llmfs::utf8_replace_invalid("\xF0\x9F\x99x") == "\xEF\xBF\xBDx");
  CHECK(llmfs::utf8_replace_invalid("\xFF\xFE") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(llmfs::utf8_replace_invalid("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(llmfs::utf8_replace_invalid("é") == "é");
}

TEST_CASE("utf8_length counts code points, as Python's len(str)", "[unit][utf8]") {
  CHECK(llmfs::utf8_length("") == 0);
  CHECK(llmfs::utf8_length("plain ASCII") == 11);
  CHECK(llmfs::utf8_length("운수 좋은 날") == 7);  // 3 bytes per Hangul syllable
  CHECK(llmfs::utf8_length("é🙂x") == 3);          // 2, 4 and 1 bytes
  // An ill-formed sequence counts once per maximal subpart (one U+FFFD each).
  CHECK(llmfs::utf8_length("a\xE2\x82" "b") == 3);
  CHECK(llmfs::utf8_length("\xFF\xFE") == 2);
}

TEST_CASE("utf8_slice cuts by code points, as Python's text[begin:end]", "[unit][utf8]") {
  const std::string_view text = "운수 좋은 날";
  CHECK(llmfs::utf8_slice(text, 3, 5) == "좋은");
  CHECK(llmfs::utf8_slice(text, 0, 2) == "운수");
  CHECK(llmfs::utf8_slice(text, 6, 7) == "날");
  CHECK(llmfs::utf8_slice(text, 0, 7) == text);
  // Clamped to the length; empty when end <= begin.
  CHECK(llmfs::utf8_slice(text, 5, 100) == " 날");
  CHECK(llmfs::utf8_slice(text, 100, 200).empty());
  CHECK(llmfs::utf8_slice(text, 4, 4).empty());
  CHECK(llmfs::utf8_slice(text, 5, 2).empty());
  CHECK(llmfs::utf8_slice("", 0, 3).empty());
  CHECK(llmfs::utf8_slice("é🙂x", 1, 2) == "🙂");
  // The view points into the text.
  CHECK(llmfs::utf8_slice(text, 3, 5).data() == text.data() + 7);
  CHECK_THROWS_WITH(llmfs::utf8_slice(text, -1, 2),
                    llmfs::test::contains_text("utf8_slice: negative index (-1:2)"));
}
