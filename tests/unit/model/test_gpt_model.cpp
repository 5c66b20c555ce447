#include "catch.h"
#include "llmfs/model/feed_forward.h"
#include "llmfs/model/gelu.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/attention/kv_cache.h"
#include "llmfs/model/layer_norm.h"
#include "llmfs/model/parameter_count.h"
#include "llmfs/model/transformer_block.h"
#include "tensor_compare.h"
#include "tolerances.h"

namespace {

llmfs::GPTConfig tiny_config() {
  llmfs::GPTConfig cfg;
  cfg.vocab_size = 50;
  cfg.context_length = 12;
  cfg.emb_dim = 16;
  cfg.n_heads = 4;
  cfg.n_layers = 2;
  cfg.drop_rate = 0.1;
  return cfg;
}

void require_close(const torch::Tensor& actual, const torch::Tensor& expected, double atol) {
  const auto check = llmfs::test::compare(actual, expected, atol, 0.0);
  INFO(check.report);
  REQUIRE(check.ok);
}

}  // namespace

TEST_CASE("LayerNorm normalises with the biased variance and eps 1e-5", "[unit][model]") {
  llmfs::LayerNorm ln(6);
  CHECK(ln->named_parameters().keys() == std::vector<std::string>{"scale", "shift"});
  torch::manual_seed(0);
  const auto x = torch::randn({2, 3, 6}) * 3 + 1;
  const auto y = ln(x);
  require_close(y, torch::layer_norm(x, {6}, {}, {}, 1e-5), 1e-5);
  require_close(y.mean(-1), torch::zeros({2, 3}), 1e-6);
  CHECK_THROWS_WITH(ln(torch::rand({2, 5})),
                    llmfs::test::contains_text("LayerNorm: expected (..., 6)"));
}

TEST_CASE("GELU is the tanh approximation", "[unit][model]") {
  llmfs::GELU gelu;
  const auto x = torch::linspace(-3, 3, 101);
  require_close(gelu(x), torch::gelu(x, "tanh"), 1e-6);
  CHECK(gelu->parameters().empty());
}

TEST_CASE("FeedForward expands to 4 emb_dim and back, named layers.0 and layers.2",
          "[unit][model]") {
  auto cfg = tiny_config();
  llmfs::FeedForward ff(cfg);
  CHECK(ff->named_parameters().keys() ==
        std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.2.weight",
                                 "layers.2.bias"});
  CHECK(ff->layers[0]->as<torch::nn::Linear>()->weight.sizes() == torch::IntArrayRef({64, 16}));
  CHECK(ff(torch::rand({2, 3, 16})).sizes() == torch::IntArrayRef({2, 3, 16}));
}

TEST_CASE("TransformerBlock keeps the shape and names its members as the book", "[unit][model]") {
  llmfs::TransformerBlock block(tiny_config());
  std::vector<std::string> modules;
  for (const auto& item : block->named_children()) modules.push_back(item.key());
  CHECK(modules == std::vector<std::string>{"att", "ff", "norm1", "norm2", "drop_shortcut"});
  CHECK(block(torch::rand({2, 4, 16})).sizes() == torch::IntArrayRef({2, 4, 16}));
}

TEST_CASE("GPTModel parameter names are the book's state_dict keys", "[unit][model]") {
  auto cfg = tiny_config();
  cfg.n_layers = 1;
  llmfs::GPTModel model(cfg);
  CHECK(model->named_parameters().keys() ==
        std::vector<std::string>{
            "tok_emb.weight", "pos_emb.weight", "trf_blocks.0.att.W_query.weight",
            "trf_blocks.0.att.W_key.weight", "trf_blocks.0.att.W_value.weight",
            "trf_blocks.0.att.out_proj.weight", "trf_blocks.0.att.out_proj.bias",
            "trf_blocks.0.ff.layers.0.weight", "trf_blocks.0.ff.layers.0.bias",
            "trf_blocks.0.ff.layers.2.weight", "trf_blocks.0.ff.layers.2.bias",
            "trf_blocks.0.norm1.scale", "trf_blocks.0.norm1.shift", "trf_blocks.0.norm2.scale",
            "trf_blocks.0.norm2.shift", "final_norm.scale", "final_norm.shift", "out_head.weight"});
  CHECK(model->named_buffers().keys() == std::vector<std::string>{"trf_blocks.0.att.mask"});
  CHECK(model->config() == cfg);
}

TEST_CASE("count_parameters of the built model equals count_gpt_parameters", "[unit][model]") {
  auto plain = tiny_config();
  auto biased = tiny_config();
  biased.qkv_bias = true;
  auto tied = tiny_config();
  tied.tie_weights = true;
  auto deeper = tiny_config();
  deeper.n_layers = 5, deeper.emb_dim = 24, deeper.n_heads = 3, deeper.vocab_size = 97;
  for (const auto& cfg : {plain, biased, tied, deeper}) {
    llmfs::GPTModel model(cfg);
    INFO("qkv_bias " << cfg.qkv_bias << " tie_weights " << cfg.tie_weights << " n_layers "
                     << cfg.n_layers);
    CHECK(llmfs::count_parameters(*model) == llmfs::count_gpt_parameters(cfg));
    CHECK(llmfs::count_parameters_tied(*model) == llmfs::count_gpt_parameters_tied(cfg));
  }
}

TEST_CASE("count_parameters counts a shared tensor once", "[unit][model]") {
  torch::nn::Module m;
  const auto w = torch::rand({3, 4});
  m.register_parameter("a", w);
  m.register_parameter("b", w);
  m.register_parameter("c", torch::rand({5}), /*requires_grad=*/false);
  CHECK(llmfs::count_parameters(m) == 17);
  CHECK(llmfs::count_trainable_parameters(m) == 12);
  CHECK(llmfs::parameter_megabytes(1024 * 1024, 2) == 2.0);
}

TEST_CASE("A tied GPTModel computes its logits with the token embedding", "[unit][model]") {
  auto cfg = tiny_config();
  cfg.tie_weights = true;
  torch::manual_seed(4);
  llmfs::GPTModel model(cfg);
  model->eval();
  CHECK(model->out_head.is_empty());
  CHECK_FALSE(model->named_parameters().contains("out_head.weight"));
  const auto ids = torch::tensor({{1, 2, 3}}, torch::kLong);
  const auto logits = model(ids);
  REQUIRE(logits.sizes() == torch::IntArrayRef({1, 3, 50}));
  // The same model untied, with the head set to the embedding, gives the same logits.
  cfg.tie_weights = false;
  llmfs::GPTModel untied(cfg);
  untied->eval();
  {
    torch::NoGradGuard no_grad;
    auto params = untied->named_parameters();
    for (const auto& p : model->named_parameters()) params[p.key()].copy_(p.value());
    untied->out_head->weight.copy_(model->tok_emb->weight);
  }
  require_close(untied(ids), logits, 1e-6);
}

TEST_CASE("GPTModel is deterministic for a seed and in eval mode", "[unit][model]") {
  const auto cfg = tiny_config();
  torch::manual_seed(9);
  llmfs::GPTModel a(cfg);
  torch::manual_seed(9);
  llmfs::GPTModel b(cfg);
  const auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) CHECK(torch::equal(pa[i], pb[i]));

  const auto ids = torch::randint(0, cfg.vocab_size, {2, 7}, torch::kLong);
  a->eval();
  CHECK(torch::equal(a(ids), a(ids)));
  a->train();  // dropout 0.1: two training passes draw different masks
  CHECK_FALSE(torch::equal(a(ids), a(ids)));
}

TEST_CASE("GPTModel validates its input", "[unit][model]") {
  llmfs::GPTModel model(tiny_config());
  CHECK_THROWS_WITH(model(torch::zeros({1, 13}, torch::kLong)),
                    llmfs::test::contains_text("exceed context_length 12"));
  CHECK_THROWS_WITH(model(torch::zeros({13}, torch::kLong)),
                    llmfs::test::contains_text("expected token ids (B, T)"));
  CHECK_THROWS_WITH(model(torch::zeros({1, 3})),
                    llmfs::test::contains_text("must be int64 or int32"));
  auto bad = tiny_config();
  bad.attention = "flash";
  CHECK_THROWS_WITH(llmfs::GPTModel(bad), llmfs::test::contains_text("'book' or 'sdpa'"));
  bad = tiny_config();
  bad.n_heads = 5;
  CHECK_THROWS_WITH(llmfs::GPTModel(bad), llmfs::test::contains_text("divisible by num_heads"));
}

TEST_CASE("GPTModel with a KV cache equals the full forward and stops at context_length",
          "[unit][model][kv_cache]") {
  for (const std::string attention : {"book", "sdpa"}) {
    auto cfg = tiny_config();
    cfg.attention = attention;
    torch::manual_seed(21);
    llmfs::GPTModel model(cfg);
    model->eval();
    torch::NoGradGuard no_grad;
    const auto ids = torch::randint(0, cfg.vocab_size, {2, 12}, torch::kLong);
    const auto full = model(ids);
    auto cache = model->make_kv_cache();
    const auto prompt = model(ids.narrow(1, 0, 5), &cache);
    std::vector<torch::Tensor> parts{prompt};
    for (int64_t t = 5; t < 12; ++t) parts.push_back(model(ids.narrow(1, t, 1), &cache));
    INFO("attention " << attention);
    CHECK(cache.position() == 12);
    require_close(torch::cat(parts, 1), full, llmfs::test::kSameKernelsAtol);
    // Position 12 would read past the positional embedding (BOOK.md §14, KV cache).
    CHECK_THROWS_WITH(model(ids.narrow(1, 0, 1), &cache),
                      llmfs::test::contains_text("positions 12..12 exceed context_length 12"));
    llmfs::KVCache wrong(3);
    CHECK_THROWS_WITH(model(ids, &wrong), llmfs::test::contains_text("a KV cache for 3 layers"));
  }
}

TEST_CASE("GPTModel runs in bfloat16 (float32 logits) and float64", "[unit][model]") {
  for (const auto dtype : {torch::kBFloat16, torch::kFloat64}) {
    llmfs::GPTModel model(tiny_config());
    model->to(dtype);
    model->eval();
    const auto ids = torch::tensor({{1, 2, 3, 4}}, torch::kLong);
    // bf16 weights give float32 logits (generation compares them); float64 stays float64.
    const auto want = dtype == torch::kBFloat16 ? torch::kFloat32 : dtype;
    const auto logits = model(ids);
    CHECK(logits.scalar_type() == want);
    auto cache = model->make_kv_cache();
    torch::NoGradGuard no_grad;
    CHECK(model(ids, &cache).scalar_type() == want);
  }
}

TEST_CASE("GPTModel::forward_rows equals the full forward at the chosen positions, gradients too",
          "[unit][model]") {
  for (const std::string attention : {"book", "sdpa"}) {
    for (const bool native : {false, true}) {
      for (const int64_t layers : {0, 1, 2}) {
        auto cfg = tiny_config();
        cfg.attention = attention;
        cfg.native_kernels = native;
        cfg.n_layers = layers;
        cfg.drop_rate = 0.0;
        INFO(attention << " native " << native << " layers " << layers);
        torch::manual_seed(11);
        llmfs::GPTModel model(cfg);
        const auto ids = torch::randint(0, cfg.vocab_size, {3, 9}, torch::kLong);
        const auto rows = torch::tensor({8, 0, 4}, torch::kLong);
        const auto full = model(ids);
        const auto expected = full.gather(1, rows.view({3, 1, 1}).expand({3, 1, 50})).squeeze(1);
        const auto picked = model->forward_rows(ids, rows);
        require_close(picked, expected, 1e-5);
        // The same gradients for every parameter from a loss on those positions.
        const auto grads = [&](const torch::Tensor& out) {
          model->zero_grad();
          (out * torch::linspace(-1, 1, out.numel()).view(out.sizes())).sum().backward();
          std::vector<torch::Tensor> g;
          for (const auto& p : model->parameters()) {
            g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
          }
          return g;
        };
        const auto g_full = grads(model->forward(ids).gather(1, rows.view({3, 1, 1}).expand({3, 1, 50})).squeeze(1));
        const auto g_rows = grads(model->forward_rows(ids, rows));
        for (size_t i = 0; i < g_full.size(); ++i) require_close(g_rows[i], g_full[i], 1e-5);
      }
    }
  }
  llmfs::GPTModel model(tiny_config());
  const auto ids = torch::zeros({2, 5}, torch::kLong);
  CHECK_THROWS_WITH(model->forward_rows(ids, torch::tensor({0, 5}, torch::kLong)),
                    llmfs::test::contains_text("row indices must be in [0, 5)"));
  CHECK_THROWS_WITH(model->forward_rows(ids, torch::tensor({0}, torch::kLong)),
                    llmfs::test::contains_text("one row index per sequence"));
}
