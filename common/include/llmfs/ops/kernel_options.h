#pragma once

namespace llmfs {

/// Which kernels the model's layers run: the book's step-by-step arithmetic, or faster kernels
/// that compute the same function up to rounding (GPTConfig::native_kernels, YAML
/// `model.native_kernels`, fills it; GPTConfig::kernels() hands it down to every layer).
///
/// native_kernels switches, all at once:
///  - LayerNorm and GELU to PyTorch's fused kernels (torch::layer_norm, torch::gelu tanh);
///  - the embedding and shortcut dropouts to llmfs's fused_dropout (fused_dropout.h), and, with
///    attention "sdpa", CPU training attention to one GEMM + softmax + fused dropout;
///  - one-token linear layers (generation's decode step) to llmfs's GEMV kernel (linear.h).
/// Eval-mode outputs are equal up to rounding; training draws other dropout masks.
///
///   LayerNorm norm(768, KernelOptions{.native_kernels = true});
struct KernelOptions {
  bool native_kernels = false;

  bool operator==(const KernelOptions&) const = default;
};

}  // namespace llmfs
