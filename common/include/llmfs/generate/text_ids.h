#pragma once

#include <torch/torch.h>

#include <string>
#include <string_view>

#include "llmfs/tokenizer/tokenizer.h"

namespace llmfs {

/// The book's text_to_token_ids (§5.1.1): the text encoded with "<|endoftext|>" allowed, as a
/// (1, n) int64 tensor (a batch of one).
torch::Tensor text_to_token_ids(std::string_view text, const Tokenizer& tokenizer);

/// The book's token_ids_to_text (§5.1.1): ids (n) or (1, n), on any device, decoded.
std::string token_ids_to_text(const torch::Tensor& ids, const Tokenizer& tokenizer);

}  // namespace llmfs
