// The c10d backends, each built in its own file (each needs its own headers: gloo's, NCCL's).
// Private to src/dist.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <string>

namespace llmfs::detail {

/// Whether this build has the NCCL backend (the torch wheel's CUDA and NCCL headers were found).
bool nccl_built();

/// c10d's ProcessGroupNCCL on cuda:device_index. llmfs::Error when the build has no NCCL.
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout,
                                                    int device_index);

}  // namespace llmfs::detail
