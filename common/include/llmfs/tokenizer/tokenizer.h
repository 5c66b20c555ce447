#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmfs {

/// Which special tokens (e.g. "<|endoftext|>") encode() recognises in the text, as in tiktoken:
/// an allowed special token becomes its id; one that appears but is not allowed is an
/// llmfs::Error (tiktoken's default), unless `special_as_text` is set, which encodes it as
/// ordinary text (tiktoken's disallowed_special=()).
struct EncodeOptions {
  std::set<std::string> allowed_special;  // e.g. {"<|endoftext|>"}
  bool allow_all_special = false;         // tiktoken's allowed_special="all"
  bool special_as_text = false;           // tiktoken's disallowed_special=(): encode them as text
};

/// The interface every tokenizer implements (GPT-2 BPE, a trained BPE, SentencePiece, the
/// book's regex tokenizers), so datasets, generation and the chapters take any of them.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  /// Text (UTF-8) to token ids. Invalid UTF-8 is an llmfs::Error naming the byte offset.
  virtual std::vector<int64_t> encode(std::string_view text,
                                      const EncodeOptions& options = {}) const = 0;

  /// Token ids to text. Never throws for ids in range; byte-level tokenizers replace invalid
  /// UTF-8 (a partial character) with U+FFFD, as Python's errors="replace".
  virtual std::string decode(std::span<const int64_t> ids) const = 0;

  /// Number of ids (the embedding table size a model needs).
  virtual int64_t vocab_size() const = 0;

  /// The id of a special token such as "<|endoftext|>", if the tokenizer has it.
  virtual std::optional<int64_t> special_token_id(std::string_view token) const = 0;

  /// Short description for logs: "gpt2 (50257 tokens)".
  virtual std::string name() const = 0;
};

/// "<|endoftext|>", the document separator of GPT-2 (id 50256) and of the book's V2 tokenizer.
inline constexpr std::string_view kEndOfText = "<|endoftext|>";

/// A special token's text and id.
using SpecialToken = std::pair<std::string, int64_t>;

/// The special-token scan every encode() shares: walks `text` left to right, calling
/// plain(segment) for each stretch before the next allowed special token (and for the rest) and
/// special(id) for each allowed special token; where several start at one byte the longest wins.
template <typename Plain, typename Special>
void split_at_special_tokens(std::string_view text, std::span<const SpecialToken* const> allowed,
                             Plain&& plain, Special&& special) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t at = std::string_view::npos;
    const SpecialToken* found = nullptr;
    for (const auto* s : allowed) {
      const std::size_t i = text.find(s->first, pos);
      if (i < at ||
          (i == at && i != std::string_view::npos && s->first.size() > found->first.size())) {
        at = i;
        found = s;
      }
    }
    plain(text.substr(pos, (found ? at : text.size()) - pos));
    if (!found) break;
    special(found->second);
    pos = at + found->first.size();
  }
}

}  // namespace llmfs
