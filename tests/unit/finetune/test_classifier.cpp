// Chapter 6's classifier pieces: the head, freezing, pooling, accuracy and the report.
#include "catch.h"
#include "llmfs/finetune/classifier.h"
#include "llmfs/model/gpt_model.h"

TEST_CASE("the new head is seeded as the book's and replaces the LM head", "[finetune]") {
  llmfs::GPTConfig c;
  c.vocab_size = 50, c.context_length = 8, c.emb_dim = 8, c.n_heads = 2, c.n_layers = 3;
  llmfs::GPTModel model(c);
  llmfs::replace_output_head(*model, 4, 123);
  torch::manual_seed(123);
  torch::nn::Linear expected(torch::nn::LinearOptions(8, 4).bias(true));
  CHECK(torch::equal(model->out_head->weight, expected->weight));
  CHECK(torch::equal(model->out_head->bias, expected->bias));
  CHECK(model->forward(torch::zeros({2, 5}, torch::kLong)).sizes() == std::vector<int64_t>{2, 5, 4});
  // Everything frozen but the new head, which is created trainable (the book's order).
  CHECK(llmfs::count_trainable_parameters(*model) == 8 * 4 + 4);

  llmfs::set_trainable(*model, "head");
  CHECK(llmfs::count_trainable_parameters(*model) == 8 * 4 + 4);
  llmfs::freeze_all(*model);
  llmfs::set_trainable(*model, "last_two_blocks");
  const int64_t block = llmfs::count_parameters(*model->trf_blocks[0]);
  CHECK(llmfs::count_trainable_parameters(*model) == 2 * block + 16 + 36);
  llmfs::set_trainable(*model, "all");
  CHECK(llmfs::count_trainable_parameters(*model) == llmfs::count_parameters(*model));
  CHECK_THROWS_WITH(llmfs::set_trainable(*model, "some"), Catch::Contains("unknown choice"));
  CHECK_THROWS_WITH(llmfs::replace_output_head(*model, 1, 1), Catch::Contains("at least 2"));
}

TEST_CASE("a tied model gets an untied classification head", "[finetune]") {
  llmfs::GPTConfig c;
  c.vocab_size = 50, c.context_length = 8, c.emb_dim = 8, c.n_heads = 2, c.n_layers = 1;
  c.tie_weights = true;
  llmfs::GPTModel model(c);
  llmfs::replace_output_head(*model, 2, 1);
  CHECK(model->forward(torch::zeros({1, 3}, torch::kLong)).size(2) == 2);
}

TEST_CASE("pooling picks the last, the last real or the mean of the real positions",
          "[finetune]") {
  // Logits (B=2, T=4, N=2): position t of row b holds (10 b + t, -t).
  auto logits = torch::zeros({2, 4, 2});
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 4; ++t) {
      logits[b][t][0] = 10 * b + t;
      logits[b][t][1] = -t;
    }
  const int64_t pad = 9;
  const auto ids = torch::tensor({{1, 2, 9, 9}, {9, 9, 9, 9}});
  const auto last = llmfs::pool_logits(logits, ids, "last", pad);
  CHECK(last[0][0].item<float>() == 3);
  CHECK(last[1][0].item<float>() == 13);
  const auto real = llmfs::pool_logits(logits, ids, "last_real", pad);
  CHECK(real[0][0].item<float>() == 1);
  CHECK(real[1][0].item<float>() == 10);  // padding only: the first position
  const auto mean = llmfs::pool_logits(logits, ids, "mean", pad);
  CHECK(mean[0][0].item<float>() == Approx(0.5));
  CHECK(mean[0][1].item<float>() == Approx(-0.5));
  CHECK(mean[1][0].item<float>() == Approx(10));
  CHECK_THROWS(llmfs::pool_logits(logits, ids, "max", pad));
}

TEST_CASE("the classification report counts, precision, recall and F1", "[finetune]") {
  llmfs::Predictions p;
  p.labels = {0, 0, 0, 1, 1, 2};
  p.predicted = {0, 0, 1, 1, 2, 2};
  const auto r = llmfs::classification_report(p, {"a", "b", "c"});
  CHECK(r.total == 6);
  CHECK(r.accuracy == Approx(4.0 / 6));
  CHECK(r.confusion[0] == std::vector<int64_t>{2, 1, 0});
  CHECK(r.precision[1] == Approx(0.5));
  CHECK(r.recall[0] == Approx(2.0 / 3));
  CHECK(r.f1[2] == Approx(2 * 0.5 * 1.0 / 1.5));
  CHECK(r.support == std::vector<int64_t>{3, 2, 1});
  const auto text = llmfs::format_classification_report(r);
  CHECK_THAT(text, Catch::Contains("Accuracy: 66.67% (4 of 6)"));
  p.labels.push_back(3);
  p.predicted.push_back(0);
  CHECK_THROWS_WITH(llmfs::classification_report(p, {"a", "b", "c"}), Catch::Contains("outside"));
}
