#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "llmfs/config/config_node.h"
#include "llmfs/data/preference_data.h"
#include "llmfs/finetune/instruct_run.h"
#include "llmfs/generate/generation_config.h"
#include "llmfs/model/gpt_config.h"
#include "llmfs/model/gpt_model.h"
#include "llmfs/tokenizer/tokenizer_config.h"
#include "llmfs/train/trainer.h"

namespace llmfs {

/// The notebook's compute_logprobs (BOOK.md §9.1): logits (B, T, V) of a sequence and the
/// sequence itself (B, T) as labels; the log-softmax of positions 0 … T−2 picks the labels at
/// 1 … T−1; with a mask (B, T) bool, shifted the same way, the mean over the masked-in positions,
/// else over all. Returns (B) float.
torch::Tensor sequence_logprobs(const torch::Tensor& logits, const torch::Tensor& labels,
                                const std::optional<torch::Tensor>& mask = std::nullopt);

/// The DPO loss of mean log-probabilities (policy: chosen, rejected; reference: chosen,
/// rejected), each (B): z = (π_c − π_r) − (ρ_c − ρ_r), loss = mean of −log σ(β z); the rewards
/// π_c − ρ_c and π_r − ρ_r averaged over the batch (without gradient). All 0-dim.
struct DPOLoss {
  torch::Tensor loss, chosen_reward, rejected_reward;
};
DPOLoss dpo_loss(const torch::Tensor& policy_chosen, const torch::Tensor& policy_rejected,
                 const torch::Tensor& reference_chosen, const torch::Tensor& reference_rejected,
                 double beta = 0.1);

/// The reference of a DPO run: a frozen model, or the policy's own base weights (a LoRA policy
/// with its adapters switched off: no second copy of the weights).
struct DPOReference {
  GPTModel model{nullptr};      // the frozen reference; null: `policy` without its adapters
  GPTModel policy{nullptr};
};

/// One batch's DPO loss (the notebook's compute_dpo_loss_batch): the policy's log-probabilities
/// of the chosen and the rejected sequences (with gradients when enabled), the reference's
/// without gradients, dpo_loss; the batch moved to the policy's device. Metrics: chosen_reward,
/// rejected_reward, reward_margin.
LossOutput dpo_batch_loss(GPTModel& policy, const DPOReference& reference,
                          const PreferenceBatch& batch, double beta);

/// The DPO training hooks for llmfs::Trainer<PreferenceBatch>: the loss above, tokens seen =
/// the chosen tensor's size (the notebook's), and the sample after each epoch when on_sample is
/// set (the policy's greedy continuation of sample_prompt).
TrainHooks<PreferenceBatch> dpo_train_hooks(
    GPTModel policy, DPOReference reference, double beta,
    std::shared_ptr<const Tokenizer> tokenizer, std::string sample_prompt, int64_t sample_tokens,
    std::function<void(int64_t epoch, const std::string& text)> on_sample);

/// The notebook's evaluation line:
///   Ep 1 (Step 000005): Train loss 0.692, Val loss 0.693, Train reward margins 0.011, Val reward margins 0.003
std::string format_dpo_eval_line(const EvalPoint& point);

/// A DPO run: configs/ch07/dpo.yaml.
struct DPORunConfig {
  int64_t seed = 123;
  /// The model to align: a ch07 run (its latest checkpoint; the book: the chapter-7 SFT model),
  /// anything llmfs::load_model loads, or "random": a new GPT of `model:` (tests, benchmarks).
  std::string policy = "runs/ch07";
  /// The frozen reference: "" for the policy's starting weights (the notebook), or a model name
  /// as for `policy` (same shape required).
  std::string reference;
  GPTConfig model;             // the shape of a random policy
  TokenizerConfig tokenizer;   // the tokenizer of a random policy
  PreferenceDataConfig data;
  InstructFinetuneConfig finetune;  // all (the notebook) | lora (the reference is the base)
  double beta = 0.1;
  TrainConfig train;  // the notebook: AdamW 5e-6, weight decay 0.01, 1 epoch, batch 8, eval 5 / 5
  int64_t sample_tokens = 50;   // the sample after each epoch (validation entry 2's prompt)
  int64_t compare_entries = 3;  // validation entries answered by reference and policy at the end
  GenerationConfig generate;    // how they answer (greedy, 256 tokens, stop at end-of-text)
};

DPORunConfig default_dpo_run_config();
DPORunConfig parse_dpo_run_config(ConfigNode root, const DPORunConfig& defaults);

/// What train_dpo reports; the chapter prints.
struct DPOCallbacks {
  std::function<void(const std::string& message)> on_info;
  std::function<void(const EvalPoint&)> on_eval;
  std::function<void(int64_t step, double loss)> on_step;
  std::function<void(int64_t epoch, const std::string& text)> on_sample;
  /// After training, per compared validation entry: the entry, the reference's and the policy's
  /// answers.
  std::function<void(const InstructionEntry& entry, const std::string& reference_response,
                     const std::string& policy_response)>
      on_compare;
};

struct DPORunResult {
  TrainResult train;
  int64_t trainable_parameters = 0;
  double seconds = 0.0;
  double tokens_per_s = 0.0;  // chosen tokens per second of optimizer steps (the notebook's count)
  std::filesystem::path run_dir;
};

/// The notebook's run: the data, the policy and its reference, seed, the loaders, [LoRA], seed,
/// train_model_dpo_simple on llmfs::Trainer (checkpoints, resume, metrics), the sample after
/// each epoch, then reference and policy answers side by side. Writes into train.output_dir
/// what finetune_instruct writes; its checkpoints load with load_instruct_model. One-line errors
/// before anything is written: bad data, a reference of another shape than the policy, a training
/// split smaller than one batch.
DPORunResult train_dpo(const DPORunConfig& config, const InstructRunOptions& options,
                       const DPOCallbacks& callbacks);

}  // namespace llmfs
