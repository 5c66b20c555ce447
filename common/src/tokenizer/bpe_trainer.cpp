// Byte-level BPE training with incremental pair counts (see bpe_trainer.h for the rules).
//
// State: the distinct chunks ("words") of the text with their counts, each as a sequence of
// token ids; the count of every adjacent pair; for every pair the words it occurs in; and a
// max-heap of (count, pair) entries, where an entry whose count is no longer the pair's count is
// stale and skipped. A merge rewrites only the words listed for its pair and pushes fresh heap
// entries for the pairs whose counts changed.
#include "llmfs/tokenizer/bpe_trainer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <queue>
#include <unordered_map>

#include "llmfs/core/error.h"
#include "llmfs/core/utf8.h"
#include "llmfs/tokenizer/gpt2_pretokenizer.h"

namespace llmfs {

BPETrainerConfig parse_bpe_trainer_config(ConfigNode node, BPETrainerConfig defaults) {
  BPETrainerConfig c = std::move(defaults);
  node.read("vocab_size", c.vocab_size, at_least(int64_t{257}));
  node.read("min_frequency", c.min_frequency, at_least(int64_t{1}));
  node.read("special_tokens", c.special_tokens);
  node.check(c.vocab_size >= 256 + static_cast<int64_t>(c.special_tokens.size()), "vocab_size",
             "vocab_size ({}) must hold the 256 bytes and the {} special tokens", c.vocab_size,
             c.special_tokens.size());
  for (const auto& s : c.special_tokens)
    node.check(!s.empty(), "special_tokens", "empty special token");
  return c;
}

namespace {

using Pair = uint64_t;
inline Pair make_pair_key(uint32_t a, uint32_t b) { return (uint64_t(a) << 32) | b; }
inline uint32_t left_of(Pair p) { return static_cast<uint32_t>(p >> 32); }
inline uint32_t right_of(Pair p) { return static_cast<uint32_t>(p); }

struct Word {
  std::vector<uint32_t> symbols;
  int64_t count = 0;
};

struct HeapEntry {
  int64_t count;
  Pair pair;
};

// Max-heap order: higher count first; on equal counts the smaller (left, right) ids.
struct HeapOrder {
  bool operator()(const HeapEntry& x, const HeapEntry& y) const {
    if (x.count != y.count) return x.count < y.count;
    return x.pair > y.pair;
  }
};

// The text without its special tokens, as the pieces between them.
std::vector<std::string_view> split_out_specials(std::string_view text,
                                                 const std::vector<std::string>& specials) {
  std::vector<std::string_view> pieces;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t at = std::string_view::npos, len = 0;
    for (const auto& s : specials) {
      const std::size_t i = text.find(s, pos);
      if (i < at || (i == at && i != std::string_view::npos && s.size() > len))
        at = i, len = s.size();
    }
    if (at == std::string_view::npos) {
      pieces.push_back(text.substr(pos));
      break;
    }
    pieces.push_back(text.substr(pos, at - pos));
    pos = at + len;
  }
  return pieces;
}

}  // namespace

BPETokenizer train_bpe(std::string_view text, const BPETrainerConfig& config,
                       const BPETrainProgress& progress) {
  require_valid_utf8(text, "training text");
  const auto specials = static_cast<int64_t>(config.special_tokens.size());
  if (config.vocab_size < 256 + specials) {
    fail("train_bpe: vocab_size ({}) must hold the 256 bytes and the {} special tokens",
         config.vocab_size, specials);
  }
  const int64_t wanted = config.vocab_size - 256 - specials;

  // --- Words: distinct chunks and their counts ---
  std::unordered_map<std::string_view, int64_t> chunk_counts;
  for (const std::string_view piece : split_out_specials(text, config.special_tokens)) {
    std::size_t pos = 0;
    while (pos < piece.size()) {
      const std::size_t end = gpt2_chunk_end(piece, pos);
      ++chunk_counts[piece.substr(pos, end - pos)];
      pos = end;
    }
  }
  std::vector<std::string> tokens;
  std::array<uint32_t, 256> byte_id{};
  for (uint32_t id = 0; id < 256; ++id) {
    tokens.emplace_back(1, static_cast<char>(kGpt2ByteOrder[id]));
    byte_id[kGpt2ByteOrder[id]] = id;
  }
  std::unordered_map<std::string, uint32_t> token_ids;
  for (uint32_t id = 0; id < 256; ++id) token_ids.emplace(tokens[id], id);

  std::vector<Word> words;
  words.reserve(chunk_counts.size());
  for (const auto& [chunk, count] : chunk_counts) {
    if (chunk.size() < 2) continue;  // nothing to merge
    Word w;
    w.count = count;
    for (const char c : chunk) w.symbols.push_back(byte_id[static_cast<unsigned char>(c)]);
    words.push_back(std::move(w));
  }
  // Word order does not change the result (counts are sums, ties are broken by ids); sorting
  // makes the per-pair word lists independent of the hash map's iteration order all the same.
  std::sort(words.begin(), words.end(),
            [](const Word& x, const Word& y) { return x.symbols < y.symbols; });

  // --- Initial pair counts ---
  std::unordered_map<Pair, int64_t> counts;
  std::unordered_map<Pair, std::vector<uint32_t>> where;
  for (uint32_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w].symbols;
    for (std::size_t i = 0; i + 1 < s.size(); ++i) {
      const Pair p = make_pair_key(s[i], s[i + 1]);
      counts[p] += words[w].count;
      auto& list = where[p];
      if (list.empty() || list.back() != w) list.push_back(w);
    }
  }
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, HeapOrder> heap;
  for (const auto& [p, c] : counts) heap.push({c, p});

  // --- Merge loop ---
  std::vector<std::pair<int64_t, int64_t>> merges;
  std::vector<uint32_t> stamp(words.size(), 0);
  std::unordered_map<Pair, int64_t> delta;
  std::vector<uint32_t> rewritten;
  uint32_t step = 0;
  int64_t reused = 0;
  std::size_t reported = 0;  // merges at the last progress report
  while (static_cast<int64_t>(merges.size()) < wanted && !heap.empty()) {
    const HeapEntry top = heap.top();
    heap.pop();
    const auto it = counts.find(top.pair);
    if (it == counts.end() || it->second != top.count) continue;  // stale entry
    if (top.count < config.min_frequency) break;
    ++step;

    const uint32_t a = left_of(top.pair), b = right_of(top.pair);
    std::string merged = tokens[a] + tokens[b];
    uint32_t id;
    if (const auto existing = token_ids.find(merged); existing != token_ids.end()) {
      id = existing->second;
      ++reused;
    } else {
      id = static_cast<uint32_t>(tokens.size());
      token_ids.emplace(merged, id);
      tokens.push_back(std::move(merged));
      merges.emplace_back(a, b);
    }

    delta.clear();
    const std::vector<uint32_t> affected = std::move(where[top.pair]);
    where.erase(top.pair);
    for (const uint32_t w : affected) {
      if (stamp[w] == step) continue;
      stamp[w] = step;
      Word& word = words[w];
      auto& s = word.symbols;
      rewritten.clear();
      bool changed = false;
      for (std::size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          rewritten.push_back(id);
          ++i;
          changed = true;
        } else {
          rewritten.push_back(s[i]);
        }
      }
      if (!changed) continue;  // the list entry was stale
      for (std::size_t i = 0; i + 1 < s.size(); ++i)
        delta[make_pair_key(s[i], s[i + 1])] -= word.count;
      for (std::size_t i = 0; i + 1 < rewritten.size(); ++i) {
        const Pair p = make_pair_key(rewritten[i], rewritten[i + 1]);
        delta[p] += word.count;
        if (rewritten[i] == id || rewritten[i + 1] == id) {
          auto& list = where[p];
          if (list.empty() || list.back() != w) list.push_back(w);
        }
      }
      s.swap(rewritten);
    }
    for (const auto& [p, d] : delta) {
      if (d == 0) continue;
      auto& c = counts[p];
      c += d;
      if (c <= 0) {
        counts.erase(p);
      } else {
        heap.push({c, p});
      }
    }
    if (progress && merges.size() >= reported + 256) {
      reported = merges.size();
      progress(static_cast<int64_t>(reported), wanted);
    }
  }
  if (progress) progress(static_cast<int64_t>(merges.size()), wanted);
  if (static_cast<int64_t>(merges.size()) < wanted) {
    spdlog::warn(
        "train_bpe: stopped at {} merges of {} (no pair seen {} times); vocabulary size {}",
        merges.size(), wanted, config.min_frequency,
        256 + merges.size() + config.special_tokens.size());
  }
  spdlog::debug("train_bpe: {} words, {} merges, {} merges into existing tokens", words.size(),
                merges.size(), reused);
  const auto size = static_cast<int64_t>(tokens.size()) + specials;
  return BPETokenizer(std::move(tokens), std::move(merges), config.special_tokens,
                      fmt::format("bpe trained ({} tokens)", size), "train_bpe");
}

}  // namespace llmfs
