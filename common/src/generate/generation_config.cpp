// One generation config: its YAML section, its command-line flags, and generate_text.
#include "llmfs/generate/generation_config.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "llmfs/core/device.h"
#include "llmfs/core/error.h"
#include "llmfs/core/huge_pages.h"
#include "llmfs/generate/text_ids.h"
#include "llmfs/ops/cpu_features.h"

namespace llmfs {

GenerationConfig parse_generation_config(ConfigNode node, const GenerationConfig& defaults) {
  GenerationConfig c = defaults;
  node.read("max_new_tokens", c.max_new_tokens, at_least(int64_t{0}));
  node.read("temperature", c.temperature, at_least(0.0));
  node.read("top_k", c.top_k);
  node.read("top_p", c.top_p);
  node.read("seed", c.seed);
  node.read("stop_at_eos", c.stop_at_eos);
  node.read("kv_cache", c.kv_cache);
  node.read<std::string>("device", c.device, check_device_name);
  node.read("precision", c.precision, one_of({"fp32", "bf16"}));
  node.check(!c.top_k || *c.top_k >= 1, "top_k", "must be >= 1 or null, got {}",
             c.top_k.value_or(0));
  node.check(!c.top_p || (*c.top_p > 0.0 && *c.top_p <= 1.0), "top_p",
             "must be in (0, 1] or null, got {}", c.top_p.value_or(0.0));
  return c;
}

bool GenerationFlags::has_prompt() const {
  return prompt_opt != nullptr && prompt_opt->count() > 0;
}

void add_generation_flags(CLI::App& app, GenerationFlags& f, GenerationFlagSet set) {
  if (set.prompt) f.prompt_opt = app.add_option("--prompt", f.prompt, "Text to continue");
  f.max_new_tokens_opt = app.add_option("--max-new-tokens", f.max_new_tokens, "Tokens to add");
  f.temperature_opt = app.add_option("--temperature", f.temperature, "0: greedy; > 0: sampling");
  f.top_k_opt = app.add_option("--top-k", f.top_k, "Sample from the k most likely tokens");
  f.top_p_opt = app.add_option("--top-p", f.top_p, "Nucleus sampling, in (0, 1]");
  f.seed_opt = app.add_option("--seed", f.seed, "torch.manual_seed before generating");
  f.device_opt = app.add_option("--device", f.device, "cpu, auto, cuda, cuda:N, mps");
  f.precision_opt = app.add_option("--precision", f.precision, "Weights: fp32 or bf16")
                        ->check(CLI::IsMember({"fp32", "bf16"}));
  if (set.kv_cache) {
    app.add_flag("--no-kv-cache", f.no_kv_cache, "The book's loop: re-read the context every step");
  }
  if (set.stop_at_eos) app.add_flag("--stop-at-eos", f.stop_at_eos, "Stop at <|endoftext|>");
}

GenerationConfig apply_generation_flags(GenerationConfig g, const GenerationFlags& f) {
  const auto given = [](const CLI::Option* o) { return o != nullptr && o->count() > 0; };
  if (given(f.max_new_tokens_opt)) g.max_new_tokens = f.max_new_tokens;
  if (given(f.temperature_opt)) g.temperature = f.temperature;
  if (given(f.top_k_opt)) g.top_k = f.top_k;
  if (given(f.top_p_opt)) g.top_p = f.top_p;
  if (given(f.seed_opt)) g.seed = f.seed;
  if (given(f.device_opt)) g.device = f.device;
  if (given(f.precision_opt)) g.precision = f.precision;
  if (f.no_kv_cache) g.kv_cache = false;
  if (f.stop_at_eos) g.stop_at_eos = true;
  if (g.max_new_tokens < 0) fail("--max-new-tokens must be >= 0, got {}", g.max_new_tokens);
  if (const auto problem = check_device_name(g.device)) fail("--device: {}", *problem);
  check_sampling_options(g.sampling(), "generate");
  return g;
}

GenerateOptions generate_options(const GenerationConfig& config, const GPTModelImpl& model,
                                 const Tokenizer& tokenizer) {
  GenerateOptions options;
  options.max_new_tokens = config.max_new_tokens;
  options.context_size = model.config().context_length;
  options.sampling = config.sampling();
  options.use_cache = config.kv_cache;
  if (config.stop_at_eos) {
    options.eos_id = tokenizer.special_token_id(kEndOfText);
    if (!options.eos_id)
      fail("stop_at_eos: the tokenizer {} has no {}", tokenizer.name(), kEndOfText);
  }
  return options;
}

void prepare_for_generation(GPTModel& model, const GenerationConfig& config) {
  const auto device = resolve_device(config.device);
  model->to(device);
  model->eval();
  if (config.precision == "bf16") {
    if (device.is_cpu()) {
      check_bf16_units("generate.precision=bf16",
                       "the bf16 weights are widened to float32 in registers (still half the bytes)");
    }
    model->to(torch::kBFloat16);
  } else {
    model->to(torch::kFloat32);
  }
  // A decode step reads every weight once: on huge pages, fewer TLB misses (no-op if there).
  if (device.is_cpu()) place_on_huge_pages(*model);
}

GeneratedText generate_text(GPTModel& model, const Tokenizer& tokenizer, std::string_view prompt,
                            const GenerationConfig& config, std::string_view source) {
  check_sampling_options(config.sampling(), "generate");
  const auto device = resolve_device(config.device);
  prepare_for_generation(model, config);
  const auto idx = text_to_token_ids(prompt, tokenizer);  // (1, n)
  if (idx.size(1) == 0) fail("--prompt: empty prompt (give at least one token of text)");
  const int64_t vocab = model->config().vocab_size;
  if (const int64_t top = idx.max().item<int64_t>(); top >= vocab) {
    fail("{}: the prompt has token {}, outside the model's vocabulary of {} (tokenizer {})", source,
         top, vocab, tokenizer.name());
  }
  const auto options = generate_options(config, *model, tokenizer);
  spdlog::info("{}: {} on {} ({}), {}{}", source, options.sampling.describe(), device.str(),
               config.precision, options.use_cache ? "KV cache" : "no KV cache",
               config.temperature > 0.0 ? fmt::format(", seed {}", config.seed) : "");
  torch::manual_seed(static_cast<uint64_t>(config.seed));
  const auto ids = generate(model, idx.to(device), options).squeeze(0).cpu();  // (n + new)
  GeneratedText out;
  out.prompt_tokens = idx.size(1);
  out.new_tokens = ids.size(0) - out.prompt_tokens;
  out.text = token_ids_to_text(ids, tokenizer);
  out.continuation = token_ids_to_text(ids.narrow(0, out.prompt_tokens, out.new_tokens), tokenizer);
  return out;
}

}  // namespace llmfs
