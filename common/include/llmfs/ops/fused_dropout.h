#pragma once

#include <torch/torch.h>

namespace llmfs {

/// Dropout in one pass over memory (GPTConfig::native_kernels, the fast training path): in
/// training mode each element is kept with probability 1 - p and scaled by 1 / (1 - p), as
/// torch::dropout does, but the keep decisions come from a counter-based hash (SplitMix64) of
/// the element index and one seed drawn from the global CPU generator per call, so the mask is
/// computed in parallel, never stored (the backward pass recomputes it), and the output written
/// once. Deterministic for a seed; not the book's Bernoulli masks (BOOK.md §13.3), so runs
/// differ from the book-exact path after the first dropout. CPU float32/bfloat16 tensors; other
/// devices and dtypes fall back to torch::dropout.
///
///   x = llmfs::fused_dropout(x, 0.1, is_training());
torch::Tensor fused_dropout(const torch::Tensor& x, double p, bool training);

}  // namespace llmfs
