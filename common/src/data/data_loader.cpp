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

int64_t shard_examples(int64_t dataset_size, const DataLoaderOptions& options) {
  if (!options.shard()) return dataset_size;
  const int64_t w = options.shard()->world_size;
  return (dataset_size + w - 1) / w;  // DistributedSampler.num_samples (drop_last=False)
}

int64_t num_batches(int64_t dataset_size, const DataLoaderOptions& options) {
  const int64_t b = options.batch_size();
  TORCH_CHECK(b >= 1, "batch_size must be at least 1, got ", b);
  const int64_t n = shard_examples(dataset_size, options);
  return options.drop_last() ? n / b : (n + b - 1) / b;
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
  if (const auto& shard = options.shard()) {
    if (shard->world_size < 1 || shard->rank < 0 || shard->rank >= shard->world_size) {
      fail("DataLoader: shard rank {} is outside a world of {}", shard->rank, shard->world_size);
    }
  }
}

}  // namespace detail

// --- IndexPass ---

IndexPass::IndexPass(int64_t dataset_size, const DataLoaderOptions& options,
                     DataLoaderPosition position)
    : dataset_size_(dataset_size), options_(options), position_(std::move(position)) {}

IndexPass IndexPass::start(int64_t dataset_size, const DataLoaderOptions& options,
                           int64_t epoch) {
  detail::check_loader_options(dataset_size, options);
  DataLoaderPosition position;
  position.base_seed = draw_seed();  // _BaseDataLoaderIter.__init__: _base_seed
  if (options.shard()) {
    // DistributedSampler: its own generator, seeded seed + epoch; nothing more from the global one.
    if (options.shuffle()) position.shuffle_seed = options.shard()->seed + epoch;
    position.global_examples = 0;
  }
  IndexPass pass(dataset_size, options, position);
  if (options.shard()) pass.make_order();
  return pass;
}

IndexPass IndexPass::resume(int64_t dataset_size, const DataLoaderOptions& options,
                            const DataLoaderPosition& saved) {
  detail::check_loader_options(dataset_size, options);
  DataLoaderPosition position = saved;
  const auto& shard = options.shard();
  if (shard.has_value() != position.global_examples.has_value()) {
    fail(
        "DataLoader: the saved position is batch {} of a {} pass, which continues only in a {} "
        "run (torchrun with any number of processes shards the data; a plain run does not)",
        position.batches_yielded, shard ? "single-process" : "sharded (torchrun)",
        shard ? "plain single-process" : "torchrun");
  }
  if (shard) {
    // Another world size or batch size: the same place in the epoch's order, if a step ends there.
    const int64_t global_batch = options.batch_size() * shard->world_size;
    const int64_t done = position.global_examples.value_or(0);
    const int64_t padded = shard_examples(dataset_size, options) * shard->world_size;
    if (done >= padded) {
      position.batches_yielded = num_batches(dataset_size, options);
    } else if (done % global_batch != 0) {
      fail(
          "DataLoader: the saved position is example {} of the epoch, which is not a multiple of "
          "batch_size x world size = {} x {}: resume with a global batch that divides it",
          done, options.batch_size(), shard->world_size);
    } else {
      position.batches_yielded = done / global_batch;
    }
    position.global_examples = done;
  }
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
  if (shard || (options.shuffle() && position.shuffle_seed)) pass.make_order();
  return pass;
}

void IndexPass::make_order() {
  const auto& shard = options_.shard();
  if (!shard) {
    // RandomSampler.__iter__ (generator=None), run on the first request for a batch.
    if (!position_.shuffle_seed) position_.shuffle_seed = draw_seed();
    order_ = seeded_permutation(dataset_size_, *position_.shuffle_seed);
    order_ready_ = true;
    return;
  }
  // DistributedSampler.__iter__: the order, padded with its own first entries, every world_size-th.
  std::vector<int64_t> all;
  if (options_.shuffle()) {
    all = seeded_permutation(dataset_size_, *position_.shuffle_seed);
  } else {
    all.resize(static_cast<size_t>(dataset_size_));
    for (int64_t i = 0; i < dataset_size_; ++i) all[static_cast<size_t>(i)] = i;
  }
  const int64_t padded = shard_examples(dataset_size_, options_) * shard->world_size;
  for (int64_t i = dataset_size_; i < padded && dataset_size_ > 0; ++i) {
    all.push_back(all[static_cast<size_t>((i - dataset_size_) % dataset_size_)]);
  }
  order_.clear();
  for (int64_t i = shard->rank; i < padded; i += shard->world_size) {
    order_.push_back(all[static_cast<size_t>(i)]);
  }
  order_ready_ = true;
}

std::vector<int64_t> IndexPass::visit_order() {
  if ((options_.shuffle() || options_.shard()) && !order_ready_) make_order();
  if (options_.shuffle() || options_.shard()) return order_;
  std::vector<int64_t> all(static_cast<size_t>(dataset_size_));
  for (int64_t i = 0; i < dataset_size_; ++i) all[static_cast<size_t>(i)] = i;
  return all;
}

std::optional<std::vector<int64_t>> IndexPass::next() {
  // Python's BatchSampler asks the sampler for its first index even when no full batch follows,
  // so the shuffle draw happens on every first next(), also for a pass with no batches.
  const bool ordered = options_.shuffle() || options_.shard();
  if (ordered && !order_ready_) make_order();
  const int64_t b = options_.batch_size();
  const int64_t n = shard_examples(dataset_size_, options_);
  const int64_t first = position_.batches_yielded * b;
  if (first >= n) return std::nullopt;
  const int64_t count = std::min(b, n - first);
  if (count < b && options_.drop_last()) return std::nullopt;
  std::vector<int64_t> indices(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) {
    indices[static_cast<size_t>(k)] = ordered ? order_[static_cast<size_t>(first + k)] : first + k;
  }
  ++position_.batches_yielded;
  if (options_.shard()) {
    const int64_t padded = n * options_.shard()->world_size;
    position_.global_examples =
        std::min(padded, position_.batches_yielded * b * options_.shard()->world_size);
  }
  return indices;
}

}  // namespace llmfs
