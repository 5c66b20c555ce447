#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "llmfs/config/config_node.h"
#include "llmfs/generate/generate.h"
#include "llmfs/generate/sampling.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/tokenizer.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace llmfs {

/// How a program generates text: the `generate:` section of a config, the usual command-line
/// flags (add_generation_flags), and generate_text. Every chapter that continues a prompt, the
/// chat and the server read this one struct.
///
///   generate:
///     max_new_tokens: 25
///     temperature: 0.0      # 0: greedy; > 0: multinomial sampling from softmax(logits / T)
///     top_k: null           # e.g. 25; null: all tokens
///     top_p: null           # nucleus sampling, in (0, 1]; null: off
///     seed: 123             # torch.manual_seed right before generating
///     stop_at_eos: false    # stop at <|endoftext|>
///     kv_cache: true        # one token per step through a KV cache: same ids, faster
///     device: cpu           # cpu | auto | cuda | cuda:N | mps
///     precision: fp32       # fp32 | bf16: weights rounded to bf16 once (half the bytes per token)
struct GenerationConfig {
  int64_t max_new_tokens = 25;
  double temperature = 0.0;
  std::optional<int64_t> top_k;
  std::optional<double> top_p;
  int64_t seed = 123;
  bool stop_at_eos = false;
  bool kv_cache = true;
  std::string device = "cpu";  // cpu reproduces the book's draws
  /// The weights' dtype while generating: fp32, or bf16 (prepare_for_generation). bf16 halves
  /// what a decode step reads, which bounds its speed on a CPU; logits stay float32.
  std::string precision = "fp32";

  SamplingOptions sampling() const { return {temperature, top_k, top_p}; }
};

/// Reads a `generate:` section (every key optional; `defaults` are the chapter's). Bad values are
/// config errors naming the key. A caller may read keys of its own from the same section first
/// (a chapter's prompt).
GenerationConfig parse_generation_config(ConfigNode node, const GenerationConfig& defaults = {});

/// The command-line flags of a generating subcommand; those given override the config.
struct GenerationFlags {
  std::string prompt;
  int64_t max_new_tokens = 0, top_k = 0, seed = 0;
  double temperature = 0.0, top_p = 0.0;
  std::string device, precision;
  bool no_kv_cache = false, stop_at_eos = false;
  CLI::Option *prompt_opt = nullptr, *max_new_tokens_opt = nullptr, *temperature_opt = nullptr,
              *top_k_opt = nullptr, *top_p_opt = nullptr, *seed_opt = nullptr,
              *device_opt = nullptr, *precision_opt = nullptr;

  /// Whether --prompt was given.
  bool has_prompt() const;
};

/// Which of the generation flags a subcommand takes: only those it uses, so that none is accepted
/// and then ignored (ch07 generate reads an instruction, not a prompt; the chat always keeps
/// its KV cache and stops at the end of a turn).
struct GenerationFlagSet {
  bool prompt = true;
  bool kv_cache = true;
  bool stop_at_eos = true;
};

/// Adds --prompt, --max-new-tokens, --temperature, --top-k, --top-p, --seed, --device,
/// --precision, --no-kv-cache and --stop-at-eos to a (sub)command (less what `set` leaves out).
void add_generation_flags(CLI::App& app, GenerationFlags& flags, GenerationFlagSet set = {});

/// The config with the flags that were given applied, checked: llmfs::Error with one line for a
/// negative --max-new-tokens, a temperature < 0, top_k < 1, top_p outside (0, 1].
GenerationConfig apply_generation_flags(GenerationConfig config, const GenerationFlags& flags);

/// The GenerateOptions of a config for a model (its context length) and tokenizer (end-of-text).
GenerateOptions generate_options(const GenerationConfig& config, const GPTModelImpl& model,
                                 const Tokenizer& tokenizer);

/// What generate_text produced.
struct GeneratedText {
  std::string text;          // the prompt and its continuation, decoded
  std::string continuation;  // the new tokens alone, decoded
  int64_t prompt_tokens = 0;
  int64_t new_tokens = 0;
};

/// Puts a model on config.device in eval mode, its weights in config.precision's dtype (on the
/// CPU on huge pages, place_on_huge_pages): bf16 rounds every parameter once (a float32 model
/// comes back with fp32, its values rounded). On
/// a CPU without AVX512-BF16 the bf16 kernels widen the weights to float32 in registers (said
/// once): slower per byte, still half the bytes.
void prepare_for_generation(GPTModel& model, const GenerationConfig& config);

/// The one entry point for continuing a prompt: prepare_for_generation, the
/// prompt encoded (<|endoftext|> allowed, as the book's text_to_token_ids), checked (not empty,
/// every id inside the model's vocabulary), torch::manual_seed(config.seed), generate() with the
/// config's options, decoded. `source` names the model in errors.
GeneratedText generate_text(GPTModel& model, const Tokenizer& tokenizer, std::string_view prompt,
                            const GenerationConfig& config, std::string_view source = "model");

}  // namespace llmfs
