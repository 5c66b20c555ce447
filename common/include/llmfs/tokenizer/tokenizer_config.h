#pragma once

#include <memory>
#include <string>

#include "llmfs/config/config_node.h"
#include "llmfs/tokenizer/tokenizer.h"

namespace llmfs {

/// Which tokenizer a run uses: the `tokenizer:` section of a config.
///
///   tokenizer:
///     kind: gpt2                  # gpt2 | bpe | sentencepiece | simple
///     encoder_json: out/encoder.json   # bpe: GPT-2 format files (from `ch02 train-bpe`) ...
///     vocab_bpe: out/vocab.bpe
///     tiktoken_ranks: ""          # ... or a tiktoken ranks file instead of the two above
///     tokenizer_json: ""          # ... or a Hugging Face tokenizer.json of GPT-2's kind
///     model: out/tokenizer.model  # sentencepiece
///     text: the-verdict.txt       # simple: the text whose words make the vocabulary
///     version: 2                  # simple: SimpleTokenizerV1 or V2
///
/// File names may be paths or data file names (llmfs::input_file).
struct TokenizerConfig {
  std::string kind = "gpt2";
  std::string encoder_json;
  std::string vocab_bpe;
  std::string tiktoken_ranks;
  std::string tokenizer_json;
  std::string model;
  std::string text = "the-verdict.txt";
  int64_t version = 2;
};

/// Reads a `tokenizer:` section; the keys a kind needs are required for that kind.
TokenizerConfig parse_tokenizer_config(ConfigNode node);

/// The tokenizer a config describes (loading its files).
std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerConfig& config);

}  // namespace llmfs
