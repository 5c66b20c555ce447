#include "llmfs/core/huge_pages.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace llmfs {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// A copy of `t` in 2 MiB-aligned memory advised for huge pages, or an undefined tensor when the
// allocation fails (the caller keeps the original).
torch::Tensor huge_page_copy(const torch::Tensor& t) {
  const size_t bytes = (t.nbytes() + kHugePage - 1) / kHugePage * kHugePage;
  void* data = std::aligned_alloc(kHugePage, bytes);
  if (data == nullptr) return {};
#if defined(__linux__)
  ::madvise(data, bytes, MADV_HUGEPAGE);  // before the first touch, so the faults take huge pages
#endif
  auto copy = torch::from_blob(data, t.sizes(), [](void* p) { std::free(p); }, t.options());
  copy.copy_(t);
  return copy;
}

int64_t move(torch::Tensor& t) {
  if (!t.defined() || !t.device().is_cpu() || !t.is_contiguous() ||
      t.nbytes() < kHugePage) {
    return 0;
  }
  auto copy = huge_page_copy(t.detach());
  if (!copy.defined()) return 0;
  t.set_data(copy);
  return static_cast<int64_t>(t.nbytes());
}

}  // namespace

int64_t place_on_huge_pages(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  int64_t moved = 0;
  for (auto& p : module.parameters()) moved += move(p);
  for (auto& b : module.buffers()) moved += move(b);
  spdlog::debug("placed {:.1f} MB of weights on huge pages", static_cast<double>(moved) / 1e6);
  return moved;
}

bool keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  constexpr int kLimit = 1 << 30;  // blocks up to 1 GiB from the heap; keep up to 1 GiB freed
  const bool ok = ::mallopt(M_MMAP_THRESHOLD, kLimit) == 1 && ::mallopt(M_TRIM_THRESHOLD, kLimit) == 1;
  spdlog::debug("allocator: large blocks from the heap, freed memory kept: {}", ok ? "yes" : "no");
  return ok;
#else
  return false;
#endif
}

}  // namespace llmfs
