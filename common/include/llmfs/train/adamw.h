#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace llmfs {

/// AdamW settings: PyTorch's torch.optim.AdamW arguments and defaults. The book passes lr 4e-4
/// and weight_decay 0.1 (chapter 5).
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  /// One fused kernel per step over all parameters (aten::_fused_adamw_, PyTorch's fused=True;
  /// CPU and CUDA). Same update up to rounding; not bit-identical to the default path.
  bool fused = false;
};

/// A named parameter: the optimizer state is keyed by these names in checkpoints.
using NamedParameters = std::vector<std::pair<std::string, torch::Tensor>>;

/// The book's optimizer (torch.optim.AdamW, one parameter group, decoupled weight decay on every
/// parameter including biases and norm scales). The default path performs the operations of
/// PyTorch's single-tensor implementation in its order (the one PyTorch runs for CPU tensors:
/// decay by 1 − lr·wd, lerp of the first moment, the second moment, bias corrections in float64,
/// addcdiv), so a C++ run and a Python run with the same gradients stay bit-identical.
///
///   llmfs::AdamW optimizer(model->named_parameters(), {.lr = 4e-4, .weight_decay = 0.1});
///   optimizer.zero_grad(); loss.backward(); optimizer.step();
///
/// Parameters that do not require gradients are left out (frozen layers, LoRA's base weights);
/// parameters without a gradient at step() are skipped, as in PyTorch.
class AdamW {
 public:
  AdamW(const NamedParameters& parameters, AdamWOptions options);
  AdamW(const torch::OrderedDict<std::string, torch::Tensor>& parameters, AdamWOptions options);

  /// Drops every gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  /// One update of every parameter that has a gradient.
  void step();

  /// The learning rate of the next step (the schedule writes it before each step).
  void set_lr(double lr) { options_.lr = lr; }
  double lr() const { return options_.lr; }
  const AdamWOptions& options() const { return options_; }

  /// The parameters being optimized, in order.
  const NamedParameters& parameters() const { return params_; }
  std::vector<torch::Tensor> parameter_tensors() const;

  /// The optimizer state as named tensors, for checkpoints: "<param>.exp_avg",
  /// "<param>.exp_avg_sq", "<param>.step" (float32 0-dim, as PyTorch keeps it), for the
  /// parameters that have taken a step; plus "__lr__" (float64 0-dim).
  std::map<std::string, torch::Tensor> state_dict() const;

  /// Restores state_dict(). llmfs::Error naming `source` and the tensor for a missing, unknown or
  /// mis-shaped entry (a checkpoint of another model).
  void load_state_dict(const std::map<std::string, torch::Tensor>& state,
                       const std::string& source);

  /// Steps taken by the first parameter (0 before the first step).
  int64_t step_count() const;

 private:
  struct ParamState {
    torch::Tensor exp_avg, exp_avg_sq, step;  // step: float32 0-dim
  };
  void step_single();
  void step_fused();
  void init_state(size_t i);

  NamedParameters params_;
  AdamWOptions options_;
  std::vector<ParamState> state_;  // same order as params_; undefined tensors before the first step
};

}  // namespace llmfs
