#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmfs/tokenizer/tokenizer.h"

namespace llmfs {

/// Byte-level BPE with GPT-2's pre-tokenisation (BOOK.md §1.2), giving the same ids as tiktoken:
///
///   const auto tok = llmfs::BPETokenizer::gpt2();
///   tok.encode("Hello, world")          // {15496, 11, 995}
///   tok.decode(ids)                     // lossless for any UTF-8 text
///
/// Tokens are byte strings; a token's id is its merge rank (tiktoken's convention: the 256 single
/// bytes first, then one token per merge, in merge order), special tokens come after them.
/// Within a chunk the adjacent pair whose concatenation has the lowest rank is merged first
/// (leftmost on ties), until no adjacent concatenation is a token; a chunk that is itself a token
/// is that token. Encoding is single-threaded and the object is immutable: share it freely
/// between threads. Copies are cheap (shared state).
class BPETokenizer final : public Tokenizer {
 public:
  /// GPT-2's tokenizer from llmfs::data_file("gpt2/encoder.json") and ("gpt2/vocab.bpe").
  static BPETokenizer gpt2();

  /// Loads GPT-2's file format: encoder.json (token string in GPT-2's byte alphabet -> id) and
  /// vocab.bpe ("#version: ..." line, then one merge "left right" per line). The files must agree
  /// the way tiktoken requires: ids 0..255 are the single bytes in GPT-2's order, the merge on
  /// line k has id 255 + k, and every other entry is a special token written "<|...|>". Anything
  /// else is an llmfs::Error naming the file and the line or key. `name` is what name() shows
  /// (default: "bpe <folder> (<n> tokens)").
  static BPETokenizer from_gpt2_files(const std::filesystem::path& encoder_json,
                                      const std::filesystem::path& vocab_bpe,
                                      std::string_view name = {});

  /// Loads a Hugging Face tokenizer.json of GPT-2's kind (transformers' save_pretrained of a
  /// GPT-2 tokenizer): a "BPE" model under a "ByteLevel" pre-tokenizer, its vocab and merges
  /// held to the same rules as from_gpt2_files, added tokens "<|...|>" after them. Any other kind
  /// is an llmfs::Error naming the file and what it found.
  static BPETokenizer from_hf_tokenizer_json(const std::filesystem::path& tokenizer_json,
                                             std::string_view name = {});

  /// Loads tiktoken's ranks file ("<base64 token> <rank>" per line, e.g. r50k_base.tiktoken) with
  /// GPT-2's pre-tokenisation. Ranks must be 0..N-1 and include all 256 single bytes. Special
  /// tokens get the ids given (default: "<|endoftext|>" = N, as in GPT-2).
  static BPETokenizer from_tiktoken_file(
      const std::filesystem::path& ranks_file,
      std::optional<std::vector<std::pair<std::string, int64_t>>> special_tokens = std::nullopt);

  /// Builds a tokenizer from its parts: `tokens[i]` is the byte string of id i (ids 0..255 must
  /// be the 256 single bytes), `merges[k]` the two ids whose concatenation is token 256 + k (used
  /// when saving; empty: derived on save), `special_tokens` are given ids tokens.size(), ....
  /// Inconsistent parts are an llmfs::Error (`source` names them in the message).
  BPETokenizer(std::vector<std::string> tokens, std::vector<std::pair<int64_t, int64_t>> merges,
               const std::vector<std::string>& special_tokens, std::string name,
               std::string_view source = "BPETokenizer");

  std::vector<int64_t> encode(std::string_view text,
                              const EncodeOptions& options = {}) const override;
  std::string decode(std::span<const int64_t> ids) const override;
  int64_t vocab_size() const override;
  std::optional<int64_t> special_token_id(std::string_view token) const override;
  std::string name() const override;

  /// encode() with special tokens treated as plain text (tiktoken's encode_ordinary).
  std::vector<int64_t> encode_ordinary(std::string_view text) const;

  /// The raw bytes of the tokens, concatenated (may end inside a UTF-8 character). Ids out of
  /// range are an llmfs::Error.
  std::string decode_bytes(std::span<const int64_t> ids) const;

  /// The byte string of one token (a special token: its text).
  const std::string& token_bytes(int64_t id) const;

  /// The id of a token given by its bytes (special tokens included), if it is one.
  std::optional<int64_t> token_id(std::string_view bytes) const;

  /// Number of ordinary (mergeable) tokens: 256 + number of merges.
  int64_t mergeable_count() const;

  /// The special tokens and their ids, in id order.
  std::vector<std::pair<std::string, int64_t>> special_tokens() const;

  /// The merges: for each token 256 + k, the two ids it was made of.
  std::vector<std::pair<int64_t, int64_t>> merges() const;

  /// Writes `dir/encoder.json` and `dir/vocab.bpe` (atomically) in GPT-2's format, readable by
  /// from_gpt2_files and by tiktoken.load.data_gym_to_mergeable_bpe_ranks. tiktoken keeps only
  /// "<|endoftext|>" and "<|startoftext|>" as special tokens of that format; other special tokens
  /// are written too but only our loader accepts them.
  void save_gpt2(const std::filesystem::path& dir) const;

  struct Impl;

 private:
  explicit BPETokenizer(std::shared_ptr<const Impl> impl);
  // GPT-2's format from the texts of its two files (named in errors); `name` to show, else
  // "bpe <folder> (<n> tokens)".
  static BPETokenizer from_gpt2_texts(const std::string& json_text, const std::string& bpe_text,
                                      const std::string& enc_name, const std::string& bpe_name,
                                      const std::string& name, const std::string& folder);
  std::shared_ptr<const Impl> impl_;
};

/// GPT-2's byte alphabet (BOOK.md §1.2): the printable character that stands for each byte in
/// encoder.json and vocab.bpe ("Ġ" for a space), as UTF-8.
const std::string& gpt2_byte_to_unicode(unsigned char byte);

/// The byte order of GPT-2's and tiktoken's single-byte tokens: kGpt2ByteOrder[id] is the byte
/// of token id (0..255): the printable bytes first, then the others in increasing order.
extern const std::array<unsigned char, 256> kGpt2ByteOrder;

}  // namespace llmfs
