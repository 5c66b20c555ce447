#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmfs {

/// Offline metrics of model responses against reference outputs: no judge, no network.
///
/// Texts are compared as word lists after normalize_answer (the SQuAD evaluation's rule, made
/// safe for any script): ASCII letters lower-cased, ASCII punctuation removed, the English
/// articles a/an/the dropped, split on whitespace. Other scripts (Korean, ...) pass unchanged,
/// so their words are compared as written.
std::vector<std::string> normalize_answer(std::string_view text);

/// 1 when the normalized word lists are equal, else 0.
double exact_match(std::string_view response, std::string_view reference);

/// Word-overlap F1 (SQuAD): precision and recall of the common words counted with
/// multiplicity. Both empty: 1; one empty: 0.
double token_f1(std::string_view response, std::string_view reference);

/// ROUGE-L F1: the longest common subsequence of the word lists, LCS / len(response) and
/// LCS / len(reference), combined as 2PR / (P + R). Both empty: 1; one empty: 0.
double rouge_l(std::string_view response, std::string_view reference);

/// The three metrics averaged over pairs (each in [0, 1]).
struct TextMetrics {
  int64_t count = 0;
  double exact_match = 0.0;
  double token_f1 = 0.0;
  double rouge_l = 0.0;
};
TextMetrics text_metrics(const std::vector<std::string>& responses,
                         const std::vector<std::string>& references);

}  // namespace llmfs
