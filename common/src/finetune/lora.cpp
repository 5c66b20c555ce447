// Appendix E: attaching, counting and merging LoRA adapters.
#include "llmfs/finetune/lora.h"

#include <algorithm>
#include <functional>

#include "llmfs/core/error.h"
#include "llmfs/ops/lora.h"

namespace llmfs {

namespace {

const std::vector<std::string> kLayerChoices = {"all",     "attention", "feed_forward", "out_head",
                                                "W_query", "W_key",     "W_value",      "out_proj"};

bool selected(const std::vector<std::string>& layers, const std::string& path) {
  // path: the dotted module path of a linear layer ("trf_blocks.0.att.W_query", "out_head").
  const auto last = path.substr(path.rfind('.') + 1);
  const bool in_att = path.find(".att.") != std::string::npos;
  const bool in_ff = path.find(".ff.") != std::string::npos;
  for (const auto& l : layers) {
    if (l == "all") return true;
    if (l == "attention" && in_att) return true;
    if (l == "feed_forward" && in_ff) return true;
    if (l == "out_head" && path == "out_head") return true;
    if (in_att && l == last) return true;
  }
  return false;
}

// Depth first, in registration order (Python's named_children recursion).
void visit_linears(torch::nn::Module& module, const std::string& prefix,
                   const std::function<void(const std::string&, torch::nn::LinearImpl&)>& fn) {
  for (const auto& child : module.named_children()) {
    const auto path = prefix.empty() ? child.key() : prefix + "." + child.key();
    if (auto* linear = child.value()->as<torch::nn::LinearImpl>()) {
      fn(path, *linear);
    } else {
      visit_linears(*child.value(), path, fn);
    }
  }
}

}  // namespace

LoRAConfig parse_lora_config(ConfigNode node, const LoRAConfig& defaults) {
  LoRAConfig c = defaults;
  node.read("rank", c.rank, at_least(int64_t{1}));
  node.read("alpha", c.alpha, greater_than(0.0));
  node.read<std::vector<std::string>>(
      "layers", c.layers, [](const std::vector<std::string>& v) -> std::optional<std::string> {
        if (v.empty()) return "needs at least one entry";
        for (const auto& l : v) {
          if (std::find(kLayerChoices.begin(), kLayerChoices.end(), l) == kLayerChoices.end()) {
            std::string choices;
            for (const auto& choice : kLayerChoices) choices += (choices.empty() ? "" : ", ") + choice;
            return "unknown layer '" + l + "' (one of " + choices + ")";
          }
        }
        return std::nullopt;
      });
  node.read("scale_by_rank", c.scale_by_rank);
  return c;
}

int64_t apply_lora(torch::nn::Module& model, const LoRAConfig& config) {
  if (config.rank < 1) fail("LoRA: rank must be >= 1, got {}", config.rank);
  int64_t count = 0;
  visit_linears(model, "", [&](const std::string& path, torch::nn::LinearImpl& layer) {
    if (!selected(config.layers, path)) return;
    if (lora_of(layer) != nullptr) fail("LoRA: {} already has an adapter", path);
    const int64_t out_dim = layer.weight.size(0), in_dim = layer.weight.size(1);
    LoRALayer adapter(in_dim, out_dim, config.rank, config.scale());
    adapter->to(layer.weight.device());
    layer.register_module(kLoRAChild, adapter);
    ++count;
  });
  return count;
}

int64_t count_lora_layers(const torch::nn::Module& model) {
  int64_t count = 0;
  for (const auto& m : model.modules(/*include_self=*/true)) {
    if (const auto* linear = m->as<torch::nn::LinearImpl>(); linear && lora_of(*linear)) ++count;
  }
  return count;
}

int64_t merge_lora(torch::nn::Module& model) {
  int64_t count = 0;
  torch::NoGradGuard no_grad;
  visit_linears(model, "", [&](const std::string&, torch::nn::LinearImpl& layer) {
    auto* lora = lora_of(layer);
    if (lora == nullptr) return;
    layer.weight.add_(lora->delta_weight().to(layer.weight.dtype()));
    layer.unregister_module(kLoRAChild);
    ++count;
  });
  return count;
}

bool is_lora_parameter(const std::string& name) {
  const std::string marker = std::string(".") + kLoRAChild + ".";
  return name.find(marker) != std::string::npos || name.rfind(std::string(kLoRAChild) + ".", 0) == 0;
}

std::map<std::string, torch::Tensor> adapter_state_dict(const torch::nn::Module& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model.named_parameters()) {
    if (is_lora_parameter(p.key()) || p.value().requires_grad()) {
      out[p.key()] = p.value().detach().to(torch::kCPU).clone();
    }
  }
  return out;
}

}  // namespace llmfs
