#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "llmfs/data/data_loader.h"

namespace llmfs {

/// A loader as the trainer sees it, whatever its example type: how many batches a pass has,
/// starting a pass (drawing from the global generator exactly as DataLoader::begin does) and
/// continuing a saved one. Make one from a DataLoader with batch_source(loader).
template <typename BatchT>
class BatchSource {
 public:
  /// One pass over the loader.
  class Pass {
   public:
    virtual ~Pass() = default;
    /// The next batch, or nullptr at the end of the pass (Python's next()). The pointer is valid
    /// until the next call.
    virtual const BatchT* next() = 0;
    /// Where the pass stands (batches handed out so far).
    virtual DataLoaderPosition position() const = 0;
  };

  virtual ~BatchSource() = default;
  /// Batches per pass (Python's len(loader)).
  virtual int64_t size() const = 0;
  /// A new pass: Python's iter(loader). `epoch` (0-based) orders a sharded loader's pass.
  virtual std::unique_ptr<Pass> start(int64_t epoch = 0) const = 0;
  /// Continues a pass saved with Pass::position(), drawing nothing.
  virtual std::unique_ptr<Pass> resume(const DataLoaderPosition& position) const = 0;
};

namespace detail {

template <typename ExampleT, typename BatchT>
class DataLoaderSource final : public BatchSource<BatchT> {
 public:
  explicit DataLoaderSource(DataLoader<ExampleT, BatchT> loader) : loader_(std::move(loader)) {}

  class LoaderPass final : public BatchSource<BatchT>::Pass {
   public:
    explicit LoaderPass(typename DataLoader<ExampleT, BatchT>::Iterator it) : it_(std::move(it)) {}
    const BatchT* next() override {
      if (started_) ++it_;  // drop the batch handed out last
      started_ = true;
      if (it_ == std::default_sentinel) return nullptr;
      return &*it_;
    }
    DataLoaderPosition position() const override { return it_.position(); }

   private:
    typename DataLoader<ExampleT, BatchT>::Iterator it_;
    bool started_ = false;
  };

  int64_t size() const override { return loader_.size(); }
  std::unique_ptr<typename BatchSource<BatchT>::Pass> start(int64_t epoch = 0) const override {
    return std::make_unique<LoaderPass>(loader_.start(epoch));
  }
  std::unique_ptr<typename BatchSource<BatchT>::Pass> resume(
      const DataLoaderPosition& position) const override {
    return std::make_unique<LoaderPass>(loader_.resume(position));
  }

 private:
  DataLoader<ExampleT, BatchT> loader_;
};

}  // namespace detail

/// The trainer's view of a DataLoader (the loader is copied; copies share the dataset).
template <typename ExampleT, typename BatchT>
std::shared_ptr<const BatchSource<BatchT>> batch_source(
    const DataLoader<ExampleT, BatchT>& loader) {
  return std::make_shared<detail::DataLoaderSource<ExampleT, BatchT>>(loader);
}

}  // namespace llmfs
