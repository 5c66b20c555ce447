#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llmfs/config/config_node.h"
#include "llmfs/ops/kernel_options.h"

namespace llmfs {

/// The GPT model's shape, named as the book's GPT_CONFIG_124M dict (§4.1), plus two options of
/// ours: `tie_weights` shares the output head with the token embedding (GPT-2 proper; the book
/// keeps them separate), and `attention` picks the book's attention arithmetic ("book") or
/// PyTorch's fused scaled-dot-product kernel ("sdpa"), which agree in eval mode, and
/// `native_kernels` runs faster kernels instead of the book's arithmetic (KernelOptions,
/// ops/kernel_options.h: fused layer norm, GELU and dropout, CPU training attention, the
/// one-token GEMV): faster, equal up to rounding in eval mode, other dropout masks in training.
struct GPTConfig {
  int64_t vocab_size = 50257;
  int64_t context_length = 1024;
  int64_t emb_dim = 768;
  int64_t n_heads = 12;
  int64_t n_layers = 12;
  double drop_rate = 0.1;
  bool qkv_bias = false;
  bool tie_weights = false;
  std::string attention = "book";
  bool native_kernels = false;

  /// The kernel choice every layer gets (from native_kernels).
  KernelOptions kernels() const { return KernelOptions{.native_kernels = native_kernels}; }

  bool operator==(const GPTConfig&) const = default;
};

/// Reads a `model:` section (every key optional; defaults are `defaults`, GPT_CONFIG_124M unless
/// given: chapter 5 passes its context length of 256).
GPTConfig parse_gpt_config(ConfigNode node, const GPTConfig& defaults = {});

/// The GPT-2 family as the book lists it (§4.6, §5.5): "124M", "355M", "774M", "1558M", with the
/// book's drop_rate 0.1 and no qkv bias (loading OpenAI weights sets qkv_bias). llmfs::Error for
/// another name.
GPTConfig gpt2_config(std::string_view size);

/// The names gpt2_config accepts, smallest first.
const std::vector<std::string>& gpt2_sizes();

/// Parameters of the book's GPTModel with this config, by arithmetic (no model is built):
/// embeddings, blocks, final norm and output head. With tie_weights the head shares the
/// embedding and is not counted twice.
int64_t count_gpt_parameters(const GPTConfig& config);

/// The count without the output head, as the book reports "considering weight tying" (§4.6).
int64_t count_gpt_parameters_tied(const GPTConfig& config);

}  // namespace llmfs
