// DataLoader's random-stream rule (BOOK.md §13.2): the index side of a pass, exactly as PyTorch's
// _SingleProcessDataLoaderIter, BatchSampler, SequentialSampler and RandomSampler consume the
// global CPU generator.
#include "llmfs/data/data_loader.h"

#include <algorithm>
#include <utility>

namespace llmfs {

namespace {

// torch.empty((), dtype=torch.int64).random_().item(): one draw from the global CPU generator.
int64_t draw_seed() { return torch::empty({}, torch::kInt64).random_().item<int64_t>(); }

// torch.randperm(n, generator=g) with g = torch.Generator(); g.manual_seed(seed).
std::vector<int64_t> seeded_permutation(int64_t n, int64_t seed) {
  auto generator = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  const auto perm = torch::randperm(n, generator, torch::kInt64).contiguous();
  const int64_t* p = perm.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + n);
}

}  // namespace

int64_t num_batches(int64_t dataset_size, const DataLoaderOptions& options) {
  const int64_t b = options.batch_size();
  TORCH_CHECK(b >= 1, "batch_size must be at least 1, got ", b);
  return options.drop_last() ? dataset_size / b : (dataset_size + b - 1) / b;
}

namespace detail {

void check_loader_options(int64_t dataset_size, const DataLoaderOptions& options) {
  if (options.batch_size() < 1) {
    fail("DataLoader: batch_size must be at least 1, got {}", options.batch_size());
  }
  if (dataset_size < 0) fail("DataLoader: the dataset reports a negative size ({})", dataset_size);
  if (options.shuffle() && dataset_size == 0) {
    fail("DataLoader: cannot shuffle an empty dataset (PyTorch's RandomSampler refuses it too)");
  }
}

}  // namespace detail

// --- IndexPass ---

IndexPass::IndexPass(int64_t dataset_size, const DataLoaderOptions& options,
                     DataLoaderPosition position)
    : dataset_size_(dataset_size), options_(options), position_(std::move(position)) {}

IndexPass IndexPass::start(int64_t dataset_size, const DataLoaderOptions& options) {
  detail::check_loader_options(dataset_size, options);
  DataLoaderPosition position;
  position.base_seed = draw_seed();  // _BaseDataLoaderIter.__init__: _base_seed
  return IndexPass(dataset_size, options, position);
}

IndexPass IndexPass::resume(int64_t dataset_size, const DataLoaderOptions& options,
                            const DataLoaderPosition& position) {
  detail::check_loader_options(dataset_size, options);
  const int64_t total = num_batches(dataset_size, options);
  if (position.batches_yielded < 0 || position.batches_yielded > total) {
    fail("DataLoader: cannot resume at batch {}: a pass has {} batches", position.batches_yielded,
         total);
  }
  if (!options.shuffle() && position.shuffle_seed) {
    fail("DataLoader: the saved position has a shuffle seed but the loader does not shuffle");
  }
  if (options.shuffle() && !position.shuffle_seed && position.batches_yielded > 0) {
    fail("DataLoader: the saved position of a shuffled loader has no shuffle seed after {} batches",
         position.batches_yielded);
  }
  IndexPass pass(dataset_size, options, position);
  if (options.shuffle() && position.shuffle_seed) pass.make_order();
  return pass;
}

void IndexPass::make_order() {
  // RandomSampler.__iter__ (generator=None), run on the first request for a batch.
  if (!position_.shuffle_seed) position_.shuffle_seed = draw_seed();
  order_ = seeded_permutation(dataset_size_, *position_.shuffle_seed);
  order_ready_ = true;
}

std::optional<std::vector<int64_t>> IndexPass::next() {
  // Python's BatchSampler asks the sampler for its first index even when no full batch follows,
  // so the shuffle draw happens on every first next(), also for a pass with no batches.
  if (options_.shuffle() && !order_ready_) make_order();
  const int64_t b = options_.batch_size();
  const int64_t first = position_.batches_yielded * b;
  if (first >= dataset_size_) return std::nullopt;
  const int64_t count = std::min(b, dataset_size_ - first);
  if (count < b && options_.drop_last()) return std::nullopt;
  std::vector<int64_t> indices(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) {
    indices[static_cast<size_t>(k)] =
        options_.shuffle() ? order_[static_cast<size_t>(first + k)] : first + k;
  }
  ++position_.batches_yielded;
  return indices;
}

}  // namespace llmfs
