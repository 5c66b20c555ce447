// llmfs::GPTModel against a functional PyTorch GPT written from the formulas
// (tests/reference/fixtures_model.py), with the same weights loaded by name.
#include "catch.h"
#include "llmfs/core/file_io.h"
#include "llmfs/generate/generate.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs_test_paths.h"
#include "tensor_compare.h"
#include "tolerances.h"

namespace {

c10::Dict<c10::IValue, c10::IValue> load_fixture() {
  const std::string bytes =
      llmfs::read_file(std::string(llmfs::test::kFixturesDir) + "/model/gpt_tiny.pt");
  return torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end())).toGenericDict();
}

torch::Tensor get(const c10::Dict<c10::IValue, c10::IValue>& dict, const std::string& key) {
  return dict.at(key).toTensor();
}

llmfs::GPTModel load_model(const c10::Dict<c10::IValue, c10::IValue>& dict,
                           const std::string& attention) {
  llmfs::GPTConfig cfg;
  cfg.vocab_size = get(dict, "cfg.vocab_size").item<int64_t>();
  cfg.context_length = get(dict, "cfg.context_length").item<int64_t>();
  cfg.emb_dim = get(dict, "cfg.emb_dim").item<int64_t>();
  cfg.n_heads = get(dict, "cfg.n_heads").item<int64_t>();
  cfg.n_layers = get(dict, "cfg.n_layers").item<int64_t>();
  cfg.qkv_bias = get(dict, "cfg.qkv_bias").item<int64_t>() != 0;
  cfg.attention = attention;
  llmfs::GPTModel model(cfg);
  model->eval();
  torch::NoGradGuard no_grad;
  auto params = model->named_parameters();
  size_t loaded = 0;
  for (const auto& entry : dict) {
    const std::string key = entry.key().toStringRef();
    if (key.rfind("weight.", 0) != 0) continue;
    const std::string name = key.substr(7);
    INFO(name);
    REQUIRE(params.contains(name));
    REQUIRE(params[name].sizes() == entry.value().toTensor().sizes());
    params[name].copy_(entry.value().toTensor());
    ++loaded;
  }
  REQUIRE(loaded == params.size());  // every parameter has a reference weight and vice versa
  return model;
}

}  // namespace

TEST_CASE("GPTModel's logits equal the Python reference with shared weights", "[golden][model]") {
  const auto dict = load_fixture();
  for (const std::string attention : {"book", "sdpa"}) {
    auto model = load_model(dict, attention);
    torch::NoGradGuard no_grad;
    const auto check = llmfs::test::compare(model(get(dict, "ids")), get(dict, "logits"),
                                            llmfs::test::kSameKernelsAtol, 1e-5);
    INFO(attention << ": " << check.report);
    CHECK(check.ok);
  }
}

TEST_CASE("Greedy generation equals the Python reference, with and without the KV cache",
          "[golden][model][generate]") {
  const auto dict = load_fixture();
  const auto expected = llmfs::test::to_vector(get(dict, "greedy"));
  const auto prompt = get(dict, "ids").narrow(0, 0, 1);
  auto model = load_model(dict, "book");
  CHECK(llmfs::test::to_vector(llmfs::generate_text_simple(model, prompt, 12, 16)) == expected);
  llmfs::GenerateOptions options;
  options.max_new_tokens = 12;
  CHECK(llmfs::test::to_vector(llmfs::generate(model, prompt, options)) == expected);
}
