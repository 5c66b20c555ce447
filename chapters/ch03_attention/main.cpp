// Chapter 3: Coding attention mechanisms.
//
// Narrates sections 3.3-3.6 of the book on its six-token example ("Your journey starts with one
// step"), printing what the notebook prints (BOOK.md C3-01 .. C3-34): attention by hand, the
// trainable projections, causal masking and dropout, and the multi-head classes of
// llmfs/attention/.
//
//   ch03                          all sections
//   ch03 --section 3.5            one section
//   ch03 --config configs/ch03.yaml [seed=123 ...]
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <limits>

#include "llmfs/attention/causal_attention.h"
#include "llmfs/attention/multi_head_attention.h"
#include "llmfs/attention/self_attention.h"
#include "llmfs/config/cli.h"
#include "llmfs/core/repr.h"
#include "llmfs/core/sections.h"

namespace {

using llmfs::py_float;
using llmfs::py_repr;

struct Ch03Config {
  uint64_t seed = 123;        // before the raw matrices, SelfAttention_v1, dropout, the classes
  uint64_t seed_v2 = 789;     // before SelfAttention_v2 (§3.4.2, C3-20)
  int64_t d_out = 2;          // projection width of the demos
  double dropout_demo = 0.5;  // dropout rate of the §3.5.2 demo
  int64_t num_heads = 2;      // heads of the §3.6 demos
};

Ch03Config parse_ch03_config(llmfs::ConfigNode node) {
  Ch03Config c;
  node.read("seed", c.seed);
  node.read("seed_v2", c.seed_v2);
  node.read("d_out", c.d_out, llmfs::at_least(int64_t{1}));
  node.read("dropout_demo", c.dropout_demo, llmfs::in_range(0.0, 1.0));
  node.read("num_heads", c.num_heads, llmfs::at_least(int64_t{1}));
  node.check(c.d_out % c.num_heads == 0, "num_heads",
             "d_out ({}) must be divisible by num_heads ({}) for MultiHeadAttention", c.d_out,
             c.num_heads);
  return c;
}

// The running example: one 3-d embedding per token of "Your journey starts with one step".
torch::Tensor example_inputs() {
  return torch::tensor({{0.43f, 0.15f, 0.89f},    // Your     (x^1)
                        {0.55f, 0.87f, 0.66f},    // journey  (x^2)
                        {0.57f, 0.85f, 0.64f},    // starts   (x^3)
                        {0.22f, 0.58f, 0.33f},    // with     (x^4)
                        {0.77f, 0.25f, 0.10f},    // one      (x^5)
                        {0.05f, 0.80f, 0.55f}});  // step     (x^6)
}

// keys.shape[-1]**0.5, the book's scaling (a Python float).
double sqrt_dk(const torch::Tensor& keys) {
  return std::pow(static_cast<double>(keys.size(-1)), 0.5);
}

constexpr double kInf = std::numeric_limits<double>::infinity();

// --- 3.3 Attention without trainable weights --------------------------------------------------

void section_3_3() {
  const auto inputs = example_inputs();
  const auto query = inputs[1];  // the 2nd token is the query
  auto attn_scores_2 = torch::empty({inputs.size(0)});
  for (int64_t i = 0; i < inputs.size(0); ++i) attn_scores_2[i] = torch::dot(inputs[i], query);
  fmt::print("{}\n\n", py_repr(attn_scores_2));  // C3-01

  auto res = torch::zeros({});
  for (int64_t idx = 0; idx < inputs.size(1); ++idx) res = res + inputs[0][idx] * query[idx];
  fmt::print("{}\n{}\n\n", py_repr(res), py_repr(torch::dot(inputs[0], query)));  // C3-02

  const auto attn_weights_2_tmp = attn_scores_2 / attn_scores_2.sum();
  fmt::print("Attention weights: {}\nSum: {}\n\n", py_repr(attn_weights_2_tmp),
             py_repr(attn_weights_2_tmp.sum()));  // C3-03

  const auto softmax_naive = [](const torch::Tensor& x) {
    return torch::exp(x) / torch::exp(x).sum(0);
  };
  const auto attn_weights_2_naive = softmax_naive(attn_scores_2);
  fmt::print("Attention weights: {}\nSum: {}\n\n", py_repr(attn_weights_2_naive),
             py_repr(attn_weights_2_naive.sum()));  // C3-04

  const auto attn_weights_2 = torch::softmax(attn_scores_2, 0);
  fmt::print("Attention weights: {}\nSum: {}\n\n", py_repr(attn_weights_2),
             py_repr(attn_weights_2.sum()));  // C3-05

  auto context_vec_2 = torch::zeros(query.sizes());
  for (int64_t i = 0; i < inputs.size(0); ++i) context_vec_2 += attn_weights_2[i] * inputs[i];
  fmt::print("{}\n\n", py_repr(context_vec_2));  // C3-06

  // All queries at once: first with loops, then as one matrix product.
  auto attn_scores = torch::empty({6, 6});
  for (int64_t i = 0; i < inputs.size(0); ++i) {
    for (int64_t j = 0; j < inputs.size(0); ++j)
      attn_scores[i][j] = torch::dot(inputs[i], inputs[j]);
  }
  fmt::print("{}\n\n", py_repr(attn_scores));  // C3-07
  attn_scores = inputs.matmul(inputs.t());
  fmt::print("{}\n\n", py_repr(attn_scores));  // C3-08
  const auto attn_weights = torch::softmax(attn_scores, -1);
  fmt::print("{}\n\n", py_repr(attn_weights));  // C3-09

  double row_2_sum = 0.0;  // the printed row 2 of C3-09, summed as Python floats
  for (double w : {0.1385, 0.2379, 0.2333, 0.1240, 0.1082, 0.1581}) row_2_sum += w;
  fmt::print("Row 2 sum: {}\nAll row sums: {}\n\n", py_float(row_2_sum),
             py_repr(attn_weights.sum(-1)));  // C3-10

  const auto all_context_vecs = attn_weights.matmul(inputs);
  fmt::print("{}\n\n", py_repr(all_context_vecs));                          // C3-11
  fmt::print("Previous 2nd context vector: {}\n", py_repr(context_vec_2));  // C3-12
}

// --- 3.4 Self-attention with trainable weights ------------------------------------------------

void section_3_4(const Ch03Config& cfg) {
  const auto inputs = example_inputs();
  const auto x_2 = inputs[1];
  const int64_t d_in = inputs.size(1), d_out = cfg.d_out;

  torch::manual_seed(cfg.seed);
  const auto W_query = torch::rand({d_in, d_out});  // requires_grad=False in the book
  const auto W_key = torch::rand({d_in, d_out});
  const auto W_value = torch::rand({d_in, d_out});

  const auto query_2 = x_2.matmul(W_query);
  fmt::print("{}\n\n", py_repr(query_2));  // C3-13

  const auto keys = inputs.matmul(W_key);
  const auto values = inputs.matmul(W_value);
  fmt::print("keys.shape: {}\nvalues.shape: {}\n\n", py_repr(keys.sizes()),
             py_repr(values.sizes()));  // C3-14

  const auto keys_2 = keys[1];
  fmt::print("{}\n\n", py_repr(query_2.dot(keys_2)));  // C3-15
  const auto attn_scores_2 = query_2.matmul(keys.t());
  fmt::print("{}\n\n", py_repr(attn_scores_2));  // C3-16
  const auto attn_weights_2 = torch::softmax(attn_scores_2 / sqrt_dk(keys), -1);
  fmt::print("{}\n\n", py_repr(attn_weights_2));                 // C3-17
  fmt::print("{}\n\n", py_repr(attn_weights_2.matmul(values)));  // C3-18

  torch::manual_seed(cfg.seed);
  llmfs::SelfAttention_v1 sa_v1(d_in, d_out);
  fmt::print("{}\n\n", py_repr(sa_v1(inputs)));  // C3-19

  torch::manual_seed(cfg.seed_v2);
  llmfs::SelfAttention_v2 sa_v2(d_in, d_out);
  fmt::print("{}\n", py_repr(sa_v2(inputs)));  // C3-20
}

// --- 3.5 Causal attention ---------------------------------------------------------------------

void section_3_5(const Ch03Config& cfg) {
  const auto inputs = example_inputs();
  const int64_t d_in = inputs.size(1), d_out = cfg.d_out;
  torch::manual_seed(cfg.seed_v2);  // the weights of §3.4's SelfAttention_v2
  llmfs::SelfAttention_v2 sa_v2(d_in, d_out);

  const auto queries = sa_v2->W_query(inputs);
  const auto keys = sa_v2->W_key(inputs);
  const auto attn_scores = queries.matmul(keys.t());
  auto attn_weights = torch::softmax(attn_scores / sqrt_dk(keys), -1);
  fmt::print("{}\n\n", py_repr(attn_weights));  // C3-21

  // Method 1: zero the weights above the diagonal, then renormalise each row.
  const int64_t context_length = attn_scores.size(0);
  const auto mask_simple = torch::tril(torch::ones({context_length, context_length}));
  fmt::print("{}\n\n", py_repr(mask_simple));  // C3-22
  const auto masked_simple = attn_weights * mask_simple;
  fmt::print("{}\n\n", py_repr(masked_simple));  // C3-23
  const auto row_sums = masked_simple.sum(-1, /*keepdim=*/true);
  fmt::print("{}\n\n", py_repr(masked_simple / row_sums));  // C3-24

  // Method 2 (used from here on): -inf above the diagonal before the softmax.
  const auto mask = torch::triu(torch::ones({context_length, context_length}), 1);
  const auto masked = attn_scores.masked_fill(mask.to(torch::kBool), -kInf);
  fmt::print("{}\n\n", py_repr(masked));  // C3-25
  attn_weights = torch::softmax(masked / sqrt_dk(keys), -1);
  fmt::print("{}\n\n", py_repr(attn_weights));  // C3-26

  // Dropout (R items: this build's Bernoulli path; BOOK.md §13.3).
  torch::manual_seed(cfg.seed);
  torch::nn::Dropout dropout(cfg.dropout_demo);
  fmt::print("{}\n\n", py_repr(dropout(torch::ones({6, 6}))));  // C3-27
  torch::manual_seed(cfg.seed);
  fmt::print("{}\n\n", py_repr(dropout(attn_weights)));  // C3-28

  const auto batch = torch::stack({inputs, inputs}, 0);
  fmt::print("{}\n\n", py_repr(batch.sizes()));  // C3-29

  torch::manual_seed(cfg.seed);
  llmfs::CausalAttention ca(llmfs::CausalAttentionOptions(d_in, d_out, batch.size(1)).dropout(0.0));
  const auto context_vecs = ca(batch);
  fmt::print("{}\ncontext_vecs.shape: {}\n", py_repr(context_vecs),
             py_repr(context_vecs.sizes()));  // C3-30
}

// --- 3.6 Multi-head attention -----------------------------------------------------------------

void section_3_6(const Ch03Config& cfg) {
  const auto inputs = example_inputs();
  const auto batch = torch::stack({inputs, inputs}, 0);
  const int64_t context_length = batch.size(1), d_in = batch.size(2), d_out = cfg.d_out;

  torch::manual_seed(cfg.seed);
  llmfs::MultiHeadAttentionWrapper wrapper(
      llmfs::CausalAttentionOptions(d_in, d_out, context_length).dropout(0.0), cfg.num_heads);
  auto context_vecs = wrapper(batch);
  fmt::print("{}\ncontext_vecs.shape: {}\n\n", py_repr(context_vecs),
             py_repr(context_vecs.sizes()));  // C3-31

  torch::manual_seed(cfg.seed);
  llmfs::MultiHeadAttention mha(
      llmfs::MultiHeadAttentionOptions(d_in, d_out, context_length, cfg.num_heads).dropout(0.0));
  context_vecs = mha(batch);
  fmt::print("{}\ncontext_vecs.shape: {}\n\n", py_repr(context_vecs),
             py_repr(context_vecs.sizes()));  // C3-32

  // Batched matrix products over the heads: (b, num_heads, num_tokens, head_dim) = (1, 2, 3, 4).
  const auto a =
      torch::tensor({0.2745f, 0.6584f, 0.2775f, 0.8573f, 0.8993f, 0.0390f, 0.9268f, 0.7388f,
                     0.7179f, 0.7058f, 0.9156f, 0.4340f, 0.0772f, 0.3565f, 0.1479f, 0.5331f,
                     0.4066f, 0.2318f, 0.4545f, 0.9737f, 0.4606f, 0.5159f, 0.4220f, 0.5786f})
          .view({1, 2, 3, 4});
  fmt::print("{}\n\n", py_repr(a.matmul(a.transpose(2, 3))));  // C3-33
  const auto first_head = a[0][0];
  fmt::print("First head:\n {}\n", py_repr(first_head.matmul(first_head.t())));  // C3-34
  const auto second_head = a[0][1];
  fmt::print("\nSecond head:\n {}\n", py_repr(second_head.matmul(second_head.t())));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Chapter 3: Coding attention mechanisms"};
  llmfs::CommonOptions common;
  llmfs::add_common_options(app, common);
  std::string only_section;
  app.add_option("--section", only_section, "Run one section, e.g. 3.5");
  if (const auto code = llmfs::parse_command_line(app, argc, argv)) return *code;

  return llmfs::run_main([&] {
    const auto cfg = llmfs::load_config<Ch03Config>(common, parse_ch03_config);
    return llmfs::run_sections(
        {{"3.3", "Attending to different parts of the input with self-attention", section_3_3},
         {"3.4", "Implementing self-attention with trainable weights", [&] { section_3_4(cfg); }},
         {"3.5", "Hiding future words with causal attention", [&] { section_3_5(cfg); }},
         {"3.6", "Extending single-head attention to multi-head attention",
          [&] { section_3_6(cfg); }}},
        only_section);
  });
}
