#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmfs/config/config_node.h"
#include "llmfs/tokenizer/tokenizer.h"

namespace llmfs {

/// Settings of SentencePiece training (YAML keys = SentencePiece's own option names). The
/// defaults make the tokenizer lossless, decode(encode(x)) == x: no normalisation, whitespace kept
/// as it is, and characters outside the vocabulary spelled as byte pieces <0xNN>.
struct SentencePieceTrainerConfig {
  int64_t vocab_size = 2000;
  std::string model_type = "unigram";                // unigram | bpe | char | word
  double character_coverage = 0.9995;                // share of characters covered by char pieces
  bool byte_fallback = true;                         // unknown characters as UTF-8 byte pieces
  std::string normalization_rule_name = "identity";  // SentencePiece's default is nmt_nfkc (lossy)
  bool remove_extra_whitespaces = false;
  bool add_dummy_prefix = true;  // a space before the text, as SentencePiece does
  bool split_digits = false;
  int64_t max_sentence_length = 16384;  // bytes; longer lines are skipped in training
  std::vector<std::string> special_tokens = {"<|endoftext|>"};  // control symbols, ids 1, 2, ...
  int64_t num_threads = 1;  // 1: the same model on every machine
  int64_t seed = 123;       // SentencePiece's random generator
};

/// Reads the keys above from a config section; absent keys keep the values of `defaults`.
SentencePieceTrainerConfig parse_sentencepiece_trainer_config(
    ConfigNode node, SentencePieceTrainerConfig defaults = {});

/// SentencePiece (libsentencepiece) behind the Tokenizer interface.
///
///   auto tok = llmfs::SentencePieceTokenizer::load("runs/sp/tokenizer.model");
///   tok.encode("운수 좋은 날")
///
/// Special tokens (e.g. "<|endoftext|>") are SentencePiece control symbols, which SentencePiece
/// never produces from text; encode() inserts their ids where EncodeOptions allows them (tiktoken's
/// semantics, as BPETokenizer), and decode() writes them back as text. Id 0 is <unk>. The same
/// model file gives the same ids in Python's sentencepiece.
class SentencePieceTokenizer final : public Tokenizer {
 public:
  /// Loads a .model file; an unreadable or malformed file is an llmfs::Error naming it.
  static SentencePieceTokenizer load(const std::filesystem::path& model_file);

  /// From a serialized ModelProto (the bytes of a .model file); `source` names it in messages.
  static SentencePieceTokenizer from_serialized(std::string model_proto, std::string_view source);

  /// Trains on `text` (each line a sentence; invalid UTF-8 is an llmfs::Error with the offset).
  static SentencePieceTokenizer train(std::string_view text,
                                      const SentencePieceTrainerConfig& config);

  std::vector<int64_t> encode(std::string_view text,
                              const EncodeOptions& options = {}) const override;
  std::string decode(std::span<const int64_t> ids) const override;
  int64_t vocab_size() const override;
  std::optional<int64_t> special_token_id(std::string_view token) const override;
  std::string name() const override;

  /// The piece of an id ("▁날", "<0x0A>", "<|endoftext|>").
  std::string piece(int64_t id) const;

  /// Writes the model (atomically) and, beside it, a .vocab file (piece, tab, score per line).
  void save(const std::filesystem::path& model_file) const;

  /// The serialized ModelProto.
  const std::string& serialized_model() const;

  struct Impl;

 private:
  explicit SentencePieceTokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace llmfs
