// The one model loader (with the GPT-2 tokenizer files from the data folder): every way of naming
// a model gives the same weights; bad names fail in one line naming the path. Also generate_text.
#include <filesystem>

#include "catch.h"
#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/checkpoint/gpt2_weights.h"
#include "llmfs/checkpoint/model_loader.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/generate/generation_config.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/train/adamw.h"
#include "llmfs/train/training_checkpoint.h"

namespace fs = std::filesystem;

namespace {

llmfs::GPTConfig tiny_config() {
  llmfs::GPTConfig c;
  c.vocab_size = 50257;
  c.context_length = 16;
  c.emb_dim = 8;
  c.n_heads = 2;
  c.n_layers = 1;
  c.qkv_bias = true;
  return c;
}

// A run folder as the Trainer leaves it, with a tiny model's weights.
fs::path write_run(const fs::path& dir, const llmfs::GPTModel& model,
                   const std::string& extra_yaml = "") {
  llmfs::TrainingCheckpoint checkpoint;
  checkpoint.model = llmfs::model_state_dict(*model);
  checkpoint.optimizer = llmfs::AdamW(model->named_parameters(), {}).state_dict();
  checkpoint.state.global_step = 3;
  checkpoint.config_yaml =
      "model:\n  context_length: 16\n  emb_dim: 8\n  n_heads: 2\n  n_layers: 1\n  qkv_bias: "
      "true\n" +
      extra_yaml;
  return llmfs::save_checkpoint(dir / "checkpoints", checkpoint);
}

bool same_weights(const llmfs::GPTModel& a, const llmfs::GPTModel& b) {
  const auto theirs = b->named_parameters();
  for (const auto& p : a->named_parameters()) {
    if (!torch::equal(p.value(), theirs[p.key()])) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("load_model reads runs, checkpoints and weights files alike", "[golden][checkpoint]") {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_model_loader";
  fs::remove_all(dir);
  torch::manual_seed(3);
  llmfs::GPTModel model(tiny_config());
  const fs::path run = dir / "run";
  const fs::path checkpoint = write_run(run, model);
  llmfs::save_hf_gpt2(*model, dir / "hf");
  llmfs::save_weights(*model, dir / "book.pth", llmfs::WeightLayout::Book);
  llmfs::save_weights(*model, dir / "hf" / "copy.safetensors", llmfs::WeightLayout::HuggingFace);

  const llmfs::ModelLoadOptions options{.run_dir = run};
  for (const std::string& name :
       std::vector<std::string>{"", "latest", run.string(), (run / "checkpoints").string(),
                                checkpoint.string()}) {
    INFO("name '" << name << "'");
    const auto loaded = llmfs::load_model(name, options);
    CHECK(loaded.is_checkpoint);
    CHECK(loaded.source == checkpoint.string());
    CHECK(loaded.config == model->config());
    CHECK_FALSE(loaded.model->is_training());
    CHECK(same_weights(loaded.model, model));
    CHECK(loaded.tokenizer->vocab_size() == 50257);
  }
  for (const fs::path& weights : {dir / "hf", dir / "hf" / "copy.safetensors"}) {
    INFO(weights.string());
    const auto loaded = llmfs::load_model(weights.string(), options);
    CHECK_FALSE(loaded.is_checkpoint);
    CHECK(same_weights(loaded.model, model));
  }
  // The book's .pth has no config beside it: the shape comes from the options (--model-config).
  auto with_shape = options;
  with_shape.model_config = tiny_config();
  CHECK(same_weights(llmfs::load_model((dir / "book.pth").string(), with_shape).model, model));
  CHECK_THROWS_WITH(llmfs::load_model((dir / "book.pth").string(), options),
                    llmfs::test::contains_text("no config.json beside the weights"));
  fs::remove_all(dir);
}

TEST_CASE("load_model fails in one line naming what it was given", "[golden][checkpoint]") {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_model_loader_errors";
  fs::remove_all(dir);
  fs::create_directories(dir / "empty");
  fs::create_directories(dir / "fresh" / "checkpoints");
  const llmfs::ModelLoadOptions options{
      .run_dir = dir / "none", .what = "--checkpoint", .train_hint = "train first"};
  CHECK_THROWS_WITH(llmfs::load_model("", options),
                    llmfs::test::contains_text("no trained model in " + (dir / "none").string() +
                                               " (train first)"));
  CHECK_THROWS_WITH(
      llmfs::load_model("/nonexistent/x", options),
      llmfs::test::contains_text("--checkpoint: /nonexistent/x: no such file or folder"));
  CHECK_THROWS_WITH(llmfs::load_model((dir / "empty").string(), options),
                    llmfs::test::contains_text("not a checkpoint folder"));
  CHECK_THROWS_WITH(llmfs::load_model((dir / "fresh").string(), options),
                    llmfs::test::contains_text("the run has no complete checkpoint yet"));
  CHECK_THROWS_WITH(llmfs::load_model("gpt2:999M", options), llmfs::test::contains_text("999M"));
  // A checkpoint whose config.yaml says another shape than its weights.
  torch::manual_seed(3);
  auto other = tiny_config();
  other.emb_dim = 16;
  llmfs::GPTModel model(other);
  write_run(dir / "other", model);
  CHECK_THROWS_WITH(llmfs::load_model((dir / "other").string(), options),
                    llmfs::test::contains_text("a checkpoint of another model?"));
  fs::remove_all(dir);
}

TEST_CASE("A run's tokenizer section chooses the tokenizer the model is loaded with",
          "[golden][checkpoint]") {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_model_loader_tokenizer";
  fs::remove_all(dir);
  torch::manual_seed(3);
  llmfs::GPTModel model(tiny_config());
  write_run(dir, model, "tokenizer:\n  kind: simple\n  text: the-verdict.txt\n");
  const auto loaded = llmfs::load_model(dir.string(), {});
  CHECK(loaded.tokenizer->vocab_size() < 2000);  // the book's SimpleTokenizerV2 vocabulary
  fs::remove_all(dir);
}

TEST_CASE("The GPT-2 weights folder follows LLMFS_CACHE_DIR", "[golden][checkpoint]") {
  ::setenv("LLMFS_CACHE_DIR", "/tmp/llmfs-cache-test", 1);
  CHECK(llmfs::gpt2_weights_dir("355M") == fs::path("/tmp/llmfs-cache-test/gpt2/355M"));
  CHECK_FALSE(llmfs::find_gpt2_weights("").has_value());
  ::unsetenv("LLMFS_CACHE_DIR");
  CHECK_THROWS_WITH(llmfs::find_gpt2_weights("/nonexistent/gpt2"),
                    llmfs::test::contains_text("/nonexistent/gpt2: no such file or folder"));
}

TEST_CASE("generate_text continues a prompt as generate() does, and checks it",
          "[golden][generate]") {
  torch::manual_seed(3);
  llmfs::GPTModel model(tiny_config());
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  llmfs::GenerationConfig config;
  config.max_new_tokens = 5;
  const auto out = llmfs::generate_text(model, tokenizer, "Every effort", config);
  CHECK(out.prompt_tokens == 2);
  CHECK(out.new_tokens == 5);
  CHECK(out.text == "Every effort" + out.continuation);
  config.kv_cache = false;
  CHECK(llmfs::generate_text(model, tokenizer, "Every effort", config).text == out.text);
  config.temperature = 1.3;
  config.top_k = 40;
  config.seed = 9;
  const auto sampled = llmfs::generate_text(model, tokenizer, "Every effort", config);
  CHECK(llmfs::generate_text(model, tokenizer, "Every effort", config).text == sampled.text);
  CHECK_THROWS_WITH(llmfs::generate_text(model, tokenizer, "", config),
                    llmfs::test::contains_text("empty prompt"));
  auto small = tiny_config();
  small.vocab_size = 100;
  llmfs::GPTModel small_model(small);
  CHECK_THROWS_WITH(llmfs::generate_text(small_model, tokenizer, "Every effort", config, "tiny"),
                    llmfs::test::contains_text("tiny: the prompt has token"));
  config.temperature = -1;
  CHECK_THROWS_WITH(llmfs::generate_text(model, tokenizer, "Every effort", config),
                    llmfs::test::contains_text("temperature must be a number >= 0"));
}

TEST_CASE("parse_generation_config reads the generate section and names bad keys",
          "[golden][generate]") {
  auto doc = llmfs::ConfigDocument::from_string(
      "generate:\n  max_new_tokens: 7\n  top_p: 0.9\n  kv_cache: false\n", "test.yaml");
  const auto g = llmfs::parse_generation_config(doc.root().child("generate"));
  doc.finish();
  CHECK(g.max_new_tokens == 7);
  CHECK(g.top_p == 0.9);
  CHECK_FALSE(g.kv_cache);
  CHECK(g.device == "cpu");
  auto bad =
      llmfs::ConfigDocument::from_string("generate:\n  top_k: 0\n  device: gpu\n", "bad.yaml");
  llmfs::parse_generation_config(bad.root().child("generate"));
  CHECK_THROWS_WITH(bad.finish(), llmfs::test::contains_text("generate.top_k"));
  CHECK_THROWS_WITH(bad.finish(), llmfs::test::contains_text("unknown device 'gpu'"));
}
