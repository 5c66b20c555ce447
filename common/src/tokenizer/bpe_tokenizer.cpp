// Byte-level BPE with GPT-2's pre-tokenisation (BOOK.md §1.2), id-for-id equal to tiktoken.
//
// Parts: GPT-2's byte alphabet; two flat open-addressing hash tables (token bytes -> id, and
// (left id, right id) -> merged id); the merge loop (a small array for ordinary chunks, a heap
// over a linked list for very long ones); special-token handling with tiktoken's semantics; the
// loaders (encoder.json + vocab.bpe, tiktoken ranks) with strict validation; and the writer of
// GPT-2's file format.
#include "llmfs/tokenizer/bpe_tokenizer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/utf8.h"
#include "llmfs/core/data_files.h"
#include "llmfs/tokenizer/gpt2_pretokenizer.h"

namespace llmfs {

// --- GPT-2's byte alphabet ---------------------------------------------------------------

namespace {

constexpr bool is_printable_byte(int b) {
  return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
}

constexpr std::array<unsigned char, 256> make_byte_order() {
  std::array<unsigned char, 256> order{};
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    if (is_printable_byte(b)) order[n++] = static_cast<unsigned char>(b);
  }
  for (int b = 0; b < 256; ++b) {
    if (!is_printable_byte(b)) order[n++] = static_cast<unsigned char>(b);
  }
  return order;
}

// Code point that stands for each byte: printable bytes stand for themselves, the 68 others get
// 256, 257, ... in increasing byte order.
constexpr std::array<char32_t, 256> make_byte_to_code_point() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) table[b] = is_printable_byte(b) ? char32_t(b) : next++;
  return table;
}
constexpr std::array<char32_t, 256> kByteToCodePoint = make_byte_to_code_point();

const std::array<std::string, 256>& byte_to_unicode_table() {
  static const auto table = [] {
    std::array<std::string, 256> t;
    for (int b = 0; b < 256; ++b) append_utf8(t[b], kByteToCodePoint[b]);
    return t;
  }();
  return table;
}

// Inverse of kByteToCodePoint: -1 for code points outside the alphabet.
int code_point_to_byte(char32_t cp) {
  static const auto table = [] {
    std::array<int, 256 + 68> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[kByteToCodePoint[b]] = b;
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

std::string to_alphabet(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) out += byte_to_unicode_table()[static_cast<unsigned char>(c)];
  return out;
}

// The bytes a string in GPT-2's alphabet stands for; nullopt (and the offending code point) when
// a character is not in the alphabet or the UTF-8 is malformed.
std::optional<std::string> from_alphabet(std::string_view text, char32_t* bad = nullptr) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const Utf8Step step = utf8_step(text, pos);
    const int b = step.valid ? code_point_to_byte(step.code_point) : -1;
    if (b < 0) {
      if (bad) *bad = step.valid ? step.code_point : 0xFFFD;
      return std::nullopt;
    }
    out.push_back(static_cast<char>(b));
    pos += step.length;
  }
  return out;
}

// A JSON string as Python's json.dumps writes it (ensure_ascii), for encoder.json.
void append_json_string(std::string& out, std::string_view utf8) {
  out.push_back('"');
  std::size_t pos = 0;
  while (pos < utf8.size()) {
    const Utf8Step step = utf8_step(utf8, pos);
    const char32_t cp = step.valid ? step.code_point : 0xFFFD;
    pos += step.length;
    if (cp == '"') {
      out += "\\\"";
    } else if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\b') {
      out += "\\b";
    } else if (cp == '\f') {
      out += "\\f";
    } else if (cp >= 0x20 && cp < 0x7F) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x10000) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
    } else {
      const char32_t v = cp - 0x10000;
      out += fmt::format("\\u{:04x}\\u{:04x}", static_cast<unsigned>(0xD800 + (v >> 10)),
                         static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
    }
  }
  out.push_back('"');
}

// A string for error messages: quoted, at most 80 bytes, control characters escaped, other
// characters as they are ("Ġt").
std::string show(std::string_view text) {
  const std::string valid = utf8_replace_invalid(text.substr(0, 80));
  std::string out = "\"";
  for (const char c : valid) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (b < 0x20 || b == 0x7F) {
      out += fmt::format("\\x{:02x}", b);
    } else {
      out += c;
    }
  }
  out += '"';
  if (text.size() > 80) out += "...";
  return out;
}

}  // namespace

const std::array<unsigned char, 256> kGpt2ByteOrder = make_byte_order();

const std::string& gpt2_byte_to_unicode(unsigned char byte) {
  return byte_to_unicode_table()[byte];
}

// --- Flat hash tables ----------------------------------------------------------------------

namespace {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ull;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ull;
  x ^= x >> 32;
  return x;
}

inline uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xff51afd7ed558ccdull);
  const char* p = s.data();
  std::size_t n = s.size();
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
  }
  return mix64(h);
}

std::size_t table_capacity(std::size_t entries) {
  std::size_t cap = 16;
  while (cap < entries * 2) cap *= 2;  // load factor at most 1/2
  return cap;
}

// Byte string -> value. Keys are views; whoever inserts keeps the bytes alive.
template <typename V>
class FlatStringMap {
 public:
  explicit FlatStringMap(std::size_t expected = 8)
      : slots_(table_capacity(expected)), mask_(slots_.size() - 1) {}

  const V* find(std::string_view key, uint64_t hash) const {
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.hash == hash && s.size == key.size() &&
          std::memcmp(s.data, key.data(), key.size()) == 0) {
        return &s.value;
      }
    }
  }

  // Inserts or overwrites.
  void insert(std::string_view key, uint64_t hash, V value) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (!s.used) {
        s = Slot{hash, key.data(), static_cast<uint32_t>(key.size()), value, true};
        ++size_;
        return;
      }
      if (s.hash == hash && s.size == key.size() &&
          std::memcmp(s.data, key.data(), key.size()) == 0) {
        s.value = value;
        return;
      }
    }
  }

  std::size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    const char* data = nullptr;
    uint32_t size = 0;
    V value{};
    bool used = false;
  };

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
      if (!s.used) continue;
      std::size_t i = s.hash & mask_;
      while (slots_[i].used) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_;
  std::size_t size_ = 0;
};

constexpr uint32_t kNoRank = std::numeric_limits<uint32_t>::max();

// (left id, right id) -> id of the token whose bytes are their concatenation.
class PairMap {
 public:
  void reserve(std::size_t entries) {
    keys_.assign(table_capacity(entries), kEmpty);
    values_.assign(keys_.size(), kNoRank);
    shift_ = 64 - static_cast<int>(std::countr_zero(keys_.size()));
  }

  void insert(uint32_t a, uint32_t b, uint32_t merged) {
    const uint64_t key = pack(a, b);
    for (std::size_t i = slot(key);; i = (i + 1) & (keys_.size() - 1)) {
      if (keys_[i] == kEmpty || keys_[i] == key) {
        keys_[i] = key;
        values_[i] = merged;
        return;
      }
    }
  }

  inline uint32_t find(uint32_t a, uint32_t b) const {
    const uint64_t key = pack(a, b);
    for (std::size_t i = slot(key);; i = (i + 1) & (keys_.size() - 1)) {
      if (keys_[i] == key) return values_[i];
      if (keys_[i] == kEmpty) return kNoRank;
    }
  }

 private:
  static constexpr uint64_t kEmpty = std::numeric_limits<uint64_t>::max();
  static inline uint64_t pack(uint32_t a, uint32_t b) { return (uint64_t(a) << 32) | b; }
  inline std::size_t slot(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> shift_; }

  std::vector<uint64_t> keys_;
  std::vector<uint32_t> values_;
  int shift_ = 60;
};

}  // namespace

// --- The tokenizer's state -----------------------------------------------------------------

struct ChunkCache;

struct BPETokenizer::Impl {
  std::string name;
  std::vector<std::string> tokens;  // id -> bytes; mergeable tokens first, then special tokens
  int64_t mergeable = 0;
  std::vector<std::pair<int64_t, int64_t>> merges;  // token 256 + k = merges[k] (may be empty)
  std::vector<std::pair<std::string, int64_t>> specials;
  std::array<uint32_t, 256> byte_id{};
  FlatStringMap<uint32_t> token_map;  // mergeable token bytes -> id
  PairMap pairs;

  // Merges the bytes of `piece` by rank, with ranks below `max_rank` only; appends the ids.
  void bpe(std::string_view piece, std::vector<int64_t>& out, uint32_t max_rank = kNoRank) const;
  void bpe_large(std::string_view piece, std::vector<int64_t>& out, uint32_t max_rank) const;
  void encode_ordinary(std::string_view text, std::vector<int64_t>& out, ChunkCache& cache) const;
};

namespace {

// Chunks up to this many bytes use the quadratic scan (what tiktoken does for every chunk);
// longer ones a heap, so that a megabyte of spaces or digits stays linearithmic.
constexpr std::size_t kSmallPiece = 128;

}  // namespace

void BPETokenizer::Impl::bpe(std::string_view piece, std::vector<int64_t>& out,
                             uint32_t max_rank) const {
  const std::size_t n = piece.size();
  if (n > kSmallPiece) return bpe_large(piece, out, max_rank);
  uint32_t sym[kSmallPiece];
  uint32_t rank[kSmallPiece];
  for (std::size_t i = 0; i < n; ++i) sym[i] = byte_id[static_cast<unsigned char>(piece[i])];
  const auto rank_of = [&](uint32_t a, uint32_t b) {
    const uint32_t r = pairs.find(a, b);
    return r < max_rank ? r : kNoRank;
  };
  std::size_t count = n;
  for (std::size_t i = 0; i + 1 < count; ++i) rank[i] = rank_of(sym[i], sym[i + 1]);
  while (count > 1) {
    uint32_t best = kNoRank;
    std::size_t at = 0;
    for (std::size_t i = 0; i + 1 < count; ++i) {
      if (rank[i] < best) best = rank[i], at = i;  // strict: the leftmost of equal ranks
    }
    if (best == kNoRank) break;
    sym[at] = best;  // a token's id is its rank
    std::memmove(sym + at + 1, sym + at + 2, (count - at - 2) * sizeof(uint32_t));
    --count;
    // rank[at + 1] described the pair that now starts at at + 1's old right neighbour: drop it.
    if (at + 1 < count)
      std::memmove(rank + at + 1, rank + at + 2, (count - at - 2) * sizeof(uint32_t));
    if (at > 0) rank[at - 1] = rank_of(sym[at - 1], sym[at]);
    if (at + 1 < count) rank[at] = rank_of(sym[at], sym[at + 1]);
  }
  for (std::size_t i = 0; i < count; ++i) out.push_back(sym[i]);
}

void BPETokenizer::Impl::bpe_large(std::string_view piece, std::vector<int64_t>& out,
                                   uint32_t max_rank) const {
  // Same result as the scan: a heap ordered by (rank, position) over a linked list of symbols,
  // with stale entries recognised by recomputing the pair's rank when they surface.
  const std::size_t n = piece.size();
  std::vector<uint32_t> sym(n), next(n), prev(n);
  std::vector<bool> alive(n, true);
  for (std::size_t i = 0; i < n; ++i) {
    sym[i] = byte_id[static_cast<unsigned char>(piece[i])];
    next[i] = static_cast<uint32_t>(i + 1);
    prev[i] = static_cast<uint32_t>(i == 0 ? kNoRank : i - 1);
  }
  const auto rank_at = [&](uint32_t i) -> uint32_t {
    if (next[i] >= n) return kNoRank;
    const uint32_t r = pairs.find(sym[i], sym[next[i]]);
    return r < max_rank ? r : kNoRank;
  };
  using Entry = std::pair<uint32_t, uint32_t>;  // (rank, position)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  for (uint32_t i = 0; i + 1 < n; ++i) {
    const uint32_t r = rank_at(i);
    if (r != kNoRank) heap.emplace(r, i);
  }
  while (!heap.empty()) {
    const auto [r, i] = heap.top();
    heap.pop();
    if (!alive[i] || rank_at(i) != r) continue;  // stale
    const uint32_t j = next[i];
    sym[i] = r;
    alive[j] = false;
    next[i] = next[j];
    if (next[j] < n) prev[next[j]] = i;
    if (prev[i] != kNoRank) {
      const uint32_t rp = rank_at(prev[i]);
      if (rp != kNoRank) heap.emplace(rp, prev[i]);
    }
    const uint32_t rn = rank_at(i);
    if (rn != kNoRank) heap.emplace(rn, i);
  }
  for (uint32_t i = 0; i < n; i = next[i]) out.push_back(sym[i]);
}

// Chunk -> ids of the chunks already encoded in one encode() call (words recur all the time).
// Per call, so that the tokenizer stays immutable and thread-safe.
struct ChunkCache {
  FlatStringMap<uint64_t> map;  // value: offset << 16 | count, into `ids`
  std::vector<int64_t> ids;
};

void BPETokenizer::Impl::encode_ordinary(std::string_view text, std::vector<int64_t>& out,
                                         ChunkCache& cache) const {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = gpt2_chunk_end(text, pos);
    const std::string_view chunk = text.substr(pos, end - pos);
    pos = end;
    if (chunk.size() == 1) {
      out.push_back(byte_id[static_cast<unsigned char>(chunk[0])]);
      continue;
    }
    const uint64_t h = hash_bytes(chunk);
    if (const uint32_t* id =
            token_map.find(chunk, h)) {  // tiktoken: a whole-token chunk is that token
      out.push_back(*id);
      continue;
    }
    if (const uint64_t* hit = cache.map.find(chunk, h)) {
      const auto first = cache.ids.begin() + static_cast<std::ptrdiff_t>(*hit >> 16);
      out.insert(out.end(), first, first + static_cast<std::ptrdiff_t>(*hit & 0xFFFF));
      continue;
    }
    const std::size_t before = out.size();
    bpe(chunk, out);
    const std::size_t count = out.size() - before;
    if (count <= 0xFFFF) {
      cache.map.insert(chunk, h, (uint64_t(cache.ids.size()) << 16) | count);
      cache.ids.insert(cache.ids.end(), out.begin() + static_cast<std::ptrdiff_t>(before),
                       out.end());
    }
  }
}

// --- Construction and validation -----------------------------------------------------------

namespace {

std::shared_ptr<BPETokenizer::Impl> build_impl(std::vector<std::string> tokens,
                                               std::vector<std::pair<int64_t, int64_t>> merges,
                                               const std::vector<std::string>& special_tokens,
                                               std::string name, std::string_view source) {
  auto impl = std::make_shared<BPETokenizer::Impl>();
  impl->name = std::move(name);
  impl->mergeable = static_cast<int64_t>(tokens.size());
  if (tokens.size() < 256)
    fail("{}: {} tokens; byte-level BPE needs at least the 256 single bytes", source,
         tokens.size());
  if (tokens.size() >= kNoRank / 2) fail("{}: too many tokens ({})", source, tokens.size());
  impl->tokens = std::move(tokens);
  // token_map views these strings, short ones inside the vector's own storage (SSO): room for
  // the special tokens now, so appending them below never moves what the map points at.
  impl->tokens.reserve(impl->tokens.size() + special_tokens.size());
  impl->token_map = FlatStringMap<uint32_t>(impl->tokens.size());
  impl->byte_id.fill(kNoRank);
  for (std::size_t id = 0; id < impl->tokens.size(); ++id) {
    const std::string& t = impl->tokens[id];
    if (t.empty()) fail("{}: token {} is empty", source, id);
    const uint64_t h = hash_bytes(t);
    if (const uint32_t* other = impl->token_map.find(t, h)) {
      fail("{}: tokens {} and {} are the same bytes {}", source, *other, id, show(to_alphabet(t)));
    }
    impl->token_map.insert(t, h, static_cast<uint32_t>(id));
    if (t.size() == 1) impl->byte_id[static_cast<unsigned char>(t[0])] = static_cast<uint32_t>(id);
  }
  for (int b = 0; b < 256; ++b) {
    if (impl->byte_id[b] == kNoRank) fail("{}: the single byte 0x{:02X} is not a token", source, b);
  }

  // Every split of a token into two tokens is a pair that merges into it (tiktoken looks up the
  // concatenation of adjacent parts, not a list of merge rules).
  impl->pairs.reserve(impl->tokens.size() * 2);
  for (std::size_t id = 0; id < impl->tokens.size(); ++id) {
    const std::string_view t = impl->tokens[id];
    for (std::size_t k = 1; k < t.size(); ++k) {
      const uint32_t* a = impl->token_map.find(t.substr(0, k), hash_bytes(t.substr(0, k)));
      if (!a) continue;
      const uint32_t* b = impl->token_map.find(t.substr(k), hash_bytes(t.substr(k)));
      if (b) impl->pairs.insert(*a, *b, static_cast<uint32_t>(id));
    }
  }

  if (!merges.empty()) {
    const auto expected = impl->tokens.size() - 256;
    if (merges.size() != expected) {
      fail("{}: {} merges for {} tokens (need one per token after the 256 bytes)", source,
           merges.size(), impl->tokens.size());
    }
    for (std::size_t k = 0; k < merges.size(); ++k) {
      const auto [a, b] = merges[k];
      const int64_t id = static_cast<int64_t>(256 + k);
      if (a < 0 || b < 0 || a >= id || b >= id ||
          impl->tokens[a] + impl->tokens[b] != impl->tokens[id]) {
        fail("{}: merge {} ({} {}) does not make token {}", source, k, a, b, id);
      }
    }
  }
  impl->merges = std::move(merges);

  std::unordered_set<std::string> seen;
  for (const auto& special : special_tokens) {
    if (special.empty()) fail("{}: empty special token", source);
    if (!seen.insert(special).second)
      fail("{}: special token {} given twice", source, show(special));
    impl->specials.emplace_back(special, static_cast<int64_t>(impl->tokens.size()));
    impl->tokens.push_back(special);
  }
  return impl;
}

}  // namespace

BPETokenizer::BPETokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

BPETokenizer::BPETokenizer(std::vector<std::string> tokens,
                           std::vector<std::pair<int64_t, int64_t>> merges,
                           const std::vector<std::string>& special_tokens, std::string name,
                           std::string_view source)
    : impl_(build_impl(std::move(tokens), std::move(merges), special_tokens, std::move(name),
                       source)) {}

// --- Loading GPT-2's files -----------------------------------------------------------------

namespace {

// "malformed JSON at line 3, column 7: ..." for a file: nlohmann's message after its prefix.
[[noreturn]] void fail_malformed_json(const std::string& file, const std::exception& e) {
  std::string what = e.what();
  const auto at = what.find("parse error at ");
  if (at != std::string::npos) what = what.substr(at + std::strlen("parse error at "));
  fail("{}: malformed JSON at {}", file, what);
}

// encoder.json read with a SAX handler: the document must be one object of string -> integer,
// and duplicate keys (which a DOM parser silently collapses) are errors.
class EncoderJsonReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit EncoderJsonReader(std::string file) : file_(std::move(file)) {}

  std::vector<std::pair<std::string, int64_t>> entries;

  bool null() override { return bad_value("null"); }
  bool boolean(bool) override { return bad_value("a boolean"); }
  bool number_integer(number_integer_t v) override {
    if (v < 0) return bad_value(fmt::format("the negative number {}", v));
    return value(v);
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (v > static_cast<number_unsigned_t>(std::numeric_limits<int32_t>::max())) {
      return bad_value(fmt::format("the number {} (too large for an id)", v));
    }
    return value(static_cast<int64_t>(v));
  }
  bool number_float(number_float_t, const string_t& s) override {
    return bad_value(fmt::format("the number {}", s));
  }
  bool string(string_t&) override { return bad_value("a string"); }
  bool binary(binary_t&) override { return bad_value("binary data"); }
  bool start_object(std::size_t) override {
    if (depth_++ == 0) return true;
    return bad_value("an object");
  }
  bool key(string_t& k) override {
    if (!keys_.insert(k).second) fail("{}: duplicate key {}", file_, show(k));
    key_ = k;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 0) fail("{}: expected a JSON object of token -> id, found an array", file_);
    return bad_value("an array");
  }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    fail_malformed_json(file_, ex);
  }

 private:
  bool value(int64_t v) {
    if (depth_ == 0) fail("{}: expected a JSON object of token -> id, found a number", file_);
    entries.emplace_back(key_, v);
    return true;
  }
  bool bad_value(const std::string& what) {
    if (depth_ == 0) fail("{}: expected a JSON object of token -> id, found {}", file_, what);
    fail("{}: key {}: expected an integer id, found {}", file_, show(key_), what);
  }

  std::string file_;
  std::string key_;
  std::unordered_set<std::string> keys_;
  int depth_ = 0;
};

bool looks_special(std::string_view bytes) {
  return bytes.size() >= 4 && bytes.substr(0, 2) == "<|" && bytes.substr(bytes.size() - 2) == "|>";
}

std::string display_name(const std::filesystem::path& path) { return path.string(); }

}  // namespace

BPETokenizer BPETokenizer::gpt2() {
  static const BPETokenizer tokenizer = [] {
    auto t = from_gpt2_files(data_file("gpt2/encoder.json"), data_file("gpt2/vocab.bpe"),
                             "gpt2 (50257 tokens)");
    if (t.vocab_size() != 50257 || t.special_token_id(kEndOfText) != 50256) {
      fail(
          "gpt2/encoder.json: not GPT-2's vocabulary ({} tokens; GPT-2 has 50257 with "
          "<|endoftext|> = 50256)",
          t.vocab_size());
    }
    return t;
  }();
  return tokenizer;
}

BPETokenizer BPETokenizer::from_gpt2_files(const std::filesystem::path& encoder_json,
                                           const std::filesystem::path& vocab_bpe,
                                           std::string_view name) {
  std::string json_text = read_file(encoder_json);  // the encoder's error first
  return from_gpt2_texts(json_text, read_file(vocab_bpe), display_name(encoder_json),
                         display_name(vocab_bpe), std::string(name),
                         encoder_json.parent_path().filename().string());
}

BPETokenizer BPETokenizer::from_hf_tokenizer_json(const std::filesystem::path& tokenizer_json,
                                                  std::string_view name) {
  const std::string file = display_name(tokenizer_json);
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(read_file(tokenizer_json));
  } catch (const nlohmann::json::parse_error& e) {
    fail_malformed_json(file, e);
  }
  const auto kind = [](const nlohmann::ordered_json& node) -> std::string {
    if (!node.is_object() || !node.contains("type") || !node["type"].is_string()) return "none";
    return node["type"].get<std::string>();
  };
  if (!j.is_object() || !j.contains("model")) fail("{}: no \"model\" (not a tokenizer.json)", file);
  const auto& model = j["model"];
  if (kind(model) != "BPE") {
    fail("{}: a {} model; only GPT-2's byte-level BPE is read (model.type BPE)", file,
         kind(model));
  }
  const auto pre = j.contains("pre_tokenizer") ? kind(j["pre_tokenizer"]) : "none";
  if (pre != "ByteLevel") {
    fail("{}: pre_tokenizer {}; only GPT-2's byte-level BPE is read (pre_tokenizer ByteLevel)",
         file, pre);
  }
  if (!model.contains("vocab") || !model["vocab"].is_object())
    fail("{}: model.vocab: expected an object of token -> id", file);
  if (!model.contains("merges") || !model["merges"].is_array())
    fail("{}: model.merges: expected a list of merges", file);
  // The same checks as GPT-2's two files: vocab as encoder.json, merges as vocab.bpe's lines.
  auto vocab = model["vocab"];
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("content") || !t["content"].is_string() ||
          !t.contains("id") || !t["id"].is_number_unsigned()) {
        fail("{}: added_tokens: expected objects with a string content and an id", file);
      }
      const auto content = t["content"].get<std::string>();
      if (!vocab.contains(content)) vocab[content] = t["id"];
    }
  }
  std::string merges = "#version: 0.2\n";
  size_t index = 0;
  for (const auto& m : model["merges"]) {
    if (m.is_string()) {
      merges += m.get<std::string>();
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges += m[0].get<std::string>() + " " + m[1].get<std::string>();
    } else {
      fail("{}: model.merges[{}]: expected \"left right\" or [left, right], found {}", file,
           index, m.dump());
    }
    merges += '\n';
    ++index;
  }
  return from_gpt2_texts(vocab.dump(), merges, file + " (model.vocab)", file + " (model.merges)",
                         std::string(name), tokenizer_json.parent_path().filename().string());
}

BPETokenizer BPETokenizer::from_gpt2_texts(const std::string& json_text,
                                           const std::string& bpe_text,
                                           const std::string& enc_name,
                                           const std::string& bpe_name, const std::string& name,
                                           const std::string& folder) {

  // encoder.json: key (GPT-2 alphabet) -> id; ids must be 0..N-1, each once.
  EncoderJsonReader reader(enc_name);
  nlohmann::json::sax_parse(json_text, &reader);
  if (reader.entries.empty())
    fail("{}: no tokens (expected a JSON object of token -> id)", enc_name);
  const std::size_t count = reader.entries.size();
  std::vector<const std::string*> key_of(count, nullptr);
  for (const auto& [key, id] : reader.entries) {
    if (static_cast<std::size_t>(id) >= count) {
      fail("{}: key {}: id {} out of range (ids must be 0..{} for {} entries)", enc_name, show(key),
           id, count - 1, count);
    }
    if (key_of[id])
      fail("{}: id {} is used by both {} and {}", enc_name, id, show(*key_of[id]), show(key));
    key_of[id] = &key;
  }
  std::unordered_map<std::string_view, int64_t> id_of_key;
  id_of_key.reserve(count);
  std::vector<std::string> bytes_of(count);
  for (std::size_t id = 0; id < count; ++id) {
    id_of_key.emplace(*key_of[id], static_cast<int64_t>(id));
    char32_t bad = 0;
    auto bytes = from_alphabet(*key_of[id], &bad);
    if (!bytes) {
      fail("{}: key {}: character U+{:04X} is not in GPT-2's byte alphabet", enc_name,
           show(*key_of[id]), static_cast<unsigned>(bad));
    }
    bytes_of[id] = std::move(*bytes);
  }
  if (count < 256)
    fail("{}: {} entries; GPT-2's format needs at least the 256 single bytes", enc_name, count);
  for (std::size_t id = 0; id < 256; ++id) {
    const unsigned char want = kGpt2ByteOrder[id];
    if (bytes_of[id].size() != 1 || static_cast<unsigned char>(bytes_of[id][0]) != want) {
      fail("{}: id {} is {}, but GPT-2's format has the single byte {} there", enc_name, id,
           show(*key_of[id]), show(gpt2_byte_to_unicode(want)));
    }
  }

  // vocab.bpe: a version line, then merge k (1-based) on line k + 1 makes the token of id 255 + k.
  std::vector<std::pair<int64_t, int64_t>> merges;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < bpe_text.size()) {
    std::size_t end = bpe_text.find('\n', pos);
    if (end == std::string::npos) end = bpe_text.size();
    std::string_view line(bpe_text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1) {
      if (line.substr(0, 9) != "#version:") {
        fail("{}:1: expected the version line '#version: 0.2', found {}", bpe_name, show(line));
      }
      continue;
    }
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos) {
      fail("{}:{}: expected a merge 'left right' (two symbols and one space), found {}", bpe_name,
           line_no, show(line));
    }
    const std::string_view left = line.substr(0, space);
    const std::string_view right = line.substr(space + 1);
    const auto a = id_of_key.find(left);
    const auto b = id_of_key.find(right);
    if (a == id_of_key.end())
      fail("{}:{}: unknown symbol {} (not in {})", bpe_name, line_no, show(left), enc_name);
    if (b == id_of_key.end())
      fail("{}:{}: unknown symbol {} (not in {})", bpe_name, line_no, show(right), enc_name);
    const std::string merged = std::string(left) + std::string(right);
    const auto m = id_of_key.find(merged);
    if (m == id_of_key.end()) {
      fail("{}:{}: merging {} and {} gives {}, which is not in {}", bpe_name, line_no, show(left),
           show(right), show(merged), enc_name);
    }
    const int64_t rank = static_cast<int64_t>(256 + merges.size());
    if (m->second != rank) {
      fail(
          "{}:{}: {} has id {} in {}, but this merge makes it token {} (ids must follow the merge "
          "order)",
          bpe_name, line_no, show(merged), m->second, enc_name, rank);
    }
    merges.emplace_back(a->second, b->second);
  }
  if (line_no == 0) fail("{}: empty file (expected a version line and merges)", bpe_name);

  // Entries after the merges are special tokens.
  const std::size_t mergeable = 256 + merges.size();
  std::vector<std::string> specials;
  for (std::size_t id = mergeable; id < count; ++id) {
    if (!looks_special(bytes_of[id])) {
      fail("{}: {} (id {}) is neither a single byte, a merge of {}, nor a special token <|...|>",
           enc_name, show(*key_of[id]), id, bpe_name);
    }
    specials.push_back(bytes_of[id]);
  }
  bytes_of.resize(mergeable);
  const std::string shown = name.empty() ? fmt::format("bpe {} ({} tokens)", folder, count) : name;
  spdlog::debug("loaded {} and {}: {} tokens, {} merges", enc_name, bpe_name, count, merges.size());
  return BPETokenizer(build_impl(std::move(bytes_of), std::move(merges), specials, shown, enc_name));
}

// --- Loading tiktoken's ranks file ---------------------------------------------------------

namespace {

std::optional<std::string> base64_decode(std::string_view in) {
  static const auto table = [] {
    std::array<int8_t, 256> t;
    t.fill(-1);
    const char* chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(chars[i])] = static_cast<int8_t>(i);
    return t;
  }();
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  while (pad < 2 && in[in.size() - 1 - pad] == '=') ++pad;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < in.size() - pad; ++i) {
    const int8_t v = table[static_cast<unsigned char>(in[i])];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // non-canonical trailing bits
  return out;
}

}  // namespace

BPETokenizer BPETokenizer::from_tiktoken_file(
    const std::filesystem::path& ranks_file,
    std::optional<std::vector<std::pair<std::string, int64_t>>> special_tokens) {
  const std::string file = display_name(ranks_file);
  const std::string text = read_file(ranks_file);
  std::vector<std::string> tokens;
  std::vector<std::size_t> line_of;  // by rank, for messages
  // Ranks are 0..n-1, one a line: a rank beyond the line count is an error found before the
  // tables grow to it (a 14-byte file must not ask for gigabytes).
  const auto lines = static_cast<int64_t>(std::count(text.begin(), text.end(), '\n')) +
                     (text.empty() || text.back() == '\n' ? 0 : 1);
  std::size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
      fail("{}:{}: expected '<base64 token> <rank>', found {}", file, line_no, show(line));
    }
    auto token = base64_decode(line.substr(0, space));
    if (!token) fail("{}:{}: invalid base64 {}", file, line_no, show(line.substr(0, space)));
    const std::string_view rank_text = line.substr(space + 1);
    int64_t rank = 0;
    const auto [ptr, ec] =
        std::from_chars(rank_text.data(), rank_text.data() + rank_text.size(), rank);
    if (ec != std::errc() || ptr != rank_text.data() + rank_text.size() || rank < 0 ||
        rank >= (1 << 30)) {
      fail("{}:{}: invalid rank {}", file, line_no, show(rank_text));
    }
    if (rank >= lines) {
      fail("{}:{}: rank {} is beyond the file's line count ({}; ranks must be 0..n-1, one a "
           "line)",
           file, line_no, rank, lines);
    }
    if (static_cast<std::size_t>(rank) >= tokens.size()) {
      tokens.resize(rank + 1);
      line_of.resize(rank + 1, 0);
    }
    if (line_of[rank] != 0)
      fail("{}:{}: rank {} already given on line {}", file, line_no, rank, line_of[rank]);
    tokens[rank] = std::move(*token);
    line_of[rank] = line_no;
  }
  for (std::size_t r = 0; r < tokens.size(); ++r) {
    if (line_of[r] == 0)
      fail("{}: rank {} is missing (ranks must be 0..{})", file, r, tokens.size() - 1);
  }
  const auto n = static_cast<int64_t>(tokens.size());
  auto specials = special_tokens.value_or(
      std::vector<std::pair<std::string, int64_t>>{{std::string(kEndOfText), n}});
  std::sort(specials.begin(), specials.end(),
            [](const auto& x, const auto& y) { return x.second < y.second; });
  std::vector<std::string> names;
  for (std::size_t i = 0; i < specials.size(); ++i) {
    if (specials[i].second != n + static_cast<int64_t>(i)) {
      fail(
          "{}: special token {} has id {}; special tokens must take the ids after the ranks "
          "({}...)",
          file, show(specials[i].first), specials[i].second, n);
    }
    names.push_back(specials[i].first);
  }
  const std::string name = fmt::format("bpe {} ({} tokens)", ranks_file.stem().string(),
                                       n + static_cast<int64_t>(names.size()));
  return BPETokenizer(build_impl(std::move(tokens), {}, names, name, file));
}

// --- Encoding and decoding -----------------------------------------------------------------

std::vector<int64_t> BPETokenizer::encode_ordinary(std::string_view text) const {
  require_valid_utf8(text, "text to encode");
  std::vector<int64_t> out;
  out.reserve(text.size() / 4 + 16);
  ChunkCache cache;
  impl_->encode_ordinary(text, out, cache);
  return out;
}

std::vector<int64_t> BPETokenizer::encode(std::string_view text,
                                          const EncodeOptions& options) const {
  require_valid_utf8(text, "text to encode");
  const auto& specials = impl_->specials;
  for (const auto& name : options.allowed_special) {
    if (!special_token_id(name))
      fail("allowed_special: {} is not a special token of {}", show(name), impl_->name);
  }
  std::vector<const std::pair<std::string, int64_t>*> allowed, disallowed;
  for (const auto& s : specials) {
    if (options.allow_all_special || options.allowed_special.count(s.first)) {
      allowed.push_back(&s);
    } else if (!options.special_as_text) {
      disallowed.push_back(&s);
    }
  }
  // tiktoken's default: a special token in the text that is not allowed is an error.
  std::size_t first_bad = std::string_view::npos;
  const std::pair<std::string, int64_t>* bad = nullptr;
  for (const auto* s : disallowed) {
    const std::size_t at = text.find(s->first);
    if (at < first_bad) first_bad = at, bad = s;
  }
  if (bad) {
    fail(
        "text to encode: special token {} at byte {} is not allowed (allow it, or encode it as "
        "text)",
        show(bad->first), first_bad);
  }

  std::vector<int64_t> out;
  out.reserve(text.size() / 4 + 16);
  ChunkCache cache;
  split_at_special_tokens(
      text, allowed,
      [&](std::string_view segment) { impl_->encode_ordinary(segment, out, cache); },
      [&](int64_t id) { out.push_back(id); });
  return out;
}

std::string BPETokenizer::decode_bytes(std::span<const int64_t> ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  const auto n = static_cast<int64_t>(impl_->tokens.size());
  for (const int64_t id : ids) {
    if (id < 0 || id >= n) fail("decode: token id {} out of range (vocabulary size {})", id, n);
    out += impl_->tokens[id];
  }
  return out;
}

std::string BPETokenizer::decode(std::span<const int64_t> ids) const {
  return utf8_replace_invalid(decode_bytes(ids));
}

int64_t BPETokenizer::vocab_size() const { return static_cast<int64_t>(impl_->tokens.size()); }

std::optional<int64_t> BPETokenizer::special_token_id(std::string_view token) const {
  for (const auto& [name, id] : impl_->specials) {
    if (name == token) return id;
  }
  return std::nullopt;
}

std::string BPETokenizer::name() const { return impl_->name; }

const std::string& BPETokenizer::token_bytes(int64_t id) const {
  if (id < 0 || id >= vocab_size())
    fail("token id {} out of range (vocabulary size {})", id, vocab_size());
  return impl_->tokens[id];
}

std::optional<int64_t> BPETokenizer::token_id(std::string_view bytes) const {
  if (const uint32_t* id = impl_->token_map.find(bytes, hash_bytes(bytes))) return *id;
  return special_token_id(bytes);
}

int64_t BPETokenizer::mergeable_count() const { return impl_->mergeable; }

std::vector<std::pair<std::string, int64_t>> BPETokenizer::special_tokens() const {
  return impl_->specials;
}

std::vector<std::pair<int64_t, int64_t>> BPETokenizer::merges() const {
  if (!impl_->merges.empty() || impl_->mergeable == 256) return impl_->merges;
  // Derived (a tokenizer loaded from ranks): the two parts BPE reaches with the lower ranks only.
  std::vector<std::pair<int64_t, int64_t>> merges;
  std::vector<int64_t> parts;
  for (int64_t id = 256; id < impl_->mergeable; ++id) {
    const std::string& t = impl_->tokens[id];
    parts.clear();
    impl_->bpe(t, parts, static_cast<uint32_t>(id));
    if (parts.size() != 2) {
      parts.clear();
      for (std::size_t k = 1; k < t.size() && parts.empty(); ++k) {
        const auto a = token_id(std::string_view(t).substr(0, k));
        const auto b = token_id(std::string_view(t).substr(k));
        if (a && b && *a < id && *b < id) parts = {*a, *b};
      }
      if (parts.empty())
        fail("{}: token {} ({}) is not a merge of two earlier tokens", impl_->name, id,
             show(to_alphabet(t)));
    }
    merges.emplace_back(parts[0], parts[1]);
  }
  return merges;
}

// --- Saving in GPT-2's format --------------------------------------------------------------

void BPETokenizer::save_gpt2(const std::filesystem::path& dir) const {
  for (int64_t id = 0; id < 256; ++id) {
    const std::string& t = impl_->tokens[id];
    if (t.size() != 1 || static_cast<unsigned char>(t[0]) != kGpt2ByteOrder[id]) {
      fail(
          "save_gpt2: {}: ids 0..255 are not the single bytes in GPT-2's order, which its format "
          "requires",
          impl_->name);
    }
  }
  const auto merge_list = merges();
  std::string json = "{";
  for (std::size_t id = 0; id < impl_->tokens.size(); ++id) {
    if (id > 0) json += ", ";
    append_json_string(json, to_alphabet(impl_->tokens[id]));
    json += fmt::format(": {}", id);
  }
  json += "}";
  std::string bpe = "#version: 0.2\n";
  for (const auto& [a, b] : merge_list) {
    bpe += to_alphabet(impl_->tokens[a]);
    bpe += ' ';
    bpe += to_alphabet(impl_->tokens[b]);
    bpe += '\n';
  }
  write_file_atomic(dir / "encoder.json", json);
  write_file_atomic(dir / "vocab.bpe", bpe);
  spdlog::debug("wrote {} and {}", (dir / "encoder.json").string(), (dir / "vocab.bpe").string());
}

}  // namespace llmfs
