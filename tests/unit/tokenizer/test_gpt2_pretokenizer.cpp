#include "catch.h"
#include "llmfs/tokenizer/gpt2_pretokenizer.h"

namespace {

using Chunks = std::vector<std::string_view>;

}  // namespace

TEST_CASE("GPT-2 pre-tokenisation keeps a leading space with words, numbers and symbols",
          "[unit][tokenizer]") {
  CHECK(llmfs::gpt2_pretokenize("Hello, world! 123 abc") ==
        Chunks{"Hello", ",", " world", "!", " 123", " abc"});
  CHECK(llmfs::gpt2_pretokenize(" ...x") == Chunks{" ...", "x"});
  CHECK(llmfs::gpt2_pretokenize("a1b") == Chunks{"a", "1", "b"});
}

TEST_CASE("GPT-2 pre-tokenisation splits lower-case contractions only", "[unit][tokenizer]") {
  CHECK(llmfs::gpt2_pretokenize("it's we'll I'd they're") ==
        Chunks{"it", "'s", " we", "'ll", " I", "'d", " they", "'re"});
  // 'S is not a contraction: the apostrophe is a symbol run, then letters.
  CHECK(llmfs::gpt2_pretokenize("IT'S") == Chunks{"IT", "'", "S"});
  CHECK(llmfs::gpt2_pretokenize("x?'s") == Chunks{"x", "?'", "s"});
  CHECK(llmfs::gpt2_pretokenize("'sa") == Chunks{"'s", "a"});
}

TEST_CASE("GPT-2 pre-tokenisation leaves the last space of a run to the next word",
          "[unit][tokenizer]") {
  CHECK(llmfs::gpt2_pretokenize("a   b") == Chunks{"a", "  ", " b"});
  CHECK(llmfs::gpt2_pretokenize("a\n\nb") == Chunks{"a", "\n", "\n", "b"});
  CHECK(llmfs::gpt2_pretokenize("a \nb") == Chunks{"a", " ", "\n", "b"});
  CHECK(llmfs::gpt2_pretokenize("a  ") == Chunks{"a", "  "});
  CHECK(llmfs::gpt2_pretokenize("hello <") == Chunks{"hello", " <"});
  CHECK(llmfs::gpt2_pretokenize("x\r\n") == Chunks{"x", "\r\n"});
}

TEST_CASE("GPT-2 pre-tokenisation uses Unicode letters, numbers and white space",
          "[unit][tokenizer]") {
  // Hangul syllables are letters; U+3000 (ideographic space) and U+00A0 are White_Space;
  // U+0301 (combining acute) is neither letter nor number; emoji are symbols.
  CHECK(llmfs::gpt2_pretokenize("운수 좋은 날") == Chunks{"운수", " 좋은", " 날"});
  CHECK(llmfs::gpt2_pretokenize("a\u3000b") == Chunks{"a", "\u3000", "b"});
  CHECK(llmfs::gpt2_pretokenize("a\u00a0\u00a0b") == Chunks{"a", "\u00a0", "\u00a0", "b"});
  CHECK(llmfs::gpt2_pretokenize("cafe\u0301 x") == Chunks{"cafe", "\u0301", " x"});
  CHECK(llmfs::gpt2_pretokenize("Ⅻ٣") == Chunks{"Ⅻ٣"});  // Nl and Nd are both \p{N}
  CHECK(llmfs::gpt2_pretokenize(" 🙂🙂x") == Chunks{" 🙂🙂", "x"});
}

TEST_CASE("GPT-2 pre-tokenisation knows the letters and digits of Unicode 16, as tiktoken",
          "[unit][tokenizer]") {
  // U+1C89 CYRILLIC CAPITAL LETTER TJE (Unicode 16), U+2EBF0 (CJK extension I, Unicode 15.1),
  // U+10D40 GARAY DIGIT ZERO (Unicode 16): unassigned for ICU 72, letters/numbers for tiktoken.
  CHECK(llmfs::gpt2_pretokenize("x\u1C89\U0002EBF0") == Chunks{"x\u1C89\U0002EBF0"});
  CHECK(llmfs::gpt2_pretokenize("1\U00010D40") == Chunks{"1\U00010D40"});
  CHECK(llmfs::gpt2_pretokenize("x\U000E0080") == Chunks{"x", "\U000E0080"});  // still unassigned
}
