#pragma once

#include <torch/torch.h>

#include <vector>

namespace llmfs {

/// PyTorch's torch.nn.utils.clip_grad_norm_ with the L2 norm (BOOK.md §11.1), op for op as its
/// CPU path runs it, so the result is bit-identical: the per-tensor norms (_foreach_norm), their
/// L2 norm, clip_coef = max_norm / (total + 1e-6) clamped at 1, every gradient multiplied by it
/// (also when the coefficient is 1). Parameters without a gradient are skipped. Returns the total
/// norm before clipping (0-dim float tensor; 0 when no parameter has a gradient).
///
///   llmfs::clip_grad_norm_(model->parameters(), 1.0);
torch::Tensor clip_grad_norm_(const std::vector<torch::Tensor>& parameters, double max_norm);

/// The global L2 norm of the gradients, computed as clip_grad_norm_ does, without clipping.
torch::Tensor grad_norm(const std::vector<torch::Tensor>& parameters);

/// The largest single gradient element over all parameters (the book's find_highest_gradient,
/// appendix D): 0-dim tensor; undefined when no parameter has a gradient.
torch::Tensor find_highest_gradient(const std::vector<torch::Tensor>& parameters);

}  // namespace llmfs
