// GPT-2 weights against Hugging Face transformers (tests/reference/fixtures_weights.py): random
// GPT2LMHeadModels saved by save_pretrained (and as the book's .pth) load into GPTModel and give
// HF's logits (within 1e-4, fp32 CPU) and its 30 greedy tokens, with and without the KV cache;
// what we save loads back in transformers and torch.load; bad checkpoints fail with one-line
// errors naming the tensor.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "catch.h"
#include "llmfs/checkpoint/gpt2_weights.h"
#include "llmfs/checkpoint/safetensors.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/generate/generate.h"
#include "llmfs_test_paths.h"
#include "run_python.h"
#include "tensor_compare.h"
#include "tolerances.h"

namespace fs = std::filesystem;
using llmfs::test::contains_text;

namespace {

fs::path fixture(const std::string& name) {
  return fs::path(llmfs::test::kFixturesDir) / "weights" / name;
}

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "llmfs_golden_gpt2" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

struct Expected {
  torch::Tensor input_ids, logits, greedy;
};

Expected expected(const std::string& c) {
  const auto t = llmfs::load_safetensors(fixture("gpt2_" + c + "_expected.safetensors"));
  return {t.at("input_ids"), t.at("logits"), t.at("greedy")};
}

llmfs::GPTModel loaded_model(const fs::path& weights, llmfs::GPTConfig config) {
  llmfs::GPTModel model(config);
  llmfs::load_weights(model, weights);
  model->eval();
  return model;
}

// Logits within 1e-4 of transformers' and the same 30 greedy tokens, plain and KV-cached.
void check_against_hf(llmfs::GPTModel model, const std::string& c) {
  const Expected e = expected(c);
  torch::NoGradGuard no_grad;
  const auto logits = model->forward(e.input_ids);
  const auto cmp = llmfs::test::compare(logits, e.logits, llmfs::test::kReorderedAtol, 0.0);
  INFO(c << " logits: " << cmp.report);
  CHECK(cmp.ok);
  const auto prompt = e.greedy.narrow(1, 0, 7);
  const auto plain = llmfs::generate_text_simple(model, prompt, 30, model->config().context_length);
  CHECK(llmfs::test::to_vector(plain) == llmfs::test::to_vector(e.greedy));
  llmfs::GenerateOptions options;
  options.max_new_tokens = 30;
  options.use_cache = true;
  const auto cached = llmfs::generate(model, prompt, options);
  CHECK(llmfs::test::to_vector(cached) == llmfs::test::to_vector(e.greedy));
}

void check_same_parameters(llmfs::GPTModel a, llmfs::GPTModel b) {
  const auto pa = a->named_parameters();
  const auto pb = b->named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (const auto& item : pa) {
    INFO(item.key());
    CHECK(torch::equal(item.value(), pb[item.key()]));
  }
}

std::pair<std::string, int> run_python(const std::string& script,
                                       const std::vector<std::string>& args) {
  return llmfs::test::run_python(script, args, "llmfs_golden_gpt2.py");
}

}  // namespace

TEST_CASE("config.json of a Hugging Face GPT-2 folder becomes a GPTConfig", "[golden][weights]") {
  const auto vocab = llmfs::model_config_for(fixture("gpt2_vocab"));
  CHECK(vocab.vocab_size == 50257);
  CHECK(vocab.context_length == 1024);
  CHECK(vocab.emb_dim == 64);
  CHECK(vocab.n_layers == 2);
  CHECK(vocab.n_heads == 4);
  CHECK(vocab.qkv_bias);
  CHECK_FALSE(vocab.tie_weights);
  CHECK(vocab.drop_rate == 0.1);
  // Beside a file as well as for a folder.
  CHECK(llmfs::model_config_for(fixture("gpt2_odd/model.safetensors")) ==
        llmfs::read_hf_gpt2_config(fixture("gpt2_odd/config.json")));
  CHECK(llmfs::model_config_for(fixture("gpt2_odd")).vocab_size == 1000);
}

TEST_CASE("Every OpenAI GPT-2 size has the tensor names and shapes transformers gives it",
          "[golden][weights]") {
  // GPT2LMHeadModel's state_dict on the meta device for 124M, 355M, 774M and 1558M.
  const auto sizes = nlohmann::json::parse(llmfs::read_file(fixture("gpt2_shapes.json")));
  REQUIRE(sizes.size() == 4);
  for (const auto& [size, expected] : sizes.items()) {
    INFO(size);
    auto config = llmfs::gpt2_config(size);
    config.qkv_bias = true;
    const auto ours = llmfs::hf_gpt2_shapes(config);
    REQUIRE(ours.size() == expected.size());
    for (size_t i = 0; i < ours.size(); ++i) {
      CHECK(ours[i].first == expected[i][0].get<std::string>());
      CHECK(ours[i].second == expected[i][1].get<std::vector<int64_t>>());
    }
  }
}

TEST_CASE("Hugging Face GPT-2 safetensors give transformers' logits and greedy tokens",
          "[golden][weights]") {
  for (const std::string c : {"vocab", "odd"}) {
    const auto folder = fixture("gpt2_" + c);
    check_against_hf(loaded_model(folder, llmfs::model_config_for(folder)), c);
  }
}

TEST_CASE("load_gpt_model builds the model from config.json and loads the weights",
          "[golden][weights]") {
  check_against_hf(llmfs::load_gpt_model(fixture("gpt2_odd")), "odd");
  const auto config = llmfs::model_config_for(fixture("gpt2_vocab"));
  check_against_hf(llmfs::load_gpt_model(fixture("gpt2_vocab_book.pth"), config), "vocab");
  CHECK_THROWS_WITH(llmfs::load_gpt_model(fixture("gpt2_vocab_book.pth")),
                    contains_text("no config.json beside the weights"));
}

TEST_CASE("The book's .pth layout (torch.save of its state dict) gives the same model",
          "[golden][weights]") {
  for (const std::string c : {"vocab", "odd"}) {
    const auto config = llmfs::model_config_for(fixture("gpt2_" + c));
    const auto from_pth = loaded_model(fixture("gpt2_" + c + "_book.pth"), config);
    check_against_hf(from_pth, c);
    check_same_parameters(from_pth, loaded_model(fixture("gpt2_" + c), config));
  }
}

TEST_CASE("Sharded safetensors, pytorch_model.bin and unprefixed OpenAI-style files load the same",
          "[golden][weights]") {
  const auto odd = llmfs::model_config_for(fixture("gpt2_odd"));
  const auto reference = loaded_model(fixture("gpt2_odd"), odd);
  check_same_parameters(loaded_model(fixture("gpt2_odd_sharded"), odd), reference);
  check_same_parameters(loaded_model(fixture("gpt2_odd_bin"), odd), reference);
  check_same_parameters(loaded_model(fixture("gpt2_odd_sharded/model.safetensors.index.json"), odd),
                        reference);

  const auto vocab = llmfs::model_config_for(fixture("gpt2_vocab"));
  const auto unprefixed = loaded_model(fixture("gpt2_vocab_noprefix.safetensors"), vocab);
  check_same_parameters(unprefixed, loaded_model(fixture("gpt2_vocab"), vocab));
  check_against_hf(unprefixed, "vocab");
}

TEST_CASE("A tied model shares lm_head with the token embedding", "[golden][weights]") {
  auto config = llmfs::model_config_for(fixture("gpt2_vocab"));
  config.tie_weights = true;
  check_against_hf(loaded_model(fixture("gpt2_vocab"), config), "vocab");
  // The odd checkpoint's lm_head is its own tensor: a tied model cannot take it.
  auto odd = llmfs::model_config_for(fixture("gpt2_odd"));
  odd.tie_weights = true;
  llmfs::GPTModel model(odd);
  CHECK_THROWS_WITH(
      llmfs::load_weights(model, fixture("gpt2_odd")),
      contains_text("tensor 'lm_head.weight' differs from 'transformer.wte.weight' but "
                    "the model ties them"));
}

TEST_CASE("Half-precision checkpoints load into a float32 model", "[golden][weights]") {
  auto tensors = llmfs::load_safetensors(fixture("gpt2_odd/model.safetensors"));
  for (auto& [name, t] : tensors) t = t.to(torch::kFloat16);
  const auto dir = temp_dir("half");
  llmfs::save_safetensors(dir / "model.safetensors", tensors);
  const auto config = llmfs::model_config_for(fixture("gpt2_odd"));
  const auto half = loaded_model(dir / "model.safetensors", config);
  const auto full = loaded_model(fixture("gpt2_odd"), config);
  CHECK(half->tok_emb->weight.scalar_type() == torch::kFloat32);
  CHECK(torch::equal(half->tok_emb->weight,
                     full->tok_emb->weight.to(torch::kFloat16).to(torch::kFloat32)));
}

TEST_CASE("What we save loads in transformers and torch.load and matches their files",
          "[golden][weights]") {
  for (const std::string c : {"vocab", "odd"}) {
    INFO(c);
    auto config = llmfs::model_config_for(fixture("gpt2_" + c));
    config.tie_weights = c == "vocab";  // as the Python model: vocab tied, odd untied
    const auto model = loaded_model(fixture("gpt2_" + c), config);
    const auto dir = temp_dir(c);
    llmfs::save_hf_gpt2(*model, dir / "hf");
    llmfs::save_weights(*model, dir / "book.pth");
    llmfs::save_weights(*model, dir / "book.safetensors");

    // The same tensors, names and layout as save_pretrained: the same bytes.
    CHECK(llmfs::read_file(dir / "hf" / "model.safetensors") ==
          llmfs::read_file(fixture("gpt2_" + c + "/model.safetensors")));
    // And back into C++.
    auto written = llmfs::model_config_for(dir / "hf");
    CHECK_FALSE(written.tie_weights);  // the book's convention when reading any config.json
    written.tie_weights = config.tie_weights;
    CHECK(written == config);
    check_same_parameters(loaded_model(dir / "hf", written), model);
    check_same_parameters(loaded_model(dir / "book.pth", config), model);
    check_same_parameters(loaded_model(dir / "book.safetensors", config), model);

    const std::string script = R"(
import sys, torch
from safetensors.torch import load_file
from transformers import GPT2LMHeadModel
hf, book, ref_book, expected = sys.argv[1:5]
e = load_file(expected)
model = GPT2LMHeadModel.from_pretrained(hf, attn_implementation="eager").eval()
with torch.no_grad():
    diff = (model(e["input_ids"]).logits - e["logits"]).abs().max().item()
assert diff < 1e-4, diff
ours, ref = torch.load(book, weights_only=True), torch.load(ref_book, weights_only=True)
assert type(ours).__name__ == "OrderedDict"
assert list(ours) == list(ref), (list(ours)[:5], list(ref)[:5])
for k in ref:
    assert torch.equal(ours[k], ref[k]), k
print("OK")
)";
    const auto [out, code] =
        run_python(script, {(dir / "hf").string(), (dir / "book.pth").string(),
                            fixture("gpt2_" + c + "_book.pth").string(),
                            fixture("gpt2_" + c + "_expected.safetensors").string()});
    INFO(out);
    CHECK(code == 0);
    CHECK(out.size() >= 3);
    CHECK(out.substr(out.size() - 3) == "OK\n");
  }
}

TEST_CASE("Checkpoints for another model fail with one-line errors naming the tensor",
          "[golden][weights]") {
  const auto vocab = llmfs::model_config_for(fixture("gpt2_vocab"));
  const auto odd = llmfs::model_config_for(fixture("gpt2_odd"));
  {
    llmfs::GPTModel model(odd);
    CHECK_THROWS_WITH(
        llmfs::load_weights(model, fixture("gpt2_vocab")),
        contains_text("gpt2_vocab/model.safetensors: tensor 'transformer.wte.weight' has "
                      "shape [50257, 64] but the model (vocab_size 1000, context_length "
                      "48, emb_dim 48, n_layers 3) needs [1000, 48]: a checkpoint for "
                      "another model size?"));
    CHECK_THROWS_WITH(
        llmfs::load_weights(model, fixture("gpt2_vocab_book.pth")),
        contains_text("gpt2_vocab_book.pth: tensor 'tok_emb.weight' has shape [50257, "
                      "64] but the model"));
  }
  {
    auto fewer = vocab;
    fewer.n_layers = 1;
    llmfs::GPTModel model(fewer);
    CHECK_THROWS_WITH(llmfs::load_weights(model, fixture("gpt2_vocab")),
                      contains_text("unexpected tensor 'transformer.h.1.attn.c_attn.bias': the "
                                    "checkpoint has more layers than the model's 1"));
  }
  {
    auto more = vocab;
    more.n_layers = 3;
    llmfs::GPTModel model(more);
    CHECK_THROWS_WITH(llmfs::load_weights(model, fixture("gpt2_vocab")),
                      contains_text("missing tensor 'transformer.h.2.ln_1.weight' (Hugging Face "
                                    "GPT-2 layout, model with 3 layers)"));
  }
}

TEST_CASE("Damaged checkpoints fail with one-line errors naming the tensor or opcode",
          "[golden][weights]") {
  const auto config = llmfs::model_config_for(fixture("gpt2_odd"));
  torch::manual_seed(1);
  llmfs::GPTModel model(config);
  std::vector<torch::Tensor> before;
  for (const auto& p : model->parameters()) before.push_back(p.detach().clone());
  const auto dir = temp_dir("damaged");
  auto tensors = llmfs::load_safetensors(fixture("gpt2_odd/model.safetensors"));

  auto missing = tensors;
  missing.erase("transformer.h.1.mlp.c_fc.bias");
  llmfs::save_safetensors(dir / "missing.safetensors", missing);
  CHECK_THROWS_WITH(
      llmfs::load_weights(model, dir / "missing.safetensors"),
      contains_text("missing.safetensors: missing tensor 'transformer.h.1.mlp.c_fc.bias'"));

  auto ints = tensors;
  ints["transformer.h.0.ln_1.bias"] = ints["transformer.h.0.ln_1.bias"].to(torch::kInt64);
  llmfs::save_safetensors(dir / "ints.safetensors", ints);
  CHECK_THROWS_WITH(
      llmfs::load_weights(model, dir / "ints.safetensors"),
      contains_text("tensor 'transformer.h.0.ln_1.bias' has dtype Long; weights must be "
                    "floating point"));

  auto extra = tensors;
  extra["transformer.h.0.attn.rotary"] = torch::ones({3});
  llmfs::save_safetensors(dir / "extra.safetensors", extra);
  CHECK_THROWS_WITH(
      llmfs::load_weights(model, dir / "extra.safetensors"),
      contains_text("unexpected tensor 'transformer.h.0.attn.rotary' with shape [3]"));

  const std::string bytes = llmfs::read_file(fixture("gpt2_odd/model.safetensors"));
  llmfs::write_file_atomic(dir / "truncated.safetensors", bytes.substr(0, bytes.size() / 2));
  CHECK_THROWS_WITH(llmfs::load_weights(model, dir / "truncated.safetensors"),
                    contains_text("truncated.safetensors: tensor '") &&
                        contains_text("run past the end of the data buffer"));

  CHECK_THROWS_WITH(llmfs::load_weights(model, fixture("pth_evil.pth")),
                    contains_text("pickle global 'posix.system' is not allowed"));
  CHECK_THROWS_WITH(llmfs::load_weights(model, fixture("st_plain.safetensors")),
                    contains_text("st_plain.safetensors: not GPT weights"));
  CHECK_THROWS_WITH(llmfs::load_weights(model, dir), contains_text("no model.safetensors"));

  // Every check runs before the first copy: a failed load leaves the model as it was.
  const auto after = model->parameters();
  for (size_t i = 0; i < before.size(); ++i) CHECK(torch::equal(before[i], after[i]));

  auto no_bias = config;
  no_bias.qkv_bias = false;
  llmfs::GPTModel biasless(no_bias);
  CHECK_THROWS_WITH(llmfs::load_weights(biasless, fixture("gpt2_odd")),
                    contains_text("tensor 'transformer.h.0.attn.c_attn.bias' holds non-zero "
                                  "query/key/value biases but the model has qkv_bias false"));
}

TEST_CASE("config.json problems name the file and the key", "[golden][weights]") {
  const auto dir = temp_dir("configs");
  const std::string good = llmfs::read_file(fixture("gpt2_odd/config.json"));
  const auto write = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
    llmfs::write_file_atomic(dir / "config.json", text);
    return dir / "config.json";
  };
  CHECK_THROWS_WITH(llmfs::read_hf_gpt2_config(write("\"gelu_new\"", "\"relu\"")),
                    contains_text("config.json: activation_function \"relu\" is not supported"));
  CHECK_THROWS_WITH(llmfs::read_hf_gpt2_config(write("\"n_inner\": null", "\"n_inner\": 100")),
                    contains_text("n_inner 100 is not supported"));
  CHECK_THROWS_WITH(
      llmfs::read_hf_gpt2_config(write("\"model_type\": \"gpt2\"", "\"model_type\": \"llama\"")),
      contains_text("model_type \"llama\" is not gpt2"));
  CHECK_THROWS_WITH(llmfs::read_hf_gpt2_config(write("\"n_embd\"", "\"n_embed\"")),
                    contains_text("config.json: \"n_embd\" is missing"));
  CHECK_THROWS_WITH(llmfs::read_hf_gpt2_config(write("\"n_head\": 3", "\"n_head\": 5")),
                    contains_text("n_embd (48) must be divisible by n_head (5)"));
  CHECK_THROWS_WITH(llmfs::read_hf_gpt2_config(write("{", "[")),
                    contains_text("config.json: malformed JSON"));
  CHECK_THROWS_WITH(
      llmfs::model_config_for(fixture("gpt2_vocab_book.pth").parent_path() / "nothing" / "x.pth"),
      contains_text("no config.json beside the weights"));
}
