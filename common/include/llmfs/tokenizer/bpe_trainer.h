#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "llmfs/config/config_node.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"

namespace llmfs {

/// Settings of BPE training (YAML keys as named here).
struct BPETrainerConfig {
  int64_t vocab_size = 1000;  // final size: 256 bytes + merges + special tokens
  int64_t min_frequency = 2;  // a pair seen fewer times than this is never merged
  std::vector<std::string> special_tokens = {"<|endoftext|>"};  // ids after the merges
};

/// Reads vocab_size, min_frequency and special_tokens from a config section; absent keys keep the
/// values of `defaults`.
BPETrainerConfig parse_bpe_trainer_config(ConfigNode node, BPETrainerConfig defaults = {});

/// Called every so often with (merges done, merges wanted).
using BPETrainProgress = std::function<void(int64_t done, int64_t wanted)>;

/// Learns a byte-level BPE vocabulary from `text` (the book's bonus 2.5 idea; our own
/// implementation), for BPETokenizer and for tiktoken:
///   - the text is cut at the special tokens (which are never learned from), then into chunks by
///     GPT-2's pre-tokenisation; a merge never crosses a chunk;
///   - the alphabet is the 256 bytes, with ids 0..255 in GPT-2's byte order (tiktoken's file
///     format requires it), so any UTF-8 text (Korean included) is encodable;
///   - each step merges the most frequent adjacent pair, counted over all chunks weighted by how
///     often each chunk occurs, with counts updated incrementally (only the chunks that contain
///     the pair are rewritten);
///   - ties go to the pair with the smaller left id, then the smaller right id (older tokens
///     first), so the result depends only on the text and the config;
///   - a pair whose concatenation is already a token (made earlier by another pair) is merged
///     into that token without a new id, as BPETokenizer and tiktoken would merge it;
///   - training stops at vocab_size or when no pair is seen min_frequency times.
/// Invalid UTF-8 is an llmfs::Error naming the byte offset.
BPETokenizer train_bpe(std::string_view text, const BPETrainerConfig& config,
                       const BPETrainProgress& progress = {});

}  // namespace llmfs
