#include "llmfs/eval/text_metrics.h"

#include "catch.h"
#include "llmfs/core/error.h"


TEST_CASE("normalize_answer lower-cases, drops punctuation and articles, keeps other scripts",
          "[unit][eval]") {
  CHECK(llmfs::normalize_answer("The Cat, sat!  on a MAT.") ==
        std::vector<std::string>{"cat", "sat", "on", "mat"});
  CHECK(llmfs::normalize_answer("  ") == std::vector<std::string>{});
  CHECK(llmfs::normalize_answer("맛있는 김치, 한국 음식!") ==
        std::vector<std::string>{"맛있는", "김치", "한국", "음식"});
  CHECK(llmfs::normalize_answer("it's an apple") == std::vector<std::string>{"its", "apple"});
}

TEST_CASE("exact match, word F1 and ROUGE-L on hand-worked pairs", "[unit][eval]") {
  CHECK(llmfs::exact_match("The capital is Paris.", "capital is paris") == 1.0);
  CHECK(llmfs::exact_match("Paris", "Lyon") == 0.0);
  // Response {cat, sat}, reference {cat, sat, down}: P 1, R 2/3, F1 0.8.
  CHECK(llmfs::token_f1("the cat sat", "a cat sat down") == Approx(0.8));
  // Counted with multiplicity: one x and one y in common, P = R = 2/3.
  CHECK(llmfs::token_f1("x x y", "x y y") == Approx(2.0 / 3.0));
  CHECK(llmfs::token_f1("", "") == 1.0);
  CHECK(llmfs::token_f1("x", "") == 0.0);
  // ROUGE-L: LCS of "p q r s" and "p r q s" is 3 (p q s or p r s): P = R = 3/4.
  CHECK(llmfs::rouge_l("p q r s", "p r q s") == Approx(0.75));
  // Order matters for ROUGE-L, not for F1.
  CHECK(llmfs::rouge_l("s r q p", "p q r s") == Approx(0.25));
  CHECK(llmfs::token_f1("s r q p", "p q r s") == Approx(1.0));
  // LCS 2 ("b c") of 3 and 5 words: P 2/3, R 2/5, F1 = 2·(2/3)(2/5)/(2/3+2/5) = 0.5.
  CHECK(llmfs::rouge_l("b x c", "y b z c w") == Approx(0.5));
  CHECK(llmfs::rouge_l("김치 맛있어요", "김치 정말 맛있어요") == Approx(0.8));
}

TEST_CASE("text_metrics averages over the pairs and checks the counts", "[unit][eval]") {
  const auto m = llmfs::text_metrics({"Paris", "cat sat", ""}, {"paris", "cat sat down", "x"});
  CHECK(m.count == 3);
  CHECK(m.exact_match == Approx(1.0 / 3.0));
  CHECK(m.token_f1 == Approx((1.0 + 0.8 + 0.0) / 3.0));
  CHECK(m.rouge_l == Approx((1.0 + 0.8 + 0.0) / 3.0));
  CHECK(llmfs::text_metrics({}, {}).count == 0);
  CHECK_THROWS_AS(llmfs::text_metrics({"a"}, {}), llmfs::Error);
}
