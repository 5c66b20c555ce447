#pragma once

#include <torch/torch.h>

#include "llmfs/ops/kernel_options.h"

namespace llmfs {

/// y plus the output of the layer's LoRA adapter on x when it has one (appendix E's
/// LinearWithLoRA: linear(x) + lora(x)); y unchanged otherwise.
torch::Tensor add_adapter(const torch::nn::LinearImpl& layer, const torch::Tensor& x,
                          torch::Tensor y);

/// Applies a linear layer the way Python's nn.Linear does: ATen's torch::linear, which runs a
/// (B, T, in) input as one fused addmm. LibTorch's LinearImpl::forward instead multiplies and
/// then adds the bias, which rounds differently and records AddBackward0 where PyTorch records
/// ViewBackward0 (book C3-32). Every linear layer of the model goes through here, so a LoRA
/// adapter attached to the layer (ops/lora.h) is added here.
inline torch::Tensor linear(const torch::nn::LinearImpl& layer, const torch::Tensor& x) {
  return add_adapter(layer, x, torch::linear(x, layer.weight, layer.bias));
}

inline torch::Tensor linear(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return linear(*layer, x);
}

/// torch::linear(x, weight, bias), except with kernels.native_kernels (kernel_options.h) for one
/// input row, float32 or bf16 on the CPU, with no gradient to record: the decode step of
/// generation with a KV cache. There a matrix-vector product reads every weight once, so
/// generation is bound by memory traffic; this kernel streams four weight rows at a time,
/// split over the intra-op threads, and reads the weights about 30% faster than the BLAS call
/// ATen makes for it. float32: AVX-512 (or AVX2) FMAs. bf16 (half the bytes per weight): AVX512-BF16
/// dot products (VDPBF16PS) where the CPU has them, else the weights widened to float32 in
/// registers (cpu_features.h); sums in float32, the result rounded to bf16 once. Equal to
/// torch::linear up to float rounding (another summation order). Anything else, or a CPU
/// without AVX2, goes to torch::linear.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     const KernelOptions& kernels);

/// linear(x, weight, bias, kernels), with a float32 result for bf16 weights: the logits of a
/// model prepared for bf16 decoding, summed in float32 and not rounded to bf16 (about 3
/// significant digits, which would make near-ties between tokens coin flips). Other dtypes keep
/// their own.
torch::Tensor linear_float32(const torch::Tensor& x, const torch::Tensor& weight,
                             const torch::Tensor& bias, const KernelOptions& kernels);

inline torch::Tensor linear(const torch::nn::LinearImpl& layer, const torch::Tensor& x,
                            const KernelOptions& kernels) {
  return add_adapter(layer, x, linear(x, layer.weight, layer.bias, kernels));
}

inline torch::Tensor linear(const torch::nn::Linear& layer, const torch::Tensor& x,
                            const KernelOptions& kernels) {
  return linear(*layer, x, kernels);
}

}  // namespace llmfs
