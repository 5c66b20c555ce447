// Decoding strategies (book §5.3): filters, temperature, multinomial draws, option checks, and
// the generate loop (crop, end of sequence per row, KV cache).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/generate/generate.h"
#include "llmfs/generate/sampling.h"
#include "tensor_compare.h"

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<bool> finite_mask(const torch::Tensor& t) {
  const auto m = torch::isfinite(t).flatten().to(torch::kInt64);
  std::vector<bool> out;
  for (int64_t i = 0; i < m.numel(); ++i) out.push_back(m[i].item<int64_t>() != 0);
  return out;
}

std::vector<uint8_t> generator_state() {
  const auto state = at::detail::getDefaultCPUGenerator().get_state();
  return std::vector<uint8_t>(state.data_ptr<uint8_t>(), state.data_ptr<uint8_t>() + state.numel());
}

}  // namespace

TEST_CASE("top_k_logits keeps the k largest logits and sets the others to -inf",
          "[unit][sampling]") {
  const auto logits = torch::tensor({{1.0f, 5.0f, 3.0f, 4.0f, 2.0f}});
  const auto out = llmfs::top_k_logits(logits, 2);
  CHECK(finite_mask(out) == std::vector<bool>{false, true, false, true, false});
  CHECK(out[0][1].item<float>() == 5.0f);
  CHECK(out[0][3].item<float>() == 4.0f);
  CHECK(out[0][0].item<float>() == -kInf);
}

TEST_CASE("top_k_logits keeps every logit tied with the k-th", "[unit][sampling]") {
  const auto logits = torch::tensor({{3.0f, 1.0f, 2.0f, 2.0f, 0.0f}});
  CHECK(finite_mask(llmfs::top_k_logits(logits, 2)) ==
        std::vector<bool>{true, false, true, true, false});
}

TEST_CASE("top_k_logits filters every row against its own k-th value", "[unit][sampling]") {
  const auto logits = torch::tensor({{1.0f, 2.0f, 3.0f}, {30.0f, 20.0f, 10.0f}});
  CHECK(finite_mask(llmfs::top_k_logits(logits, 1)) ==
        std::vector<bool>{false, false, true, true, false, false});
}

TEST_CASE("top_k_logits with k at or above the vocabulary size changes nothing",
          "[unit][sampling]") {
  const auto logits = torch::randn({2, 7});
  CHECK(torch::equal(llmfs::top_k_logits(logits, 7), logits));
  CHECK(torch::equal(llmfs::top_k_logits(logits, 100), logits));
  REQUIRE_THROWS(llmfs::top_k_logits(logits, 0));
}

TEST_CASE("top_p_logits keeps the most probable tokens until their mass reaches p",
          "[unit][sampling]") {
  // Probabilities 0.5, 0.25, 0.125, 0.125 (logits are their logs).
  const auto logits = torch::log(torch::tensor({{0.125f, 0.5f, 0.125f, 0.25f}}));
  CHECK(finite_mask(llmfs::top_p_logits(logits, 0.4)) ==
        std::vector<bool>{false, true, false, false});
  CHECK(finite_mask(llmfs::top_p_logits(logits, 0.6)) ==
        std::vector<bool>{false, true, false, true});
  CHECK(finite_mask(llmfs::top_p_logits(logits, 0.8)) ==
        std::vector<bool>{true, true, false, true});
  CHECK(torch::equal(llmfs::top_p_logits(logits, 1.0), logits));
}

TEST_CASE("top_p_logits always keeps the most probable token", "[unit][sampling]") {
  const auto logits = torch::tensor({{0.0f, 10.0f, 0.0f}, {1.0f, 1.0f, 1.0f}});
  // Equal logits: the stable sort keeps the lowest id.
  CHECK(finite_mask(llmfs::top_p_logits(logits, 1e-6)) ==
        std::vector<bool>{false, true, false, true, false, false});
  REQUIRE_THROWS(llmfs::top_p_logits(logits, 0.0));
  REQUIRE_THROWS(llmfs::top_p_logits(logits, 1.5));
}

TEST_CASE("softmax_with_temperature sharpens below 1 and flattens above 1", "[unit][sampling]") {
  const auto logits = torch::tensor({1.0f, 2.0f, 3.0f});
  const auto t1 = llmfs::softmax_with_temperature(logits, 1.0);
  const auto cold = llmfs::softmax_with_temperature(logits, 0.1);
  const auto hot = llmfs::softmax_with_temperature(logits, 10.0);
  const auto check = llmfs::test::compare(t1, torch::softmax(logits, 0), 0.0, 0.0);
  INFO(check.report);
  CHECK(check.ok);
  CHECK(cold[2].item<float>() > 0.99f);
  CHECK(hot.max().item<float>() - hot.min().item<float>() < 0.1f);
  CHECK(std::abs(t1.sum().item<float>() - 1.0f) < 1e-6f);
  REQUIRE_THROWS(llmfs::softmax_with_temperature(logits, 0.0));
}

TEST_CASE("greedy decoding takes the first arg-max and draws no random numbers",
          "[unit][sampling]") {
  torch::manual_seed(1);
  const auto logits = torch::tensor({{0.0f, 2.0f, 2.0f, 1.0f}, {5.0f, 0.0f, 0.0f, 0.0f}});
  const auto before = generator_state();
  const auto ids = llmfs::sample_next_token(logits, {});
  CHECK(generator_state() == before);
  CHECK(ids.sizes() == torch::IntArrayRef({2, 1}));
  CHECK(llmfs::test::to_vector(ids) == std::vector<int64_t>{1, 0});
  const auto with_top_k = llmfs::sample_next_token(logits, {.top_k = 1});
  CHECK(llmfs::test::to_vector(with_top_k) == std::vector<int64_t>{1, 0});
}

TEST_CASE("sampling with top_k 1 always returns the arg-max", "[unit][sampling]") {
  torch::manual_seed(123);
  const auto logits = torch::randn({3, 50});
  const auto expected = llmfs::test::to_vector(torch::argmax(logits, -1, true));
  for (int i = 0; i < 20; ++i) {
    const auto ids = llmfs::sample_next_token(logits, {.temperature = 5.0, .top_k = 1});
    CHECK(llmfs::test::to_vector(ids) == expected);
  }
}

TEST_CASE("sampled tokens come only from the top-k and the nucleus", "[unit][sampling]") {
  torch::manual_seed(123);
  const auto logits = torch::randn({1, 100}) * 2.0;
  const auto allowed_k = finite_mask(llmfs::top_k_logits(logits, 5));
  const auto allowed_p = finite_mask(llmfs::top_p_logits(logits, 0.5));
  for (int i = 0; i < 200; ++i) {
    const auto id =
        llmfs::sample_next_token(logits, {.temperature = 2.0, .top_k = 5}).item<int64_t>();
    CHECK(allowed_k[static_cast<size_t>(id)]);
    const auto id_p =
        llmfs::sample_next_token(logits, {.temperature = 1.0, .top_p = 0.5}).item<int64_t>();
    CHECK(allowed_p[static_cast<size_t>(id_p)]);
  }
}

TEST_CASE("sample_multinomial draws one id per row and follows the generator", "[unit][sampling]") {
  const auto probs = torch::tensor({0.1f, 0.2f, 0.7f});
  CHECK(llmfs::sample_multinomial(probs).sizes() == torch::IntArrayRef({1}));
  CHECK(llmfs::sample_multinomial(probs.unsqueeze(0).repeat({4, 1})).sizes() ==
        torch::IntArrayRef({4, 1}));
  // A private generator gives the same draws as the global one seeded alike.
  auto gen = at::detail::createCPUGenerator(7);
  torch::manual_seed(7);
  for (int i = 0; i < 10; ++i) {
    CHECK(llmfs::sample_multinomial(probs, gen).item<int64_t>() ==
          llmfs::sample_multinomial(probs).item<int64_t>());
  }
  // Zero-probability entries are never drawn.
  const auto sparse = torch::tensor({0.0f, 1.0f, 0.0f});
  for (int i = 0; i < 20; ++i) CHECK(llmfs::sample_multinomial(sparse).item<int64_t>() == 1);
  REQUIRE_THROWS(llmfs::sample_multinomial(torch::ones({2, 2, 2})));
}

TEST_CASE("check_sampling_options rejects bad values with one-line messages", "[unit][sampling]") {
  using llmfs::SamplingOptions;
  REQUIRE_NOTHROW(llmfs::check_sampling_options({}));
  REQUIRE_NOTHROW(llmfs::check_sampling_options({.temperature = 1.4, .top_k = 25, .top_p = 1.0}));
  REQUIRE_THROWS_AS(llmfs::check_sampling_options({.temperature = -0.5}), llmfs::Error);
  REQUIRE_THROWS_WITH(
      llmfs::check_sampling_options({.temperature = -0.5}, "--temperature"),
      llmfs::test::contains_text("--temperature: temperature must be a number >= 0"));
  REQUIRE_THROWS_WITH(
      llmfs::check_sampling_options({.temperature = std::numeric_limits<double>::quiet_NaN()}),
      llmfs::test::contains_text("temperature must be"));
  REQUIRE_THROWS_WITH(llmfs::check_sampling_options({.top_k = 0}),
                      llmfs::test::contains_text("top_k must be >= 1, got 0"));
  REQUIRE_THROWS_WITH(llmfs::check_sampling_options({.top_p = 0.0}),
                      llmfs::test::contains_text("top_p must be in (0, 1], got 0"));
  REQUIRE_THROWS_WITH(llmfs::check_sampling_options({.top_p = 1.5}),
                      llmfs::test::contains_text("top_p must be in (0, 1], got 1.5"));
  REQUIRE_THROWS_AS(llmfs::sample_next_token(torch::zeros({1, 3}), {.temperature = -1.0}),
                    llmfs::Error);
}

TEST_CASE("SamplingOptions::describe names the strategy", "[unit][sampling]") {
  CHECK(llmfs::SamplingOptions{}.describe() == "greedy");
  CHECK(llmfs::SamplingOptions{.temperature = 1.4, .top_k = 25}.describe() ==
        "temperature 1.4, top-k 25");
  CHECK(llmfs::SamplingOptions{.temperature = 1.0, .top_p = 0.9}.describe() ==
        "temperature 1, top-p 0.9");
}

// --- generate() ---

namespace {

llmfs::GPTModel tiny_gpt(int64_t context_length = 16, int64_t vocab_size = 50) {
  llmfs::GPTConfig cfg;
  cfg.vocab_size = vocab_size;
  cfg.context_length = context_length;
  cfg.emb_dim = 16;
  cfg.n_heads = 2;
  cfg.n_layers = 2;
  cfg.drop_rate = 0.1;
  torch::manual_seed(123);
  llmfs::GPTModel model(cfg);
  model->eval();
  return model;
}

torch::Tensor prompt_ids(int64_t batch, int64_t tokens, int64_t vocab_size = 50) {
  torch::manual_seed(7);
  return torch::randint(0, vocab_size, {batch, tokens}, torch::kLong);
}

// The book's loop written out: crop, last logits, sample_next_token, append.
torch::Tensor reference_generate(llmfs::GPTModel& model, torch::Tensor idx, int64_t n, int64_t context,
                                 const llmfs::SamplingOptions& sampling) {
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < n; ++i) {
    const auto cond = idx.size(1) > context ? idx.narrow(1, idx.size(1) - context, context) : idx;
    const auto logits = model(cond).select(1, cond.size(1) - 1);
    idx = torch::cat({idx, llmfs::sample_next_token(logits, sampling)}, 1);
  }
  return idx;
}

}  // namespace

TEST_CASE("generate follows the book's loop, greedy and sampled, past the context length",
          "[unit][sampling][generate]") {
  auto model = tiny_gpt(/*context_length=*/16);
  const auto prompt = prompt_ids(2, 5);
  for (const llmfs::SamplingOptions& sampling :
       {llmfs::SamplingOptions{}, llmfs::SamplingOptions{.temperature = 1.0},
        llmfs::SamplingOptions{.temperature = 1.4, .top_k = 5},
        llmfs::SamplingOptions{.temperature = 0.8, .top_p = 0.9}}) {
    INFO(sampling.describe());
    torch::manual_seed(123);
    const auto expected = reference_generate(model, prompt, 30, 12, sampling);
    torch::manual_seed(123);
    llmfs::GenerateOptions options{
        .max_new_tokens = 30, .context_size = 12, .sampling = sampling, .use_cache = false};
    const auto actual = llmfs::generate(model, prompt, options);
    CHECK(torch::equal(actual, expected));
    CHECK_FALSE(actual.requires_grad());
  }
}

TEST_CASE("generate with the book's arguments equals generate_text_simple when greedy",
          "[unit][sampling][generate]") {
  auto model = tiny_gpt();
  const auto prompt = prompt_ids(1, 4);
  const auto greedy = llmfs::generate(model, prompt, 20, 16);
  CHECK(torch::equal(greedy, llmfs::generate_text_simple(model, prompt, 20, 16)));
  CHECK(torch::equal(llmfs::generate(model, prompt, 0, 16), prompt));
  CHECK_FALSE(model->is_training());
}

TEST_CASE("generate with the KV cache gives the uncached ids for the same seed",
          "[unit][sampling][generate]") {
  auto model = tiny_gpt(/*context_length=*/16);
  const auto prompt = prompt_ids(3, 6);
  for (const llmfs::SamplingOptions& sampling :
       {llmfs::SamplingOptions{}, llmfs::SamplingOptions{.temperature = 1.0},
        llmfs::SamplingOptions{.temperature = 1.5, .top_k = 10},
        llmfs::SamplingOptions{.temperature = 1.0, .top_k = 20, .top_p = 0.8}}) {
    for (const int64_t context_size : {int64_t{16}, int64_t{9}}) {
      INFO(sampling.describe() << ", context " << context_size);
      llmfs::GenerateOptions options{.max_new_tokens = 40, .context_size = context_size,
                                     .sampling = sampling, .use_cache = false};
      torch::manual_seed(321);
      const auto uncached = llmfs::generate(model, prompt, options);
      options.use_cache = true;
      torch::manual_seed(321);
      const auto cached = llmfs::generate(model, prompt, options);
      CHECK(torch::equal(cached, uncached));
    }
  }
}

TEST_CASE("generate stops at eos_id without appending it (batch of one)",
          "[unit][sampling][generate]") {
  auto model = tiny_gpt();
  const auto prompt = prompt_ids(1, 4);
  const auto free_run = llmfs::generate(model, prompt, 12, 16);
  const auto continuation = llmfs::test::to_vector(free_run.narrow(1, 4, 12));
  // eos = the third new token: the output keeps the two before it (or fewer if it came earlier).
  const int64_t eos = continuation[2];
  const auto first = std::find(continuation.begin(), continuation.end(), eos) - continuation.begin();
  const auto stopped = llmfs::generate(model, prompt, 12, 16, 0.0, std::nullopt, eos);
  REQUIRE(stopped.size(1) == 4 + first);
  CHECK(torch::equal(stopped, free_run.narrow(1, 0, 4 + first)));
  // An id never drawn changes nothing.
  CHECK(torch::equal(llmfs::generate(model, prompt, 12, 16, 0.0, std::nullopt, 49000), free_run));
}

TEST_CASE("generate pads finished rows with eos_id and stops when every row has finished",
          "[unit][sampling][generate]") {
  auto model = tiny_gpt();
  const auto prompt = prompt_ids(3, 4);
  const int64_t n = 12;
  const auto free_run = llmfs::generate(model, prompt, n, 16);  // greedy rows are independent
  const auto eos = free_run[0][4 + 3].item<int64_t>();            // row 0's fourth new token
  // Expected per the documented rule: a row copies the free run up to its first eos, then eos.
  std::vector<int64_t> first(3, n);
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      if (free_run[r][4 + j].item<int64_t>() == eos) {
        first[r] = j;
        break;
      }
    }
  }
  const int64_t last = *std::max_element(first.begin(), first.end());
  const int64_t columns = last < n ? last : n;  // all rows finished: the last step is not appended
  auto expected = free_run.narrow(1, 0, 4 + columns).clone();
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t j = first[r]; j < columns; ++j) expected[r][4 + j] = eos;
  }
  llmfs::GenerateOptions options;
  options.max_new_tokens = n;
  options.context_size = 16;
  options.eos_id = eos;
  options.use_cache = false;
  const auto actual = llmfs::generate(model, prompt, options);
  INFO("first eos per row: " << first[0] << ", " << first[1] << ", " << first[2]);
  CHECK(torch::equal(actual, expected));
  options.use_cache = true;
  CHECK(torch::equal(llmfs::generate(model, prompt, options), expected));
}

TEST_CASE("generate rejects bad settings", "[unit][sampling][generate]") {
  auto model = tiny_gpt();
  const auto prompt = prompt_ids(1, 4);
  REQUIRE_THROWS_AS(llmfs::generate(model, prompt, 5, 16, -1.0), llmfs::Error);
  REQUIRE_THROWS_WITH(llmfs::generate(model, prompt, 5, 16, 1.0, int64_t{0}),
                      llmfs::test::contains_text("top_k must be >= 1"));
  REQUIRE_THROWS_WITH(llmfs::generate(model, prompt, 5, 17),
                      llmfs::test::contains_text("exceeds the model's context_length 16"));
  REQUIRE_THROWS_WITH(llmfs::generate(model, prompt.to(torch::kInt), 5, 16),
                      llmfs::test::contains_text("token ids must be int64"));
  REQUIRE_THROWS_WITH(llmfs::generate(model, torch::zeros({1, 0}, torch::kLong), 5, 16),
                      llmfs::test::contains_text("expected token ids (B, T) with T >= 1"));
}
