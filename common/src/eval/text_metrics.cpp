// Offline response metrics: exact match, word F1, ROUGE-L.
#include "llmfs/eval/text_metrics.h"

#include <algorithm>
#include <map>

#include "llmfs/core/error.h"

namespace llmfs {

namespace {

bool is_ascii_punct(unsigned char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}

bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

double f1(double overlap, size_t response, size_t reference) {
  if (response == 0 && reference == 0) return 1.0;
  if (overlap == 0.0) return 0.0;
  const double p = overlap / static_cast<double>(response);
  const double r = overlap / static_cast<double>(reference);
  return 2.0 * p * r / (p + r);
}

}  // namespace

std::vector<std::string> normalize_answer(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  const auto flush = [&] {
    if (!word.empty() && word != "a" && word != "an" && word != "the") words.push_back(word);
    word.clear();
  };
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_space(c)) {
      flush();
    } else if (!is_ascii_punct(c)) {
      word += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : ch;
    }
  }
  flush();
  return words;
}

double exact_match(std::string_view response, std::string_view reference) {
  return normalize_answer(response) == normalize_answer(reference) ? 1.0 : 0.0;
}

double token_f1(std::string_view response, std::string_view reference) {
  const auto a = normalize_answer(response), b = normalize_answer(reference);
  std::map<std::string, int64_t> counts;
  for (const auto& w : b) ++counts[w];
  int64_t common = 0;
  for (const auto& w : a) {
    auto it = counts.find(w);
    if (it != counts.end() && it->second > 0) {
      --it->second;
      ++common;
    }
  }
  return f1(static_cast<double>(common), a.size(), b.size());
}

double rouge_l(std::string_view response, std::string_view reference) {
  const auto a = normalize_answer(response), b = normalize_answer(reference);
  // LCS length by dynamic programming over one row.
  std::vector<int64_t> row(b.size() + 1, 0);
  for (const auto& wa : a) {
    int64_t diagonal = 0;
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t above = row[j];
      row[j] = wa == b[j - 1] ? diagonal + 1 : std::max(row[j], row[j - 1]);
      diagonal = above;
    }
  }
  return f1(static_cast<double>(row.back()), a.size(), b.size());
}

TextMetrics text_metrics(const std::vector<std::string>& responses,
                         const std::vector<std::string>& references) {
  if (responses.size() != references.size()) {
    fail("text_metrics: {} responses for {} references", responses.size(), references.size());
  }
  TextMetrics m;
  m.count = static_cast<int64_t>(responses.size());
  if (m.count == 0) return m;
  for (size_t i = 0; i < responses.size(); ++i) {
    m.exact_match += exact_match(responses[i], references[i]);
    m.token_f1 += token_f1(responses[i], references[i]);
    m.rouge_l += rouge_l(responses[i], references[i]);
  }
  const auto n = static_cast<double>(m.count);
  m.exact_match /= n;
  m.token_f1 /= n;
  m.rouge_l /= n;
  return m;
}

}  // namespace llmfs
