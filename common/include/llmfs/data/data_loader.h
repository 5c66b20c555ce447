#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "llmfs/core/error.h"
#include "llmfs/data/dataset.h"

namespace llmfs {

/// This process's share of a loader in multi-process training: PyTorch's DistributedSampler
/// (drop_last=False). Each pass orders the dataset (shuffled loaders: torch.randperm with a
/// generator seeded seed + epoch, the same on every rank; else in order), pads the order by
/// repeating its first entries up to a multiple of world_size, and gives rank r the entries
/// r, r + world_size, ...; the loader then batches them (its drop_last applies to them). So
/// step k of every rank together takes entries k·B·W ... (k+1)·B·W - 1 of the padded order,
/// what one process with batch size B·W takes at its step k.
struct DataShard {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t seed = 0;  // DistributedSampler's seed (its default is 0; llmfs passes train.seed)
};

/// DataLoader arguments, with PyTorch's defaults (batch_size 1, no shuffling, keep the last
/// partial batch). There are no worker processes: the loader behaves as num_workers=0.
///
///   DataLoader loader(dataset, DataLoaderOptions(4).shuffle(true).drop_last(true));
struct DataLoaderOptions {
  DataLoaderOptions() = default;
  explicit DataLoaderOptions(int64_t batch_size) : batch_size_(batch_size) {}

  TORCH_ARG(int64_t, batch_size) = 1;
  TORCH_ARG(bool, shuffle) = false;
  TORCH_ARG(bool, drop_last) = false;
  /// Multi-process training: this rank's share of each pass (DataShard); none: the whole dataset.
  TORCH_ARG(std::optional<DataShard>, shard);
};

/// Examples a pass gives this process: the dataset's size, or a shard's ceil(size / world_size).
int64_t shard_examples(int64_t dataset_size, const DataLoaderOptions& options);

/// Number of batches a pass yields (Python's len(loader)): shard_examples / batch_size with
/// drop_last, rounded up without it.
int64_t num_batches(int64_t dataset_size, const DataLoaderOptions& options);

/// Where a pass over a loader stands: all a checkpoint has to store to continue the pass later
/// with the same order (chapter 5). The epoch number is the training loop's, not the loader's.
///
/// Restoring: put the global CPU generator back to its saved state
/// (at::detail::getDefaultCPUGenerator().get_state() / set_state(), Python's
/// torch.get_rng_state / set_rng_state), then DataLoader::resume(position). resume() draws nothing,
/// because the draws that started this pass were made before the checkpoint and are part of the
/// saved generator state; the continued run therefore consumes the stream exactly as the
/// uninterrupted one.
struct DataLoaderPosition {
  /// The pass's first draw from the global generator (PyTorch's _base_seed; seeds worker
  /// processes in PyTorch, recorded here for parity checks only).
  int64_t base_seed = 0;
  /// Shuffled loaders: the second draw, which seeds the private generator of the permutation;
  /// empty until the first batch is requested (and always for unshuffled loaders).
  std::optional<int64_t> shuffle_seed;
  /// Batches the pass has produced so far = the index of the next batch. A batch counts once
  /// the loop has fetched it, so save the position after the step that used the batch.
  int64_t batches_yielded = 0;
  /// Sharded passes: entries of the epoch's padded order that all ranks together have taken
  /// (batches_yielded · batch_size · world_size). A pass resumed with another world size or
  /// batch size continues from there when the new global batch divides it.
  std::optional<int64_t> global_examples;
};

/// The index side of one pass over a loader (PyTorch's BatchSampler over a Sequential- or
/// RandomSampler): which dataset indices each batch takes, and when the pass consumes the
/// global CPU generator (BOOK.md §13.2):
///   1. start() (Python's iter(loader)) draws one int64, shuffled or not;
///   2. a shuffled pass draws a second int64 on its first next(), seeds a fresh CPU generator
///      with it and takes torch::randperm(dataset_size) from that generator.
/// A pass that stops early has made the same draws as a full one.
class IndexPass {
 public:
  /// Starts a pass, drawing the base seed from the global generator. `epoch` seeds a sharded
  /// pass's order (DistributedSampler.set_epoch); unsharded passes ignore it.
  static IndexPass start(int64_t dataset_size, const DataLoaderOptions& options,
                         int64_t epoch = 0);

  /// Continues a pass at `position` without drawing (a shuffled pass whose shuffle seed had not
  /// been drawn yet draws it on its first next(), as the interrupted pass would have).
  /// llmfs::Error when the position does not fit this dataset size and these options.
  /// A sharded position saved with another world size or batch size is converted through
  /// global_examples; a position of an unsharded pass resumes sharded (or the other way) only at
  /// the start of a pass.
  static IndexPass resume(int64_t dataset_size, const DataLoaderOptions& options,
                          const DataLoaderPosition& position);

  /// The dataset indices of the next batch; nullopt once the pass is over.
  std::optional<std::vector<int64_t>> next();

  const DataLoaderPosition& position() const { return position_; }

  /// Batches of the whole pass (num_batches()).
  int64_t size() const { return num_batches(dataset_size_, options_); }

  /// The dataset indices this process visits in this pass, in order (the shard's share of the
  /// padded order for a sharded pass); computed on demand.
  std::vector<int64_t> visit_order();

 private:
  IndexPass(int64_t dataset_size, const DataLoaderOptions& options, DataLoaderPosition position);
  void make_order();

  int64_t dataset_size_;
  DataLoaderOptions options_;
  DataLoaderPosition position_;
  std::vector<int64_t> order_;  // the shuffled permutation or the shard's entries (else empty)
  bool order_ready_ = false;
};

namespace detail {
/// Checks batch_size >= 1, that a shuffled dataset is not empty (PyTorch's ValueErrors) and that
/// a shard's rank is inside its world.
void check_loader_options(int64_t dataset_size, const DataLoaderOptions& options);
}  // namespace detail

/// PyTorch's DataLoader with num_workers=0, exact to its use of the global random stream
/// (BOOK.md §13.2): every begin() draws one int64 from the global CPU generator, and a shuffled
/// loader draws a second one when the first batch is requested, which seeds its permutation.
/// So a program that seeds, builds modules and iterates loaders in the book's order draws the
/// book's shuffles and dropout masks.
///
///   auto loader = llmfs::DataLoader(dataset, llmfs::DataLoaderOptions(8).shuffle(true));
///   for (const auto& [input_batch, target_batch] : loader) { ... }  // (B, T) each
///
/// ExampleT is what the dataset's get() returns, BatchT what the collate function makes of a
/// batch of them; for Example/Batch the default collate stacks (stack_examples), other types
/// (chapter 7's padded instruction batches) pass their own.
template <typename ExampleT = Example, typename BatchT = Batch>
class DataLoader {
 public:
  using Collate = std::function<BatchT(std::vector<ExampleT>&&)>;

  DataLoader(std::shared_ptr<const Dataset<ExampleT>> dataset, DataLoaderOptions options,
             Collate collate = {});

  /// One pass over the loader. Iterators share their state when copied, like Python iterators;
  /// the current batch lives in that state.
  class Iterator {
   public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = BatchT;
    using difference_type = std::ptrdiff_t;

    Iterator() = default;

    /// The current batch; the first access of a batch fetches it (Python's next()).
    const BatchT& operator*() const;
    const BatchT* operator->() const { return &**this; }

    /// Moves past the current batch (fetching it first if nobody did).
    Iterator& operator++();
    void operator++(int) { ++*this; }

    /// True when the pass is over. Asking fetches the next batch, which is the point where
    /// Python's for loop calls next(): a shuffled pass draws its shuffle seed here.
    friend bool operator==(const Iterator& it, std::default_sentinel_t) { return !it.fetch(); }

    /// Where the pass stands (batches_yielded counts the current batch once it was fetched).
    const DataLoaderPosition& position() const { return state_->pass.position(); }

   private:
    friend class DataLoader;
    struct State {
      std::shared_ptr<const Dataset<ExampleT>> dataset;
      Collate collate;
      IndexPass pass;
      std::optional<BatchT> current;
      bool finished = false;
    };
    explicit Iterator(std::shared_ptr<State> state) : state_(std::move(state)) {}
    bool fetch() const;  // makes `current` hold the next batch; false at the end

    std::shared_ptr<State> state_;
  };

  /// Starts a pass: Python's iter(loader). Draws from the global generator (see the class).
  /// A sharded loader orders the pass by `epoch` (DistributedSampler.set_epoch).
  Iterator begin() const { return start(0); }
  Iterator start(int64_t epoch) const;
  std::default_sentinel_t end() const { return {}; }

  /// Continues a pass saved with Iterator::position(), drawing nothing (DataLoaderPosition).
  Iterator resume(const DataLoaderPosition& position) const;

  /// Batches per pass (Python's len(loader)).
  int64_t size() const { return num_batches(dataset_->size(), options_); }

  /// The same loader with another share of the data (multi-process training).
  DataLoader sharded(std::optional<DataShard> shard) const {
    DataLoader copy = *this;
    copy.options_.shard(shard);
    detail::check_loader_options(dataset_->size(), copy.options_);
    return copy;
  }

  const Dataset<ExampleT>& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }

 private:
  Iterator make_iterator(IndexPass pass) const;

  std::shared_ptr<const Dataset<ExampleT>> dataset_;
  DataLoaderOptions options_;
  Collate collate_;
};

/// Deduces the example type from the dataset and the batch type from the collate function:
///   DataLoader loader(std::make_shared<GPTDatasetV1>(...), DataLoaderOptions(8));
template <typename DatasetT>
DataLoader(std::shared_ptr<DatasetT>, DataLoaderOptions)
    -> DataLoader<typename DatasetT::ExampleType, Batch>;
template <typename DatasetT, typename CollateT>
DataLoader(std::shared_ptr<DatasetT>, DataLoaderOptions, CollateT)
    -> DataLoader<typename DatasetT::ExampleType,
                  std::invoke_result_t<CollateT, std::vector<typename DatasetT::ExampleType>&&>>;

// --- Implementation ---

template <typename ExampleT, typename BatchT>
DataLoader<ExampleT, BatchT>::DataLoader(std::shared_ptr<const Dataset<ExampleT>> dataset,
                                         DataLoaderOptions options, Collate collate)
    : dataset_(std::move(dataset)), options_(options), collate_(std::move(collate)) {
  if (!dataset_) fail("DataLoader: the dataset is null");
  detail::check_loader_options(dataset_->size(), options_);
  if (!collate_) {
    if constexpr (std::is_same_v<ExampleT, Example> && std::is_same_v<BatchT, Batch>) {
      collate_ = stack_examples;
    } else {
      fail("DataLoader: a dataset of this example type needs a collate function");
    }
  }
}

template <typename ExampleT, typename BatchT>
typename DataLoader<ExampleT, BatchT>::Iterator DataLoader<ExampleT, BatchT>::start(
    int64_t epoch) const {
  return make_iterator(IndexPass::start(dataset_->size(), options_, epoch));
}

template <typename ExampleT, typename BatchT>
typename DataLoader<ExampleT, BatchT>::Iterator DataLoader<ExampleT, BatchT>::resume(
    const DataLoaderPosition& position) const {
  return make_iterator(IndexPass::resume(dataset_->size(), options_, position));
}

template <typename ExampleT, typename BatchT>
typename DataLoader<ExampleT, BatchT>::Iterator DataLoader<ExampleT, BatchT>::make_iterator(
    IndexPass pass) const {
  return Iterator(std::make_shared<typename Iterator::State>(
      typename Iterator::State{dataset_, collate_, std::move(pass), std::nullopt, false}));
}

template <typename ExampleT, typename BatchT>
bool DataLoader<ExampleT, BatchT>::Iterator::fetch() const {
  TORCH_CHECK(state_, "DataLoader::Iterator: default-constructed iterator");
  State& s = *state_;
  if (s.current) return true;
  if (s.finished) return false;
  auto indices = s.pass.next();
  if (!indices) {
    s.finished = true;
    return false;
  }
  std::vector<ExampleT> examples;
  examples.reserve(indices->size());
  for (const int64_t i : *indices) examples.push_back(s.dataset->get(i));
  s.current = s.collate(std::move(examples));
  return true;
}

template <typename ExampleT, typename BatchT>
const BatchT& DataLoader<ExampleT, BatchT>::Iterator::operator*() const {
  TORCH_CHECK(fetch(), "DataLoader::Iterator: dereferenced past the last batch");
  return *state_->current;
}

template <typename ExampleT, typename BatchT>
typename DataLoader<ExampleT, BatchT>::Iterator&
DataLoader<ExampleT, BatchT>::Iterator::operator++() {
  if (fetch()) state_->current.reset();
  return *this;
}

}  // namespace llmfs
