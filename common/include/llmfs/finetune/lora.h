#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "llmfs/config/config_node.h"

namespace llmfs {

/// Appendix E's low-rank adaptation: which linear layers get adapters, and their size. The
/// `classifier.lora:` section of configs/ch06/*.yaml.
struct LoRAConfig {
  int64_t rank = 16;
  double alpha = 16.0;
  /// Which linear layers: "all" (appendix E: every linear layer, head included), or any of
  /// "attention" (W_query, W_key, W_value, out_proj), "feed_forward", "out_head", and the single
  /// names "W_query", "W_key", "W_value", "out_proj".
  std::vector<std::string> layers = {"all"};
  /// true: scale = α / r (the book's repository since PR #823); false: α (the print book).
  bool scale_by_rank = true;

  double scale() const { return scale_by_rank ? alpha / static_cast<double>(rank) : alpha; }
};

/// Reads a `lora:` section (every key optional).
LoRAConfig parse_lora_config(ConfigNode node, const LoRAConfig& defaults = {});

/// Appendix E's replace_linear_with_lora: visits the model's modules in registration order,
/// depth first, and attaches an adapter (ops/lora.h, child "lora") to every linear layer that
/// `config.layers` selects; the A matrices are drawn from the global generator in that order, B
/// is zero, so the model's outputs are unchanged. Freezing is the caller's (the book freezes
/// every parameter first; the adapters are created trainable). Returns the number of adapters
/// (73 for GPT-2 124M with "all": 12 × 6 + the head). llmfs::Error when a layer already has one.
int64_t apply_lora(torch::nn::Module& model, const LoRAConfig& config);

/// Number of linear layers with an adapter.
int64_t count_lora_layers(const torch::nn::Module& model);

/// Folds every adapter into its layer's weight (W += scale · (A B)ᵀ) and removes it: the model
/// computes the same function (up to float rounding) as a plain GPT, for export. Returns the
/// number of adapters merged.
int64_t merge_lora(torch::nn::Module& model);

/// Whether a parameter name belongs to an adapter ("….lora.A", "….lora.B").
bool is_lora_parameter(const std::string& name);

/// The tensors an adapter-only checkpoint holds: every adapter tensor and every other trainable
/// parameter (the classifier head; with LoRA the head is frozen under its own adapter in
/// appendix E, but a config may train it), as CPU copies by name.
std::map<std::string, torch::Tensor> adapter_state_dict(const torch::nn::Module& model);

}  // namespace llmfs
