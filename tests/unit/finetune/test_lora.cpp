// Appendix E's LoRA: adapters leave the model unchanged until trained, merge into the weights
// with the same logits, and export as a small adapter-only state dict.
#include "catch.h"
#include "llmfs/finetune/classifier.h"
#include "llmfs/finetune/lora.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/ops/lora.h"

namespace {

llmfs::GPTConfig tiny() {
  llmfs::GPTConfig c;
  c.vocab_size = 61, c.context_length = 12, c.emb_dim = 16, c.n_heads = 2, c.n_layers = 2;
  c.drop_rate = 0.0, c.qkv_bias = true;
  return c;
}

// Gives every adapter a non-zero B, as training would.
void perturb_adapters(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (auto& p : model.named_parameters()) {
    if (p.key().size() > 7 && p.key().substr(p.key().size() - 7) == ".lora.B") {
      p.value().copy_(torch::randn_like(p.value()) * 0.1);
    }
  }
}

}  // namespace

TEST_CASE("LoRA adapters start at zero, so the model is unchanged", "[finetune][lora]") {
  torch::manual_seed(1);
  llmfs::GPTModel model(tiny());
  model->eval();
  const auto ids = torch::randint(0, 61, {2, 12});
  torch::NoGradGuard no_grad;
  const auto before = model->forward(ids);
  llmfs::LoRAConfig config;
  config.rank = 4;
  config.alpha = 8;
  CHECK(llmfs::apply_lora(*model, config) == 2 * 6 + 1);
  CHECK(llmfs::count_lora_layers(*model) == 13);
  CHECK(torch::equal(model->forward(ids), before));
  // A is Kaiming-uniform: within ±1/sqrt(rank).
  const auto* adapter = llmfs::lora_of(*model->out_head);
  REQUIRE(adapter != nullptr);
  CHECK(adapter->A.abs().max().item<double>() <= 0.5);
  CHECK(adapter->scale == 2.0);
  CHECK_THROWS_WITH(llmfs::apply_lora(*model, config), Catch::Contains("already has an adapter"));
}

TEST_CASE("LoRA layer choices select the linear layers by role", "[finetune][lora]") {
  torch::manual_seed(1);
  llmfs::GPTModel model(tiny());
  llmfs::LoRAConfig config;
  config.layers = {"attention"};
  CHECK(llmfs::apply_lora(*model, config) == 2 * 4);
  llmfs::GPTModel other(tiny());
  config.layers = {"W_query", "out_head"};
  CHECK(llmfs::apply_lora(*other, config) == 2 + 1);
  llmfs::GPTModel third(tiny());
  config.layers = {"feed_forward"};
  CHECK(llmfs::apply_lora(*third, config) == 2 * 2);
}

TEST_CASE("merged and unmerged LoRA give the same logits", "[finetune][lora]") {
  torch::manual_seed(2);
  llmfs::GPTModel model(tiny());
  llmfs::replace_output_head(*model, 3, 123);
  llmfs::LoRAConfig config;
  config.rank = 4;
  llmfs::apply_lora(*model, config);
  perturb_adapters(*model);
  model->eval();
  const auto ids = torch::randint(0, 61, {3, 12});
  torch::NoGradGuard no_grad;
  const auto unmerged = model->forward(ids);
  CHECK(llmfs::merge_lora(*model) == 13);
  CHECK(llmfs::count_lora_layers(*model) == 0);
  for (const auto& p : model->named_parameters()) CHECK_FALSE(llmfs::is_lora_parameter(p.key()));
  const auto merged = model->forward(ids);
  CHECK((merged - unmerged).abs().max().item<double>() < 1e-5);
  CHECK(unmerged.abs().max().item<double>() > 1e-3);  // not trivially zero
}

TEST_CASE("an adapter-only state dict holds only adapters and trainable parameters",
          "[finetune][lora]") {
  torch::manual_seed(3);
  llmfs::GPTModel model(tiny());
  llmfs::replace_output_head(*model, 2, 123);
  llmfs::freeze_all(*model);
  llmfs::LoRAConfig config;
  config.rank = 2;
  llmfs::apply_lora(*model, config);
  const auto state = llmfs::adapter_state_dict(*model);
  CHECK(state.size() == 2 * 13);
  int64_t elements = 0;
  for (const auto& [name, t] : state) {
    INFO(name);
    CHECK(llmfs::is_lora_parameter(name));
    elements += t.numel();
  }
  CHECK(elements == llmfs::count_trainable_parameters(*model));
  CHECK(elements < llmfs::count_parameters(*model) / 2);
}

TEST_CASE("GPT-2 124M's trainable parameters before and after freezing and with LoRA (CE-05, CE-06)",
          "[finetune][lora]") {
  auto config = llmfs::gpt2_config("124M");
  config.qkv_bias = true;
  torch::manual_seed(123);
  llmfs::GPTModel model(config);
  llmfs::replace_output_head(*model, 2, 123);
  llmfs::set_trainable(*model, "all");
  CHECK(llmfs::count_trainable_parameters(*model) == 124441346);
  llmfs::freeze_all(*model);
  CHECK(llmfs::count_trainable_parameters(*model) == 0);
  llmfs::LoRAConfig lora;  // rank 16, alpha 16
  CHECK(llmfs::apply_lora(*model, lora) == 73);
  CHECK(llmfs::count_trainable_parameters(*model) == 2666528);
  // The book's strategy: last block (7,087,872), final norm (1,536), head (1,538).
  llmfs::GPTModel book(config);
  llmfs::replace_output_head(*book, 2, 123);
  llmfs::set_trainable(*book, "last_block");
  CHECK(llmfs::count_trainable_parameters(*book) == 7087872 + 1536 + 1538);
  llmfs::set_trainable(*book, "head");
  CHECK(llmfs::count_trainable_parameters(*book) == 7087872 + 1536 + 1538);  // only adds
}

TEST_CASE("LoRADisabled runs a model on its base weights alone (DPO's reference)",
          "[finetune][lora]") {
  torch::manual_seed(3);
  llmfs::GPTModel model(tiny());
  model->eval();
  const auto ids = torch::randint(0, 61, {2, 12});
  torch::NoGradGuard no_grad;
  const auto base = model->forward(ids);
  llmfs::LoRAConfig config;
  config.rank = 2;
  llmfs::apply_lora(*model, config);
  perturb_adapters(*model);
  const auto adapted = model->forward(ids);
  CHECK((adapted - base).abs().max().item<double>() > 1e-3);  // the adapters matter
  {
    const llmfs::LoRADisabled off;
    CHECK_FALSE(llmfs::lora_enabled());
    {
      const llmfs::LoRADisabled nested;
    }
    CHECK_FALSE(llmfs::lora_enabled());  // the outer one still holds
    CHECK(torch::equal(model->forward(ids), base));
  }
  CHECK(llmfs::lora_enabled());
  CHECK(torch::equal(model->forward(ids), adapted));
}
