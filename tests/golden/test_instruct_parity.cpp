// Chapter 7's finetuning against the book's loop in Python PyTorch
// (tests/reference/fixtures_instruct.py, sft*): the real instruction data through tiktoken and
// PyTorch's DataLoader there, through our InstructionDataset, collate and loaders here; the same
// small GPT with GPT-2's vocabulary and the same initial weights; the same seeds, so the same
// shuffled batches; dropout off. Every step's loss (with -100 targets skipped, and with the prompt
// masked too) and both evaluations must agree within 1e-5.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "catch.h"
#include "torch_files.h"
#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/core/data_files.h"
#include "llmfs/data/instruction_data.h"
#include "llmfs/finetune/instruct_run.h"
#include "llmfs/finetune/responses.h"
#include "llmfs/train/loss.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/train/trainer.h"
#include "llmfs_test_paths.h"

namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(llmfs::test::kFixturesDir) / "instruct";
constexpr double kTol = 1e-5;

}  // namespace

TEST_CASE("instruction finetuning equals the book's Python loop for 10 steps (masked loss)",
          "[golden][finetune][ch07]") {
  const std::string scenario = GENERATE("sft", "sft_masked");
  INFO("scenario " << scenario);
  nlohmann::json ref;
  std::ifstream(kDir / (scenario + ".json")) >> ref;
  const auto& s = ref.at("settings");
  const auto& m = ref.at("model");

  llmfs::GPTConfig model_config;
  model_config.vocab_size = m["vocab_size"];
  model_config.context_length = m["context_length"];
  model_config.emb_dim = m["emb_dim"];
  model_config.n_heads = m["n_heads"];
  model_config.n_layers = m["n_layers"];
  model_config.drop_rate = m["drop_rate"];
  model_config.qkv_bias = m["qkv_bias"];

  llmfs::InstructionDataConfig data;
  data.file = llmfs::data_file("instruction-data.json").string();
  data.allowed_max_length = s["allowed_max_length"].get<int64_t>();
  data.mask_instruction = s["mask_instruction"];
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
  config.output_dir =
      (fs::temp_directory_path() / fmt::format("llmfs_test_instruct_{}", scenario)).string();
  fs::remove_all(config.output_dir);
  const int64_t seed = s["seed"];

  // The fixture's order: seed and loaders (make_instruction_loaders seeds), model, weights, seed.
  const auto tokenizer = std::make_shared<llmfs::BPETokenizer>(llmfs::BPETokenizer::gpt2());
  const auto splits = llmfs::prepare_instruction_data(data);
  const auto loaders = llmfs::make_instruction_loaders(splits, *tokenizer, data, config.batch_size,
                                                       seed, model_config.context_length);
  llmfs::GPTModel model(model_config);
  llmfs::load_model_state_dict(*model, llmfs::test::load_tensor_dict(kDir / "sft_init.pt"), "sft_init.pt");
  torch::manual_seed(static_cast<uint64_t>(seed));

  auto hooks = llmfs::instruct_train_hooks(model, tokenizer, "", 0, {});
  std::vector<double> step_losses;
  hooks.on_step = [&](int64_t, double loss) { step_losses.push_back(loss); };
  llmfs::Trainer<> trainer(model.ptr(), config, llmfs::batch_source(loaders.train),
                           llmfs::batch_source(loaders.validation), hooks,
                           {.handle_signals = false, .interactive_progress = false});
  const auto result = trainer.fit();

  const auto expected = ref["step_losses"].get<std::vector<double>>();
  REQUIRE(expected.size() == 10);
  REQUIRE(step_losses.size() == expected.size());
  double max_diff = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("step " << i);
    CHECK(step_losses[i] == Approx(expected[i]).margin(kTol));
    max_diff = std::max(max_diff, std::abs(step_losses[i] - expected[i]));
  }
  const auto& evals = ref["evals"];
  REQUIRE(result.history.points.size() == evals.size());
  for (size_t i = 0; i < evals.size(); ++i) {
    const auto& p = result.history.points[i];
    INFO("evaluation " << i);
    CHECK(p.step == evals[i]["step"].get<int64_t>());
    CHECK(p.tokens_seen == evals[i]["tokens_seen"].get<int64_t>());
    CHECK(p.train_loss == Approx(evals[i]["train_loss"].get<double>()).margin(kTol));
    CHECK(p.val_loss == Approx(evals[i]["val_loss"].get<double>()).margin(kTol));
  }
  WARN(scenario << ": largest step-loss difference to Python " << max_diff);
}

TEST_CASE("The references' loss is the mean over every response token, batched or not",
          "[golden][finetune][ch07]") {
  llmfs::InstructionDataConfig data;
  data.file = llmfs::data_file("instruction-data.json").string();
  const auto splits = llmfs::prepare_instruction_data(data);
  const std::vector<llmfs::InstructionEntry> entries(splits.test.begin(), splits.test.begin() + 5);
  llmfs::GPTConfig config;
  config.vocab_size = 50257, config.context_length = 256, config.emb_dim = 32;
  config.n_heads = 4, config.n_layers = 2, config.drop_rate = 0.0, config.qkv_bias = true;
  torch::manual_seed(7);
  llmfs::InstructModel model;
  model.model = llmfs::GPTModel(config);
  model.tokenizer = std::make_shared<llmfs::BPETokenizer>(llmfs::BPETokenizer::gpt2());

  // By hand, one entry at a time: prompt + response + <|endoftext|>, the prompt's targets masked.
  double nll = 0.0;
  int64_t tokens = 0;
  {
    torch::NoGradGuard no_grad;
    model.model->eval();
    for (const auto& e : entries) {
      const auto prompt = llmfs::format_input(e);
      auto ids = model.tokenizer->encode(prompt + llmfs::format_response(e));
      ids.push_back(50256);
      const auto prompt_len = static_cast<int64_t>(model.tokenizer->encode(prompt).size());
      const auto all = torch::tensor(ids, torch::kLong);
      const auto input = all.slice(0, 0, -1).unsqueeze(0);
      auto target = all.slice(0, 1).clone();
      target.slice(0, 0, prompt_len - 1).fill_(-100);
      const auto logits = model.model->forward(input).squeeze(0);
      const auto n = target.ne(-100).sum().item<int64_t>();
      nll += llmfs::lm_loss(logits, target).item<double>() * static_cast<double>(n);
      tokens += n;
    }
  }
  for (const int64_t batch : {1, 2, 8}) {
    INFO("batch size " << batch);
    const auto r = llmfs::reference_loss(model, entries, batch);
    CHECK(r.entries == 5);
    CHECK(r.tokens == tokens);
    CHECK(r.loss == Approx(nll / static_cast<double>(tokens)).margin(1e-5));
    CHECK(r.perplexity() == Approx(std::exp(r.loss)));
  }
}
