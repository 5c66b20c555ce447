#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "llmfs/core/mapped_file.h"

namespace llmfs {

/// A CPU tensor over the bytes at `offset` of a mapped file, used in place: no copy, pages read
/// when first touched, writes copy-on-write (MappedFile). The tensor keeps the mapping alive.
/// Bytes not aligned to the element size are copied instead. The caller has checked that the
/// bytes lie inside the file.
torch::Tensor mapped_tensor(const std::shared_ptr<MappedFile>& file, uint64_t offset,
                            c10::IntArrayRef sizes, torch::Dtype dtype);

}  // namespace llmfs
