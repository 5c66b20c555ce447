#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "llmfs/model/gpt_config.h"

namespace llmfs {

/// Model FLOPs utilization (MFU; PaLM, appendix B, as llm.c and litgpt report it): the floating-
/// point operations the model's arithmetic needs per second, over the device's peak rate.
/// Recomputation, padding and anything else the kernels do besides count nothing.

/// FLOPs of training on one token of a GPT whose sequences have `seq_len` tokens: 6 N for the
/// weight matrices (2 N forward, 4 N backward), N the weights that take part in a matrix product
/// (every block's attention and feed-forward matrices and the output head; the embeddings are
/// lookups), plus 12 L C seq_len for attention's two products QKᵀ and AV, forward and backward
/// (the causal half that a kernel may skip counted too, as PaLM counts it). GPT-2 124M with a
/// context of 256: 6 · 123.5M + 28.3M = 769 MFLOP per token.
double gpt_training_flops_per_token(const GPTConfig& cfg, int64_t seq_len);

/// torch's matrix-multiply rate on `device` in `dtype`, FLOP/s: the fastest of products
/// (512 x 768) @ (768 x 3072) (on CUDA 4096³) repeated for about `seconds`. What the trainer
/// measures MFU against when no peak is configured (train.peak_tflops), and what
/// scripts/bench_train.sh calls the machine's limit.
double measure_matmul_flops(const torch::Device& device, at::ScalarType dtype,
                            double seconds = 0.25);

}  // namespace llmfs
