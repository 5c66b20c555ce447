#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace llmfs {

/// Elements in the module's parameters, each tensor counted once even when registered under
/// two names (as Python's sum(p.numel() for p in model.parameters())).
int64_t count_parameters(const torch::nn::Module& module);

/// Elements in the parameters that require gradients (each tensor once).
int64_t count_trainable_parameters(const torch::nn::Module& module);

/// Size in MB (1024 * 1024 bytes) of `parameters` values of `bytes_per_parameter` bytes each,
/// as the book computes it (§4.6): 163,009,536 float32 parameters -> 621.83 MB.
double parameter_megabytes(int64_t parameters, int64_t bytes_per_parameter);

}  // namespace llmfs
