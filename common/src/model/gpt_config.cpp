#include "llmfs/model/gpt_config.h"

#include "llmfs/core/error.h"

namespace llmfs {

GPTConfig parse_gpt_config(ConfigNode node, const GPTConfig& defaults) {
  GPTConfig c = defaults;
  node.read("vocab_size", c.vocab_size, at_least(int64_t{1}));
  node.read("context_length", c.context_length, at_least(int64_t{1}));
  node.read("emb_dim", c.emb_dim, at_least(int64_t{1}));
  node.read("n_heads", c.n_heads, at_least(int64_t{1}));
  node.read("n_layers", c.n_layers, at_least(int64_t{0}));
  node.read("drop_rate", c.drop_rate, in_range(0.0, 1.0));
  node.read("qkv_bias", c.qkv_bias);
  node.read("tie_weights", c.tie_weights);
  node.read("attention", c.attention, one_of({"book", "sdpa"}));
  node.read("native_kernels", c.native_kernels);
  node.check(c.n_heads > 0 && c.emb_dim % c.n_heads == 0, "n_heads",
             "emb_dim ({}) must be divisible by n_heads ({})", c.emb_dim, c.n_heads);
  return c;
}

const std::vector<std::string>& gpt2_sizes() {
  static const std::vector<std::string> sizes = {"124M", "355M", "774M", "1558M"};
  return sizes;
}

GPTConfig gpt2_config(std::string_view size) {
  GPTConfig c;  // 124M
  if (size == "124M") return c;
  if (size == "355M") {
    c.emb_dim = 1024, c.n_layers = 24, c.n_heads = 16;
  } else if (size == "774M") {
    c.emb_dim = 1280, c.n_layers = 36, c.n_heads = 20;
  } else if (size == "1558M") {
    c.emb_dim = 1600, c.n_layers = 48, c.n_heads = 25;
  } else {
    fail("unknown GPT-2 size '{}' (use 124M, 355M, 774M or 1558M)", size);
  }
  return c;
}

int64_t count_gpt_parameters_tied(const GPTConfig& c) {
  const int64_t C = c.emb_dim;
  const int64_t attention = 3 * (C * C + (c.qkv_bias ? C : 0)) + (C * C + C);  // q, k, v, out_proj
  const int64_t feed_forward = (C * 4 * C + 4 * C) + (4 * C * C + C);         // expand, contract
  const int64_t norms = 2 * (2 * C);                                           // scale + shift each
  const int64_t block = attention + feed_forward + norms;
  return c.vocab_size * C + c.context_length * C + c.n_layers * block + 2 * C;
}

int64_t count_gpt_parameters(const GPTConfig& c) {
  return count_gpt_parameters_tied(c) + (c.tie_weights ? 0 : c.vocab_size * c.emb_dim);
}

}  // namespace llmfs
