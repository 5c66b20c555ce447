#include "llmfs/generate/text_ids.h"

#include <vector>

namespace llmfs {

torch::Tensor text_to_token_ids(std::string_view text, const Tokenizer& tokenizer) {
  EncodeOptions options;
  options.allowed_special = {std::string(kEndOfText)};
  const std::vector<int64_t> ids = tokenizer.encode(text, options);
  return torch::tensor(ids, torch::kLong).unsqueeze(0);  // (1, n)
}

std::string token_ids_to_text(const torch::Tensor& ids, const Tokenizer& tokenizer) {
  TORCH_CHECK(ids.dim() == 1 || (ids.dim() == 2 && ids.size(0) == 1),
              "token_ids_to_text: expected ids (n) or (1, n), got ", ids.sizes());
  const auto flat = ids.reshape({-1}).to(torch::kCPU, torch::kLong).contiguous();
  const int64_t* data = flat.data_ptr<int64_t>();
  return tokenizer.decode(std::span<const int64_t>(data, static_cast<size_t>(flat.numel())));
}

}  // namespace llmfs
