#include "llmfs/checkpoint/mapped_tensor.h"

#include <cstring>

namespace llmfs {

torch::Tensor mapped_tensor(const std::shared_ptr<MappedFile>& file, uint64_t offset,
                            c10::IntArrayRef sizes, torch::Dtype dtype) {
  const auto options = torch::TensorOptions().dtype(dtype);
  int64_t numel = 1;
  for (const int64_t d : sizes) numel *= d;
  if (numel == 0) return torch::empty(sizes, options);
  unsigned char* p = file->mutable_data() + offset;
  const auto elsize = static_cast<uintptr_t>(c10::elementSize(dtype));
  if (reinterpret_cast<uintptr_t>(p) % elsize != 0) {
    auto out = torch::empty(sizes, options);
    std::memcpy(out.data_ptr(), p, static_cast<size_t>(numel) * elsize);
    return out;
  }
  return torch::from_blob(
      p, sizes, [file](void*) {}, options);
}

}  // namespace llmfs
