// c10d's NCCL backend for training on several GPUs. Compiled with USE_C10D_NCCL against the CUDA
// and NCCL headers of the torch wheel (common/CMakeLists.txt); the code itself is libtorch_cuda's.
#include "backends.h"

#include "llmfs/core/error.h"

#if LLMFS_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace llmfs::detail {

#if LLMFS_WITH_NCCL

bool nccl_built() { return true; }

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    std::chrono::milliseconds timeout,
                                                    int device_index) {
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(device_index));
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  // Bind the communicator to this rank's GPU up front (eager init), as init_process_group with
  // device_id does: the first collective then finds it ready.
  auto backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
  return backend;
}

#else

bool nccl_built() { return false; }

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>&, int,
                                                    int, std::chrono::milliseconds, int) {
  fail(
      "dist.backend: this build has no NCCL backend (it needs a CUDA build of LibTorch and the "
      "NCCL headers of the torch wheel); use dist.backend=gloo");
}

#endif

}  // namespace llmfs::detail
