// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_ computes it.
#include "llmfs/train/grad_clip.h"

#include <map>
#include <utility>

namespace llmfs {

namespace {

// The gradients grouped by (device, dtype) in order of first appearance, as PyTorch's
// _group_tensors_by_device_and_dtype does: the foreach kernels take one group at a time.
std::vector<std::vector<torch::Tensor>> grouped_grads(const std::vector<torch::Tensor>& params) {
  std::vector<std::pair<std::pair<std::string, torch::Dtype>, std::vector<torch::Tensor>>> groups;
  for (const auto& p : params) {
    const auto& g = p.grad();
    if (!g.defined()) continue;
    const auto key = std::make_pair(g.device().str(), g.scalar_type());
    auto it =
        std::find_if(groups.begin(), groups.end(), [&](const auto& e) { return e.first == key; });
    if (it == groups.end()) {
      groups.push_back({key, {}});
      it = std::prev(groups.end());
    }
    it->second.push_back(g);
  }
  std::vector<std::vector<torch::Tensor>> out;
  out.reserve(groups.size());
  for (auto& [key, grads] : groups) out.push_back(std::move(grads));
  return out;
}

torch::Tensor total_norm_of(const std::vector<std::vector<torch::Tensor>>& groups) {
  std::vector<torch::Tensor> norms;
  torch::Device first_device = groups.front().front().device();
  for (const auto& grads : groups) {
    for (auto& n : at::_foreach_norm(grads, 2)) norms.push_back(n.to(first_device));
  }
  return torch::linalg_vector_norm(torch::stack(norms), 2, c10::nullopt, false, c10::nullopt);
}

}  // namespace

torch::Tensor grad_norm(const std::vector<torch::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  const auto groups = grouped_grads(parameters);
  if (groups.empty()) return torch::zeros({});
  return total_norm_of(groups);
}

torch::Tensor clip_grad_norm_(const std::vector<torch::Tensor>& parameters, double max_norm) {
  torch::NoGradGuard no_grad;
  auto groups = grouped_grads(parameters);
  if (groups.empty()) return torch::zeros({});
  const auto total = total_norm_of(groups);
  // Python's `max_norm / tensor` is tensor.reciprocal() * max_norm (Tensor.__rtruediv__).
  const auto clip_coef = (total + 1e-6).reciprocal() * max_norm;
  const auto clip_coef_clamped = torch::clamp(clip_coef, c10::nullopt, 1.0);
  for (auto& grads : groups) {
    at::_foreach_mul_(grads, clip_coef_clamped.to(grads.front().device()));
  }
  return total;
}

torch::Tensor find_highest_gradient(const std::vector<torch::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  torch::Tensor best;
  for (const auto& p : parameters) {
    if (!p.grad().defined()) continue;
    const auto m = p.grad().max();
    if (!best.defined() || m.item<double>() > best.item<double>()) best = m;
  }
  return best;
}

}  // namespace llmfs
