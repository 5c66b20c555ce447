#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace llmfs {

/// Moves every CPU parameter and buffer of a module of at least 64 KiB into memory aligned to
/// 2 MiB and advised for transparent huge pages (Linux madvise(MADV_HUGEPAGE); a no-op
/// elsewhere): tensors of 2 MiB and more one block each, smaller ones packed together (a bf16
/// 768 x 768 matrix is 1.2 MB). Values, names and autograd identity stay the same
/// (Tensor::set_data).
///
/// Why: generating one token with a KV cache reads every weight once (GPT-2 124M: ~500 MB per
/// token), so CPU generation is bound by memory traffic, and with 4 KiB pages a good part of it
/// is TLB misses. Call it once after building or loading a model for CPU inference.
/// Tensors placed before stay where they are, so calling it again is cheap.
/// Returns the number of bytes moved.
int64_t place_on_huge_pages(torch::nn::Module& module);

/// Tells the C allocator (glibc) to serve large blocks from its heap and keep freed memory for
/// reuse, instead of mapping every block above its threshold (32 MiB at most) fresh from the
/// kernel and unmapping it on free. CPU training allocates and frees the same big activations
/// (GPT-2 124M, batch 2 x 256: 100 MB of logits, several times) every step; fresh mappings cost a
/// page fault and a zeroed page per 4 KiB each time, ~15% of a step here. The process keeps its
/// peak memory until exit. Idempotent; a no-op off glibc. Returns whether the setting took.
bool keep_freed_memory_for_reuse();

}  // namespace llmfs
