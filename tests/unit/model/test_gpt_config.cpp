#include "llmfs/model/gpt_config.h"

#include "catch.h"

TEST_CASE("GPT-2 parameter counts follow from the configs (book §4.6)", "[unit][model]") {
  // BOOK.md C4: 163,009,536 parameters, 124,412,160 considering weight tying.
  CHECK(llmfs::count_gpt_parameters(llmfs::gpt2_config("124M")) == 163009536);
  CHECK(llmfs::count_gpt_parameters_tied(llmfs::gpt2_config("124M")) == 124412160);
  auto tied = llmfs::gpt2_config("124M");
  tied.tie_weights = true;
  CHECK(llmfs::count_gpt_parameters(tied) == 124412160);
  // HF GPT-2 sizes (tied, with qkv bias): 124,439,808 / 354,823,168 / 774,030,080 / 1,557,611,200.
  const std::vector<std::pair<std::string, int64_t>> hf = {
      {"124M", 124439808}, {"355M", 354823168}, {"774M", 774030080}, {"1558M", 1557611200}};
  for (const auto& [size, count] : hf) {
    auto c = llmfs::gpt2_config(size);
    c.qkv_bias = true;
    c.tie_weights = true;
    CHECK(llmfs::count_gpt_parameters(c) == count);
  }
}

TEST_CASE("An unknown GPT-2 size is an error listing the sizes", "[unit][model]") {
  CHECK_THROWS_WITH(llmfs::gpt2_config("7B"), llmfs::test::contains_text("use 124M, 355M, 774M or 1558M"));
}

TEST_CASE("A model section rejects emb_dim not divisible by n_heads", "[unit][model][config]") {
  auto doc = llmfs::ConfigDocument::from_string("model:\n  emb_dim: 768\n  n_heads: 10\n", "m.yaml");
  llmfs::parse_gpt_config(doc.root().child("model"));
  CHECK_THROWS_WITH(doc.finish(), "m.yaml:3: model.n_heads: emb_dim (768) must be divisible by n_heads (10)");
}

TEST_CASE("A model section starts from the defaults it is given", "[unit][model][config]") {
  llmfs::GPTConfig defaults;
  defaults.context_length = 256;  // chapter 5
  auto doc = llmfs::ConfigDocument::from_string("model:\n  n_layers: 2\n", "m.yaml");
  const auto c = llmfs::parse_gpt_config(doc.root().child("model"), defaults);
  doc.finish();
  CHECK(c.context_length == 256);
  CHECK(c.n_layers == 2);
  CHECK(c.emb_dim == 768);
  CHECK(doc.resolved_yaml().find("context_length: 256") != std::string::npos);
}

TEST_CASE("model.native_kernels is the kernel choice every layer gets", "[unit][model][config]") {
  CHECK(llmfs::GPTConfig{}.kernels() == llmfs::KernelOptions{});
  auto doc = llmfs::ConfigDocument::from_string("model:\n  native_kernels: true\n", "m.yaml");
  const auto c = llmfs::parse_gpt_config(doc.root().child("model"));
  doc.finish();
  CHECK(c.native_kernels);
  CHECK(c.kernels().native_kernels);
}
