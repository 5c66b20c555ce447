// The DPO notebook (BOOK.md §9) on the real instruction-data-with-preference.json: the entries,
// the split, the example batch and its masks (CP-01 … CP-18), the training loader's batch
// lengths (CP-19) and the loss identities (CP-22 … CP-24); and against the notebook's formulas in
// Python PyTorch (tests/reference/fixtures_dpo.py): log-probabilities, loss and rewards of the
// example batch under two small random GPTs, and the first 10 DPO training steps.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "catch.h"
#include "torch_files.h"
#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/core/data_files.h"
#include "llmfs/core/repr.h"
#include "llmfs/data/preference_data.h"
#include "llmfs/finetune/dpo.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/train/trainer.h"
#include "llmfs_test_paths.h"
#include "tensor_compare.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using llmfs::test::to_vector;

namespace {

const fs::path kDir = fs::path(llmfs::test::kFixturesDir) / "dpo";

json read_json(const fs::path& path) {
  json j;
  std::ifstream(path) >> j;
  return j;
}

llmfs::PreferenceDataConfig book_config() {
  auto c = llmfs::default_preference_data_config();
  c.data.file = llmfs::data_file("instruction-data-with-preference.json").string();
  return c;
}

const llmfs::BPETokenizer& gpt2() {
  static const auto t = llmfs::BPETokenizer::gpt2();
  return t;
}

// The small GPT of the fixtures with the given weights.
llmfs::GPTModel small_model(const json& cfg, const fs::path& weights) {
  llmfs::GPTConfig c;
  c.vocab_size = cfg["vocab_size"];
  c.context_length = cfg["context_length"];
  c.emb_dim = cfg["emb_dim"];
  c.n_heads = cfg["n_heads"];
  c.n_layers = cfg["n_layers"];
  c.drop_rate = cfg["drop_rate"];
  c.qkv_bias = cfg["qkv_bias"];
  llmfs::GPTModel model(c);
  llmfs::load_model_state_dict(*model, llmfs::test::load_tensor_dict(weights), weights.string());
  return model;
}

const json kSmall = {{"vocab_size", 50257}, {"context_length", 128}, {"emb_dim", 32},
                     {"n_heads", 4},        {"n_layers", 2},         {"drop_rate", 0.0},
                     {"qkv_bias", true}};

// The notebook's example batch: entries 0 and 1, collated as its loaders collate.
llmfs::PreferenceBatch example_batch() {
  const auto config = book_config();
  const auto entries = llmfs::read_instruction_entries(config.data);
  const auto pairs = llmfs::preference_pairs({entries[0], entries[1]}, config);
  const llmfs::PreferenceDataset dataset(pairs, gpt2());
  return llmfs::preference_collate(dataset.examples(), {.allowed_max_length = 1024});
}

}  // namespace

TEST_CASE("Preference data as the notebook reads and splits it (CP-01 … CP-07)",
          "[golden][book][dpo]") {
  const auto config = book_config();
  const auto entries = llmfs::read_instruction_entries(config.data);
  CHECK(entries.size() == 1100);  // CP-01
  const auto pairs = llmfs::preference_pairs(entries, config);
  // CP-02, CP-03: the fields, in the file's order.
  CHECK(pairs[50].entry.instruction == "Identify the correct spelling of the following word.");
  CHECK(pairs[50].entry.input == "Ocassion");
  CHECK(pairs[50].rejected == "The correct spelling is obviously 'Occasion.'");
  CHECK(pairs[50].chosen == "The correct spelling is 'Occasion.'");
  CHECK(pairs[50].entry.extra.at(0).first == "rejected");
  CHECK(pairs[999].chosen == "A suitable antonym for 'complicated' would be 'simple'.");
  CHECK(pairs[999].rejected == "An antonym of 'complicated' is 'simple'.");
  CHECK(pairs[999].entry.extra.at(0).first == "chosen");
  CHECK(llmfs::format_input(pairs[50].entry) ==  // CP-04
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nIdentify the correct spelling of the "
        "following word.\n\n### Input:\nOcassion");
  const auto splits = llmfs::prepare_preference_data(config);  // CP-07
  CHECK(splits.train.size() == 935);
  CHECK(splits.validation.size() == 55);
  CHECK(splits.test.size() == 110);
}

TEST_CASE("The notebook's example batch and its masks (CP-08 … CP-18)", "[golden][book][dpo]") {
  const auto batch = example_batch();
  // CP-08: entries 0 and 1.
  REQUIRE(batch.prompt.size() == 2);
  CHECK(batch.prompt[0].numel() == 48);  // CP-10
  CHECK(batch.prompt[1].numel() == 45);
  CHECK(to_vector(batch.prompt[0]).back() == 1545);
  CHECK(batch.chosen.sizes() == torch::IntArrayRef({2, 81}));  // CP-11, CP-15
  CHECK(batch.chosen_mask.sizes() == torch::IntArrayRef({2, 81}));
  const auto row0 = to_vector(batch.chosen[0]);
  CHECK(std::vector<int64_t>(row0.begin() + 48, row0.begin() + 56) ==
        std::vector<int64_t>{198, 198, 21017, 18261, 25, 198, 464, 24993});
  CHECK(std::vector<int64_t>(row0.begin() + 74, row0.end()) == std::vector<int64_t>(7, 50256));
  const std::string prompt_text = gpt2().decode(to_vector(batch.prompt[0]));  // CP-12
  CHECK(prompt_text ==
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nEvaluate the following phrase by "
        "transforming it into the spelling given.\n\n### Input:\nfreind --> friend");
  const std::string eot = "<|endoftext|>";
  std::string padding;
  for (int i = 0; i < 7; ++i) padding += eot;
  CHECK(gpt2().decode(row0) == prompt_text +  // CP-13
                                   "\n\n### Response:\nThe spelling of the given phrase "
                                   "\"freind\" is incorrect, the correct spelling is "
                                   "\"friend\"." + padding);
  CHECK(gpt2().decode(to_vector(batch.rejected[0])) ==  // CP-14: the longest, one pad
        prompt_text +
            "\n\n### Response:\nThe spelling of the given phrase \"freind\" is flat out wrong, "
            "get it together, the correct spelling is \"friend\"." + eot);
  // CP-16: the prompt and its two newlines (50), then the response (24), then padding (7).
  std::vector<int64_t> expected_mask(81, 0);
  std::fill(expected_mask.begin() + 50, expected_mask.begin() + 74, 1);
  CHECK(to_vector(batch.chosen_mask[0].to(torch::kLong)) == expected_mask);
  const auto masked = [&](const torch::Tensor& ids, const torch::Tensor& mask) {
    return gpt2().decode(to_vector(ids.masked_select(mask)));
  };
  CHECK(masked(batch.chosen[0], batch.chosen_mask[0]) ==  // CP-17
        "### Response:\nThe spelling of the given phrase \"freind\" is incorrect, the correct "
        "spelling is \"friend\".");
  CHECK(masked(batch.rejected[0], batch.rejected_mask[0]) ==  // CP-18
        "### Response:\nThe spelling of the given phrase \"freind\" is flat out wrong, get it "
        "together, the correct spelling is \"friend\".");
  // Equal to the Python collate, row by row.
  const auto ref = read_json(kDir / "example.json");
  CHECK(to_vector(batch.chosen[1]) == ref["chosen"][1].get<std::vector<int64_t>>());
  CHECK(to_vector(batch.rejected[1]) == ref["rejected"][1].get<std::vector<int64_t>>());
  CHECK(to_vector(batch.rejected_mask[1].to(torch::kLong)) ==
        ref["rejected_mask"][1].get<std::vector<int64_t>>());
}

TEST_CASE("The training loader's batch lengths equal the notebook's loader (CP-19)",
          "[golden][dpo]") {
  const auto config = book_config();
  const auto splits = llmfs::prepare_preference_data(config);
  const auto loaders = llmfs::make_preference_loaders(splits, gpt2(), config, 8, 123, 1024);
  std::vector<int64_t> lengths;
  for (const auto& batch : loaders.train) {
    CHECK(batch.chosen.size(0) == 8);
    CHECK(batch.rejected.sizes() == batch.chosen.sizes());
    lengths.push_back(batch.chosen.size(1));
  }
  const auto ref = read_json(kDir / "lengths.json");
  CHECK(lengths.size() == 116);
  CHECK(lengths == ref["train_lengths"].get<std::vector<int64_t>>());
}

TEST_CASE("Log-probabilities by gather equal cross entropy, and the loss of a model against itself "
          "is ln 2 (CP-22 … CP-24)",
          "[golden][book][dpo]") {
  // CP-22: the notebook's toy logits as positions 0 and 1 of one sequence labelled 0, 2.
  const auto logits = torch::tensor({2.0f, 1.0f, 0.1f, 0.5f, 2.5f, 0.3f, 0.f, 0.f, 0.f})
                          .reshape({1, 3, 3});
  const auto labels = torch::tensor({{1L, 0L, 2L}});
  const auto mean_logp = llmfs::sequence_logprobs(logits, labels);
  CHECK(-mean_logp.item<double>() == Approx(1.4185).margin(1e-4));
  CHECK(torch::nn::functional::cross_entropy(logits[0].slice(0, 0, 2),
                                             torch::tensor({0L, 2L}))
            .item<double>() == Approx(-mean_logp.item<double>()).margin(1e-6));
  // CP-24: policy == reference on the example batch, any weights.
  torch::manual_seed(123);
  auto model = small_model(kSmall, kDir / "policy_init.pt");
  model->eval();
  torch::NoGradGuard no_grad;
  const llmfs::DPOReference self{model, model};
  const auto out = llmfs::dpo_batch_loss(model, self, example_batch(), 0.1);
  CHECK(out.loss.item<double>() == Approx(std::log(2.0)).margin(1e-6));
  CHECK(out.metrics.at("chosen_reward").item<double>() == 0.0);
  CHECK(out.metrics.at("rejected_reward").item<double>() == 0.0);
}

TEST_CASE("Log-probabilities, DPO loss and rewards equal the notebook's formulas in PyTorch",
          "[golden][dpo]") {
  const auto ref = read_json(kDir / "example.json");
  auto policy = small_model(kSmall, kDir / "policy_init.pt");
  auto reference = small_model(kSmall, kDir / "reference_init.pt");
  policy->eval();
  reference->eval();
  torch::NoGradGuard no_grad;
  const auto batch = example_batch();
  const auto check = [&](const torch::Tensor& t, const std::string& key) {
    INFO(key);
    const auto expected = ref[key].get<std::vector<double>>();
    REQUIRE(t.numel() == static_cast<int64_t>(expected.size()));
    for (size_t i = 0; i < expected.size(); ++i) {
      CHECK(t[static_cast<int64_t>(i)].item<double>() == Approx(expected[i]).margin(1e-5));
    }
  };
  const auto pc = llmfs::sequence_logprobs(policy->forward(batch.chosen), batch.chosen,
                                           batch.chosen_mask);
  const auto pr = llmfs::sequence_logprobs(policy->forward(batch.rejected), batch.rejected,
                                           batch.rejected_mask);
  const auto rc = llmfs::sequence_logprobs(reference->forward(batch.chosen), batch.chosen,
                                           batch.chosen_mask);
  const auto rr = llmfs::sequence_logprobs(reference->forward(batch.rejected), batch.rejected,
                                           batch.rejected_mask);
  check(pc, "policy_chosen_logps");
  check(pr, "policy_rejected_logps");
  check(rc, "reference_chosen_logps");
  check(rr, "reference_rejected_logps");
  const auto out = llmfs::dpo_batch_loss(policy, {reference, policy}, batch, 0.1);
  CHECK(out.loss.item<double>() == Approx(ref["loss"].get<double>()).margin(1e-5));
  CHECK(out.metrics.at("chosen_reward").item<double>() ==
        Approx(ref["chosen_reward"].get<double>()).margin(1e-5));
  CHECK(out.metrics.at("rejected_reward").item<double>() ==
        Approx(ref["rejected_reward"].get<double>()).margin(1e-5));
  CHECK(out.metrics.at("reward_margin").item<double>() ==
        Approx(ref["chosen_reward"].get<double>() - ref["rejected_reward"].get<double>())
            .margin(1e-5));
}

TEST_CASE("DPO training equals the notebook's loop in PyTorch for 10 steps", "[golden][dpo]") {
  const auto ref = read_json(kDir / "train.json");
  const auto& s = ref.at("settings");
  auto data = book_config();
  data.data.allowed_max_length = s["allowed_max_length"].get<int64_t>();
  llmfs::TrainConfig config;
  config.num_epochs = 1;
  config.max_steps = s["steps"].get<int64_t>();
  config.batch_size = s["batch_size"];
  config.learning_rate = s["learning_rate"];
  config.weight_decay = s["weight_decay"];
  config.eval_freq = s["eval_freq"];
  config.eval_at_end = false;  // the reference loop evaluates every eval_freq steps only
  config.eval_iter = s["eval_iter"];
  config.device = "cpu";
  config.final_checkpoint = false;
  config.output_dir = (fs::temp_directory_path() / "llmfs_test_dpo_parity").string();
  fs::remove_all(config.output_dir);
  const int64_t seed = s["seed"];

  const auto splits = llmfs::prepare_preference_data(data);
  const auto loaders = llmfs::make_preference_loaders(splits, gpt2(), data, config.batch_size,
                                                      seed, ref["model"]["context_length"]);
  auto policy = small_model(ref["model"], kDir / "policy_init.pt");
  auto reference = small_model(ref["model"], kDir / "policy_init.pt");
  reference->eval();
  for (auto& p : reference->parameters()) p.set_requires_grad(false);
  torch::manual_seed(static_cast<uint64_t>(seed));
  auto hooks = llmfs::dpo_train_hooks(policy, {reference, policy}, s["beta"], nullptr, "", 0, {});
  std::vector<double> losses;
  hooks.on_step = [&](int64_t, double loss) { losses.push_back(loss); };
  llmfs::Trainer<llmfs::PreferenceBatch> trainer(
      policy.ptr(), config, llmfs::batch_source(loaders.train),
      llmfs::batch_source(loaders.validation), hooks,
      {.handle_signals = false, .interactive_progress = false});
  const auto result = trainer.fit();

  const auto expected = ref["step_losses"].get<std::vector<double>>();
  REQUIRE(expected.size() == 10);
  REQUIRE(losses.size() == expected.size());
  CHECK(losses[0] == Approx(std::log(2.0)).margin(1e-6));  // policy == reference at the start
  double max_diff = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("step " << i);
    CHECK(losses[i] == Approx(expected[i]).margin(1e-5));
    max_diff = std::max(max_diff, std::abs(losses[i] - expected[i]));
  }
  const auto& evals = ref["evals"];
  REQUIRE(result.history.points.size() == evals.size());
  for (size_t i = 0; i < evals.size(); ++i) {
    const auto& p = result.history.points[i];
    INFO("evaluation " << i);
    CHECK(p.step == evals[i]["step"].get<int64_t>());
    CHECK(p.tokens_seen == evals[i]["tokens_seen"].get<int64_t>());
    CHECK(p.train_loss == Approx(evals[i]["train_loss"].get<double>()).margin(1e-5));
    CHECK(p.val_loss == Approx(evals[i]["val_loss"].get<double>()).margin(1e-5));
    CHECK(p.extra.at("train_chosen_reward") ==
          Approx(evals[i]["train_chosen_reward"].get<double>()).margin(1e-5));
    CHECK(p.extra.at("val_rejected_reward") ==
          Approx(evals[i]["val_rejected_reward"].get<double>()).margin(1e-5));
    CHECK(p.extra.at("train_reward_margin") ==
          Approx(evals[i]["train_chosen_reward"].get<double>() -
                 evals[i]["train_rejected_reward"].get<double>())
              .margin(1e-5));
  }
  WARN("DPO: largest step-loss difference to Python " << max_diff);
}
