// Chapter 5's untrained-model values against the book (BOOK.md §6.4, §6.5): the ctx-256 model
// after seed 123 in eval mode, its greedy text (C5-01), the loss by hand (C5-02 … C5-12) and the
// initial losses over the-verdict's loaders (C5-13 … C5-18).
#include <cmath>
#include <string>
#include <vector>

#include "catch.h"
#include "llmfs/core/data_files.h"
#include "llmfs/generate/generate.h"
#include "llmfs/generate/text_ids.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/train/loss.h"
#include "llmfs/train/pretrain_data.h"
#include "tensor_compare.h"
#include "tolerances.h"

namespace {

// BOOK.md §6.1: GPT_CONFIG_124M with context_length 256, built right after seed 123, eval mode.
llmfs::GPTModel chapter5_model() {
  llmfs::GPTConfig cfg;
  cfg.context_length = 256;
  torch::manual_seed(123);
  llmfs::GPTModel model(cfg);
  model->eval();
  return model;
}

void check_close(const torch::Tensor& actual, const torch::Tensor& expected, double atol, double rtol) {
  const auto check = llmfs::test::compare(actual, expected, atol, rtol);
  INFO(check.report);
  CHECK(check.ok);
}

}  // namespace

TEST_CASE("C5-01 … C5-12: the untrained chapter-5 model's text, probabilities and loss",
          "[golden][book][pretraining]") {
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  auto model = chapter5_model();

  // C5-01: greedy, 10 tokens.
  const auto ids = llmfs::generate_text_simple(
      model, llmfs::text_to_token_ids("Every effort moves you", tokenizer), 10, 256);
  CHECK(llmfs::token_ids_to_text(ids, tokenizer) ==
        "Every effort moves you rentingetic wasnم refres RexMeCHicular stren");

  const auto inputs = torch::tensor({{16833, 3626, 6100}, {40, 1107, 588}});
  const auto targets = torch::tensor({{3626, 6100, 345}, {1107, 588, 11311}});
  torch::NoGradGuard no_grad;
  const auto logits = model(inputs);
  const auto probas = torch::softmax(logits, -1);
  CHECK(probas.sizes() == torch::IntArrayRef({2, 3, 50257}));  // C5-02
  const auto token_ids = torch::argmax(probas, -1, true);       // C5-03
  CHECK(llmfs::test::to_vector(token_ids.flatten()) ==
        std::vector<int64_t>{16657, 339, 42826, 49906, 29669, 41751});
  CHECK(llmfs::token_ids_to_text(token_ids[0].flatten(), tokenizer) == " Armed heNetflix");  // C5-04

  // C5-05: relative 1e-3 on the printed 5 significant digits.
  const auto positions = torch::arange(3);
  const auto p1 = probas.index({0, positions, targets[0]});
  const auto p2 = probas.index({1, positions, targets[1]});
  check_close(p1, torch::tensor({7.4541e-05f, 3.1061e-05f, 1.1563e-05f}), 0.0, 1e-3);
  check_close(p2, torch::tensor({1.0337e-05f, 5.6776e-05f, 4.7559e-06f}), 0.0, 1e-3);

  // C5-06 … C5-08, C5-11: ±1e-4.
  const auto log_probas = torch::log(torch::cat({p1, p2}));
  check_close(log_probas,
              torch::tensor({-9.5042f, -10.3796f, -11.3677f, -11.4798f, -9.7764f, -12.2561f}),
              llmfs::test::kBookPrinted4, 0.0);
  CHECK(std::abs(torch::mean(log_probas).item<double>() - -10.7940) <= llmfs::test::kBookPrinted4);
  const auto loss = llmfs::lm_loss(logits, targets);
  CHECK(logits.flatten(0, 1).sizes() == torch::IntArrayRef({6, 50257}));  // C5-10
  CHECK(std::abs(loss.item<double>() - 10.7940) <= llmfs::test::kBookPrinted4);
  // C5-12: perplexity, relative 1e-5.
  CHECK(std::abs(torch::exp(loss).item<double>() / 48725.8203 - 1.0) <= 1e-5);
}

TEST_CASE("C5-15 … C5-18: the-verdict's loaders and the untrained model's initial losses",
          "[golden][book][pretraining]") {
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  const auto text = llmfs::read_training_text("the-verdict.txt");
  CHECK(text.size() == 20479);                       // C5-15 (ASCII: bytes = characters)
  CHECK(tokenizer.encode(text).size() == 5145);
  const auto split = llmfs::split_text(text, 0.9);
  CHECK(split.train_chars == 18431);
  const llmfs::PretrainDataConfig data;  // the-verdict, windows of 256, stride 256
  const auto loaders = llmfs::make_pretrain_loaders(split, tokenizer, data, 2, 123);
  CHECK(loaders.train.size() == 9);   // C5-16, C5-17: 9 × 2 × 256 = 4,608 training tokens
  CHECK(loaders.val.size() == 1);     // 1 × 2 × 256 = 512 validation tokens

  // The notebook iterates each loader twice (C5-16, C5-17) before seeding again; the losses
  // use a fresh seed, so those passes do not matter here.
  auto model = chapter5_model();
  torch::NoGradGuard no_grad;
  torch::manual_seed(123);
  const double train_loss = llmfs::calc_loss_loader(loaders.train, model, torch::kCPU);
  const double val_loss = llmfs::calc_loss_loader(loaders.val, model, torch::kCPU);
  // C5-18 (CPU run): ±1e-5.
  CHECK(std::abs(train_loss - 10.98758347829183) <= 1e-5);
  CHECK(std::abs(val_loss - 10.98110580444336) <= 1e-5);
}
