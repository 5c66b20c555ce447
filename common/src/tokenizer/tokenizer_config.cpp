#include "llmfs/tokenizer/tokenizer_config.h"

#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/utf8.h"
#include "llmfs/core/data_files.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/tokenizer/sentencepiece_tokenizer.h"
#include "llmfs/tokenizer/simple_tokenizer.h"

namespace llmfs {

TokenizerConfig parse_tokenizer_config(ConfigNode node) {
  TokenizerConfig c;
  node.read("kind", c.kind, one_of({"gpt2", "bpe", "sentencepiece", "simple"}));
  node.read("encoder_json", c.encoder_json);
  node.read("vocab_bpe", c.vocab_bpe);
  node.read("tiktoken_ranks", c.tiktoken_ranks);
  node.read("tokenizer_json", c.tokenizer_json);
  node.read("model", c.model);
  node.read("text", c.text);
  node.read("version", c.version, in_range(int64_t{1}, int64_t{2}));
  if (c.kind == "bpe") {
    const bool gpt2_files = !c.encoder_json.empty() || !c.vocab_bpe.empty();
    const int sources = (gpt2_files ? 1 : 0) + (c.tiktoken_ranks.empty() ? 0 : 1) +
                        (c.tokenizer_json.empty() ? 0 : 1);
    node.check(sources == 1, "kind",
               "kind: bpe needs either encoder_json and vocab_bpe, or tiktoken_ranks, or "
               "tokenizer_json (one of them)");
    if (gpt2_files) {
      node.check(!c.encoder_json.empty(), "encoder_json", "required with vocab_bpe (kind: bpe)");
      node.check(!c.vocab_bpe.empty(), "vocab_bpe", "required with encoder_json (kind: bpe)");
    }
  }
  if (c.kind == "sentencepiece")
    node.check(!c.model.empty(), "model", "required for kind: sentencepiece");
  if (c.kind == "simple") node.check(!c.text.empty(), "text", "required for kind: simple");
  return c;
}

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerConfig& c) {
  if (c.kind == "gpt2") return std::make_unique<BPETokenizer>(BPETokenizer::gpt2());
  if (c.kind == "bpe") {
    if (!c.tiktoken_ranks.empty()) {
      return std::make_unique<BPETokenizer>(
          BPETokenizer::from_tiktoken_file(input_file(c.tiktoken_ranks)));
    }
    if (!c.tokenizer_json.empty()) {
      return std::make_unique<BPETokenizer>(
          BPETokenizer::from_hf_tokenizer_json(input_file(c.tokenizer_json)));
    }
    return std::make_unique<BPETokenizer>(
        BPETokenizer::from_gpt2_files(input_file(c.encoder_json), input_file(c.vocab_bpe)));
  }
  if (c.kind == "sentencepiece") {
    return std::make_unique<SentencePieceTokenizer>(
        SentencePieceTokenizer::load(input_file(c.model)));
  }
  if (c.kind == "simple") {
    const std::string text = read_file(input_file(c.text));
    require_valid_utf8(text, c.text);
    const auto tokens = simple_split(text);
    if (c.version == 1) return std::make_unique<SimpleTokenizerV1>(build_vocabulary(tokens));
    return std::make_unique<SimpleTokenizerV2>(
        build_vocabulary(tokens, {"<|endoftext|>", "<|unk|>"}));
  }
  fail("tokenizer.kind: unknown kind '{}' (use gpt2, bpe, sentencepiece or simple)", c.kind);
}

}  // namespace llmfs
