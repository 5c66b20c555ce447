#include "llmfs/core/huge_pages.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace llmfs {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kAlign = 64;  // each tensor on its own cache lines
constexpr size_t kMinBytes = size_t{64} << 10;  // smaller ones (biases, norms) stay put

// One 2 MiB-aligned block advised for huge pages, freed when the last tensor in it goes: each
// tensor placed in it holds a reference (the DataPtr context).
struct Arena {
  void* data = nullptr;
  std::atomic<int64_t> users{0};
};

void release(void* context) {
  auto* arena = static_cast<Arena*>(context);
  if (arena->users.fetch_sub(1) == 1) {
    std::free(arena->data);
    delete arena;
  }
}

// Whether `t` already lives in an arena of ours (placed before).
bool placed(const torch::Tensor& t) {
  return t.storage().data_ptr().get_deleter() == &release;
}

size_t padded(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// Copies `tensors` into one arena, one after another (each 64-byte aligned); false when the
// allocation fails (they stay where they are).
bool move_into_arena(const std::vector<torch::Tensor*>& tensors) {
  size_t bytes = 0;
  for (const auto* t : tensors) bytes += padded(t->nbytes());
  if (bytes == 0) return true;
  bytes = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  auto* arena = new Arena;
  arena->data = std::aligned_alloc(kHugePage, bytes);
  if (arena->data == nullptr) {
    delete arena;
    return false;
  }
#if defined(__linux__)
  ::madvise(arena->data, bytes, MADV_HUGEPAGE);  // before the first touch: faults take huge pages
#endif
  arena->users = static_cast<int64_t>(tensors.size());
  auto* cursor = static_cast<char*>(arena->data);
  for (auto* t : tensors) {
    const size_t n = t->nbytes();
    c10::DataPtr ptr(cursor, arena, &release, t->device());
    c10::Storage storage(c10::Storage::use_byte_size_t(), n, std::move(ptr), nullptr, false);
    auto copy = torch::empty({0}, t->options()).set_(storage, 0, t->sizes(), t->strides());
    copy.copy_(t->detach());
    t->set_data(copy);
    cursor += padded(n);
  }
  return true;
}

bool movable(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.is_contiguous() && t.nbytes() > 0 && !placed(t);
}

}  // namespace

int64_t place_on_huge_pages(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  // Big tensors get an arena each; the small ones share arenas (a bf16 768 x 768 matrix is
  // 1.2 MB: on 4 KiB pages its reads miss the TLB as much as the big ones' would).
  std::vector<torch::Tensor> all;
  for (auto& p : module.parameters()) all.push_back(p);
  for (auto& b : module.buffers()) all.push_back(b);
  std::vector<torch::Tensor*> small;
  int64_t moved = 0;
  size_t small_bytes = 0;
  const auto flush_small = [&] {
    if (move_into_arena(small)) {
      for (const auto* t : small) moved += static_cast<int64_t>(t->nbytes());
    }
    small.clear();
    small_bytes = 0;
  };
  for (auto& t : all) {
    if (!movable(t) || t.nbytes() < kMinBytes) continue;
    if (t.nbytes() >= kHugePage) {
      if (move_into_arena({&t})) moved += static_cast<int64_t>(t.nbytes());
      continue;
    }
    small.push_back(&t);
    small_bytes += padded(t.nbytes());
    if (small_bytes >= 8 * kHugePage) flush_small();  // arenas of ~16 MiB
  }
  flush_small();
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
