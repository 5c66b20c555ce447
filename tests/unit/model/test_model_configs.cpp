// configs/models/*.yaml against the presets in code (gpt2_config) and the built models.
#include "catch.h"
#include "llmfs/config/config_node.h"
#include "llmfs/model/gpt_config.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/model/parameter_count.h"
#include "llmfs_test_paths.h"

namespace {

llmfs::GPTConfig read_model_yaml(const std::string& name) {
  const std::string path = std::string(llmfs::test::kSourceDir) + "/configs/models/" + name;
  llmfs::ConfigDocument doc(path, {});
  const auto cfg = llmfs::parse_gpt_config(doc.root());
  doc.finish();  // no problems, no unknown keys
  return cfg;
}

}  // namespace

TEST_CASE("configs/models/gpt2-*.yaml equal the gpt2_config presets", "[unit][model][config]") {
  for (const auto& size : llmfs::gpt2_sizes()) {
    INFO(size);
    CHECK(read_model_yaml("gpt2-" + size + ".yaml") == llmfs::gpt2_config(size));
  }
}

TEST_CASE("configs/models/tiny.yaml builds a model of the counted size", "[unit][model][config]") {
  const auto cfg = read_model_yaml("tiny.yaml");
  CHECK(cfg.vocab_size == 50257);
  CHECK(cfg.n_layers == 2);
  llmfs::GPTModel model(cfg);
  CHECK(llmfs::count_parameters(*model) == llmfs::count_gpt_parameters(cfg));
}
