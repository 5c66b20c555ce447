#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace llmfs {

/// GPT-2's pre-tokenisation (BOOK.md §1.2): text is cut into chunks by the pattern
///
///   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// implemented by hand (no regex engine), with the Unicode classes of Rust's regex crate, which
/// tiktoken uses: \p{L} and \p{N} are the general categories L* and N*, \s is the White_Space
/// property (from ICU). Contractions are matched case-sensitively, as in the pattern ('S is not
/// one). Chunks are contiguous: they cover the text without gaps.
///
/// The end of the chunk that starts at `pos` (pos < text.size()). `text` must be valid UTF-8
/// (check with require_valid_utf8 first); on invalid UTF-8 the result is still a position after
/// `pos` and inside the text, but the cut is unspecified.
std::size_t gpt2_chunk_end(std::string_view text, std::size_t pos);

/// All chunks of `text` (valid UTF-8), in order; they concatenate to `text`.
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

}  // namespace llmfs
