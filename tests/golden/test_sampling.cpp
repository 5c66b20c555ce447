// Decoding strategies against the book's printed values (BOOK.md §6.7, C5-21 … C5-28; toy
// vocabulary and logits of §6.3) and against live PyTorch (tests/reference/fixtures_sampling.py:
// the same seeds, logits and settings sampled in Python, draw for draw).
#include <array>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "catch.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/repr.h"
#include "llmfs/generate/sampling.h"
#include "llmfs_test_paths.h"
#include "tensor_compare.h"
#include "tolerances.h"

namespace {

using json = nlohmann::json;

// BOOK.md §6.3: vocabulary closer = 0, ..., you = 8, and the next-token logits.
const std::array<std::string, 9> kToyVocab = {"closer", "every", "effort", "forward", "inches",
                                              "moves",  "pizza", "toward", "you"};

torch::Tensor toy_logits() {
  return torch::tensor({4.51f, 0.89f, -1.90f, 6.75f, 1.63f, -1.62f, -1.89f, 6.28f, 1.79f});
}

// The book's print_sampled_tokens: seed 123, 1,000 single draws, counts per id.
std::vector<int64_t> sampled_counts(const torch::Tensor& probas) {
  torch::manual_seed(123);
  std::vector<int64_t> counts(kToyVocab.size(), 0);
  for (int i = 0; i < 1000; ++i) ++counts[llmfs::sample_multinomial(probas).item<int64_t>()];
  return counts;
}

torch::Dict<torch::IValue, torch::IValue> tensors() {
  static const auto dict = [] {
    const std::string bytes =
        llmfs::read_file(std::string(llmfs::test::kFixturesDir) + "/sampling/tensors.pt");
    return torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end())).toGenericDict();
  }();
  return dict;
}

torch::Tensor tensor(const std::string& name) {
  const auto dict = tensors();
  const auto it = dict.find(name);
  if (it == dict.end()) FAIL("fixture tensor missing: " << name);
  return it->value().toTensor();
}

}  // namespace

// --- The book's values ---

TEST_CASE("C5-21: the arg-max of the toy logits is 'forward'", "[golden][book][sampling]") {
  const auto id = torch::argmax(torch::softmax(toy_logits(), 0)).item<int64_t>();
  CHECK(kToyVocab[id] == "forward");
  CHECK(llmfs::sample_next_token(toy_logits().unsqueeze(0), {}).item<int64_t>() == 3);
}

TEST_CASE("C5-22: one multinomial draw after seed 123 is 'forward'", "[golden][book][sampling]") {
  torch::manual_seed(123);
  const auto id = llmfs::sample_multinomial(torch::softmax(toy_logits(), 0)).item<int64_t>();
  CHECK(kToyVocab[id] == "forward");
}

TEST_CASE("C5-23 … C5-25: 1,000 draws at temperatures 1, 0.1 and 5", "[golden][book][sampling]") {
  // C5-23 (T = 1), C5-24 (T = 0.1), C5-25 (T = 5): counts in id order.
  CHECK(sampled_counts(llmfs::softmax_with_temperature(toy_logits(), 1.0)) ==
        std::vector<int64_t>{73, 0, 0, 582, 2, 0, 0, 343, 0});
  CHECK(sampled_counts(llmfs::softmax_with_temperature(toy_logits(), 0.1)) ==
        std::vector<int64_t>{0, 0, 0, 985, 0, 0, 0, 15, 0});
  CHECK(sampled_counts(llmfs::softmax_with_temperature(toy_logits(), 5.0)) ==
        std::vector<int64_t>{165, 75, 42, 239, 71, 46, 32, 227, 103});
}

TEST_CASE("C5-26 … C5-28: top-3 logits, the masked logits and their softmax",
          "[golden][book][sampling]") {
  const auto [top_logits, top_pos] = torch::topk(toy_logits(), 3);
  // C5-26
  auto check = llmfs::test::compare(top_logits, torch::tensor({6.75f, 6.28f, 4.51f}),
                                    llmfs::test::kBookPrinted4, 0.0);
  INFO(check.report);
  CHECK(check.ok);
  CHECK(llmfs::test::to_vector(top_pos) == std::vector<int64_t>{3, 7, 0});

  // C5-27: the printed tensor, -inf and all.
  const auto masked = llmfs::top_k_logits(toy_logits(), 3);
  CHECK(llmfs::py_repr(masked) ==
        "tensor([4.5100,   -inf,   -inf, 6.7500,   -inf,   -inf,   -inf, 6.2800,   -inf])");
  const auto finite = torch::isfinite(masked);
  check = llmfs::test::compare(masked.masked_select(finite), torch::tensor({4.51f, 6.75f, 6.28f}),
                               llmfs::test::kBookPrinted4, 0.0);
  INFO(check.report);
  CHECK(check.ok);

  // C5-28
  const auto probas = torch::softmax(masked, 0);
  check = llmfs::test::compare(
      probas, torch::tensor({0.0615f, 0.0f, 0.0f, 0.5775f, 0.0f, 0.0f, 0.0f, 0.3610f, 0.0f}),
      llmfs::test::kBookPrinted4, 0.0);
  INFO(check.report);
  CHECK(check.ok);
  CHECK(llmfs::py_repr(probas) ==
        "tensor([0.0615, 0.0000, 0.0000, 0.5775, 0.0000, 0.0000, 0.0000, 0.3610, 0.0000])");
}

// --- Live PyTorch ---

TEST_CASE("sample_next_token draws the ids PyTorch draws, case by case", "[golden][sampling]") {
  const auto cases = json::parse(
      llmfs::read_file(std::string(llmfs::test::kFixturesDir) + "/sampling/cases.json"));
  REQUIRE(cases.size() >= 10);
  for (const auto& c : cases) {
    const std::string name = c.at("name");
    INFO("case " << name);
    const auto logits = tensor("logits_" + c.at("logits").get<std::string>());
    llmfs::SamplingOptions options;
    options.temperature = c.at("temperature").get<double>();
    if (!c.at("top_k").is_null()) options.top_k = c.at("top_k").get<int64_t>();
    if (!c.at("top_p").is_null()) options.top_p = c.at("top_p").get<double>();
    torch::manual_seed(c.at("seed").get<uint64_t>());
    std::vector<torch::Tensor> ids;
    for (int64_t step = 0; step < c.at("steps").get<int64_t>(); ++step) {
      ids.push_back(llmfs::sample_next_token(logits, options));
    }
    const auto actual = torch::cat(ids, -1);
    const auto expected = tensor("ids_" + name);
    REQUIRE(actual.sizes() == expected.sizes());
    CHECK(torch::equal(actual, expected));
  }
}

TEST_CASE("top_k_logits and top_p_logits keep the entries PyTorch's reference keeps",
          "[golden][sampling]") {
  for (const std::string key : {"toy", "vocab", "ties"}) {
    const auto logits = tensor("logits_" + key);
    for (const int64_t k : {1, 2, 3, 25}) {
      INFO(key << " top-k " << k);
      CHECK(torch::equal(torch::isfinite(llmfs::top_k_logits(logits, k)),
                         tensor(fmt::format("topk_{}_{}", key, k))));
    }
    for (const char* p : {"0.05", "0.5", "0.9", "0.999"}) {
      INFO(key << " top-p " << p);
      CHECK(torch::equal(torch::isfinite(llmfs::top_p_logits(logits, std::stod(p))),
                         tensor(fmt::format("topp_{}_{}", key, p))));
    }
  }
}

TEST_CASE("1,000 single draws from the 1-d toy probabilities equal PyTorch's",
          "[golden][sampling]") {
  for (const char* t : {"1.0", "0.1", "5.0"}) {
    INFO("temperature " << t);
    const auto probas = llmfs::softmax_with_temperature(toy_logits(), std::stod(t));
    CHECK(torch::equal(probas, tensor(fmt::format("probas_1d_t{}", t))));
    torch::manual_seed(123);
    std::vector<torch::Tensor> draws;
    for (int i = 0; i < 1000; ++i) draws.push_back(llmfs::sample_multinomial(probas));
    CHECK(torch::equal(torch::cat(draws), tensor(fmt::format("draws_1d_t{}", t))));
  }
}
