// AdamW as torch.optim.AdamW computes it (single-tensor path and fused kernel).
#include "llmfs/train/adamw.h"

#include <cmath>

#include "llmfs/core/error.h"

namespace llmfs {

namespace {

std::string shape_str(c10::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

}  // namespace

AdamW::AdamW(const NamedParameters& parameters, AdamWOptions options) : options_(options) {
  if (!(options.lr >= 0)) fail("AdamW: invalid learning rate {}", options.lr);
  if (!(options.eps >= 0)) fail("AdamW: invalid eps {}", options.eps);
  if (!(options.beta1 >= 0 && options.beta1 < 1)) fail("AdamW: invalid beta1 {}", options.beta1);
  if (!(options.beta2 >= 0 && options.beta2 < 1)) fail("AdamW: invalid beta2 {}", options.beta2);
  if (!(options.weight_decay >= 0)) fail("AdamW: invalid weight_decay {}", options.weight_decay);
  for (const auto& [name, p] : parameters) {
    if (p.requires_grad()) params_.emplace_back(name, p);
  }
  if (params_.empty()) fail("AdamW: no trainable parameters (all are frozen)");
  state_.resize(params_.size());
}

namespace {
NamedParameters to_named(const torch::OrderedDict<std::string, torch::Tensor>& parameters) {
  NamedParameters out;
  for (const auto& p : parameters) out.emplace_back(p.key(), p.value());
  return out;
}
}  // namespace

AdamW::AdamW(const torch::OrderedDict<std::string, torch::Tensor>& parameters, AdamWOptions options)
    : AdamW(to_named(parameters), options) {}

std::vector<torch::Tensor> AdamW::parameter_tensors() const {
  std::vector<torch::Tensor> out;
  out.reserve(params_.size());
  for (const auto& [name, p] : params_) out.push_back(p);
  return out;
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_) {
    if (p.mutable_grad().defined()) p.mutable_grad().reset();
  }
}

void AdamW::init_state(size_t i) {
  auto& s = state_[i];
  if (s.exp_avg.defined()) return;
  const auto& p = params_[i].second;
  s.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
  s.exp_avg_sq = torch::zeros_like(p, torch::MemoryFormat::Preserve);
  // PyTorch keeps the step as a float32 tensor: on the parameter's device for the fused kernel,
  // on the CPU otherwise.
  s.step = torch::zeros({}, torch::TensorOptions()
                                .dtype(torch::kFloat32)
                                .device(options_.fused ? p.device() : torch::Device(torch::kCPU)));
}

void AdamW::step() {
  torch::NoGradGuard no_grad;
  if (options_.fused) {
    step_fused();
  } else {
    step_single();
  }
}

void AdamW::step_single() {
  const double lr = options_.lr, beta1 = options_.beta1, beta2 = options_.beta2;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    const auto& grad = p.grad();
    if (!grad.defined()) continue;
    init_state(i);
    auto& s = state_[i];
    if (s.step.device() != torch::kCPU) s.step = s.step.cpu();  // after a fused run
    s.step.add_(1);
    if (options_.weight_decay != 0) p.mul_(1 - lr * options_.weight_decay);
    s.exp_avg.lerp_(grad, 1 - beta1);
    s.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    const double step = s.step.item<double>();
    const double bias_correction1 = 1 - std::pow(beta1, step);
    const double bias_correction2 = 1 - std::pow(beta2, step);
    const double step_size = lr / bias_correction1;
    const double bias_correction2_sqrt = std::pow(bias_correction2, 0.5);
    const auto denom = (s.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(options_.eps);
    p.addcdiv_(s.exp_avg, denom, -step_size);
  }
}

void AdamW::step_fused() {
  // One _fused_adamw_ call per (device, dtype) group, as PyTorch groups them.
  std::vector<std::pair<std::pair<std::string, torch::Dtype>, std::vector<size_t>>> groups;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i].second;
    if (!p.grad().defined()) continue;
    init_state(i);
    auto& s = state_[i];
    if (s.step.device() != p.device()) s.step = s.step.to(p.device());
    const auto key = std::make_pair(p.device().str(), p.scalar_type());
    auto it =
        std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == key; });
    if (it == groups.end()) {
      groups.push_back({key, {}});
      it = std::prev(groups.end());
    }
    it->second.push_back(i);
  }
  for (const auto& [key, indices] : groups) {
    std::vector<torch::Tensor> ps, grads, exp_avgs, exp_avg_sqs, steps;
    for (const size_t i : indices) {
      ps.push_back(params_[i].second);
      grads.push_back(params_[i].second.grad());
      exp_avgs.push_back(state_[i].exp_avg);
      exp_avg_sqs.push_back(state_[i].exp_avg_sq);
      steps.push_back(state_[i].step);
    }
    // PyTorch increments the steps before the kernel (torch._foreach_add_(state_steps, 1)).
    at::_foreach_add_(steps, 1);
    at::_fused_adamw_(ps, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, options_.lr,
                      options_.beta1, options_.beta2, options_.weight_decay, options_.eps,
                      /*amsgrad=*/false, /*maximize=*/false);
  }
}

std::map<std::string, torch::Tensor> AdamW::state_dict() const {
  std::map<std::string, torch::Tensor> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& s = state_[i];
    if (!s.exp_avg.defined()) continue;
    const auto& name = params_[i].first;
    out[name + ".exp_avg"] = s.exp_avg;
    out[name + ".exp_avg_sq"] = s.exp_avg_sq;
    out[name + ".step"] = s.step;
  }
  out["__lr__"] = torch::tensor(options_.lr, torch::kFloat64);
  return out;
}

void AdamW::load_state_dict(const std::map<std::string, torch::Tensor>& state,
                            const std::string& source) {
  torch::NoGradGuard no_grad;
  size_t used = 0;
  std::vector<ParamState> loaded(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    const auto avg = state.find(name + ".exp_avg");
    const auto sq = state.find(name + ".exp_avg_sq");
    const auto st = state.find(name + ".step");
    const int present = (avg != state.end()) + (sq != state.end()) + (st != state.end());
    if (present == 0) continue;  // this parameter had not taken a step yet
    if (present != 3) fail("{}: incomplete optimizer state for parameter '{}'", source, name);
    for (const auto* e : {&*avg, &*sq}) {
      if (e->second.sizes() != p.sizes()) {
        fail("{}: tensor '{}' has shape {} but the parameter has shape {}", source, e->first,
             shape_str(e->second.sizes()), shape_str(p.sizes()));
      }
    }
    if (st->second.numel() != 1) fail("{}: tensor '{}' must hold one number", source, st->first);
    const auto device = options_.fused ? p.device() : torch::Device(torch::kCPU);
    loaded[i] = {avg->second.to(p.device(), p.scalar_type()).clone(),
                 sq->second.to(p.device(), p.scalar_type()).clone(),
                 st->second.reshape({}).to(device, torch::kFloat32).clone()};
    used += 3;
  }
  if (const auto lr = state.find("__lr__"); lr != state.end()) {
    options_.lr = lr->second.item<double>();
    ++used;
  }
  if (used != state.size()) {
    for (const auto& [key, value] : state) {
      const auto dot = key.rfind('.');
      const std::string param = dot == std::string::npos ? key : key.substr(0, dot);
      const bool known =
          key == "__lr__" || std::any_of(params_.begin(), params_.end(),
                                         [&](const auto& np) { return np.first == param; });
      if (!known) fail("{}: optimizer state for unknown parameter '{}'", source, param);
    }
    fail("{}: unexpected entries in the optimizer state", source);
  }
  state_ = std::move(loaded);
}

int64_t AdamW::step_count() const {
  for (const auto& s : state_) {
    if (s.step.defined()) return static_cast<int64_t>(s.step.item<double>());
  }
  return 0;
}

}  // namespace llmfs
