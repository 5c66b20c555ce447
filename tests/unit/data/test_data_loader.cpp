// DataLoader: batching, and the random-stream rule of BOOK.md §13.2 checked against the same
// draws made by hand (the golden test checks it against PyTorch itself).
#include <algorithm>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <vector>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/data/data_loader.h"
#include "tensor_compare.h"

namespace {

// Example i is (input [i, i], target i): batches show which indices they hold.
class IndexDataset : public llmfs::Dataset<llmfs::Example> {
 public:
  explicit IndexDataset(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  llmfs::Example get(int64_t index) const override {
    return {torch::full({2}, index, torch::kInt64), torch::tensor(index)};
  }

 private:
  int64_t n_;
};

using Order = std::vector<std::vector<int64_t>>;

static_assert(std::input_iterator<llmfs::DataLoader<>::Iterator>);
static_assert(std::ranges::input_range<const llmfs::DataLoader<>>);

llmfs::DataLoader<> index_loader(int64_t n, int64_t batch_size, bool shuffle, bool drop_last) {
  return llmfs::DataLoader<>(
      std::make_shared<IndexDataset>(n),
      llmfs::DataLoaderOptions(batch_size).shuffle(shuffle).drop_last(drop_last));
}

// One pass, the indices of each batch; stops after max_batches batches when given.
Order run_pass(const llmfs::DataLoader<>& loader, std::optional<int64_t> max_batches = {}) {
  Order order;
  for (const auto& [input, target] : loader) {
    if (max_batches && static_cast<int64_t>(order.size()) == *max_batches) break;
    order.push_back(llmfs::test::to_vector(target));
  }
  return order;
}

// The same pass made by hand with the calls PyTorch makes.
int64_t draw() { return torch::empty({}, torch::kInt64).random_().item<int64_t>(); }

std::vector<int64_t> permutation(int64_t n, int64_t seed) {
  auto generator = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  return llmfs::test::to_vector(torch::randperm(n, generator, torch::kInt64));
}

Order batches_of(const std::vector<int64_t>& order, int64_t batch_size, bool drop_last) {
  Order batches;
  for (size_t i = 0; i < order.size(); i += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(order.size(), i + static_cast<size_t>(batch_size));
    if (drop_last && end - i < static_cast<size_t>(batch_size)) break;
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                         order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return batches;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

// Python's torch.get_rng_state() / torch.set_rng_state().
torch::Tensor save_rng() { return at::detail::getDefaultCPUGenerator().get_state(); }
void restore_rng(const torch::Tensor& state) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle to the global one
  generator.set_state(state);
}

bool same_values(const torch::Tensor& a, const torch::Tensor& b) { return torch::equal(a, b); }

}  // namespace

TEST_CASE("DataLoader::size is len(loader): rounded up, or down with drop_last", "[unit][data]") {
  CHECK(index_loader(10, 3, false, false).size() == 4);
  CHECK(index_loader(10, 3, false, true).size() == 3);
  CHECK(index_loader(9, 3, true, false).size() == 3);
  CHECK(index_loader(9, 3, true, true).size() == 3);
  CHECK(index_loader(2, 5, false, true).size() == 0);
  CHECK(index_loader(0, 5, false, false).size() == 0);
}

TEST_CASE("DataLoader without shuffling stacks consecutive examples into (B, T) batches",
          "[unit][data]") {
  torch::manual_seed(1);
  const auto loader = index_loader(7, 3, false, false);
  int64_t count = 0;
  for (const auto& batch : loader) {
    CHECK(batch.input.dim() == 2);
    CHECK(batch.input.scalar_type() == torch::kInt64);
    CHECK(batch.input.size(1) == 2);
    CHECK(batch.input.size(0) == (count < 2 ? 3 : 1));
    CHECK(batch.target.sizes() == torch::IntArrayRef{batch.input.size(0)});
    ++count;
  }
  CHECK(count == 3);
  CHECK(run_pass(loader) == Order{{0, 1, 2}, {3, 4, 5}, {6}});
  CHECK(run_pass(index_loader(7, 3, false, true)) == Order{{0, 1, 2}, {3, 4, 5}});
}

TEST_CASE("An unshuffled pass draws exactly one int64 from the global generator", "[unit][data]") {
  const auto loader = index_loader(7, 2, false, false);
  for (const std::optional<int64_t> stop :
       {std::optional<int64_t>{}, std::optional<int64_t>{1}, std::optional<int64_t>{0}}) {
    torch::manual_seed(123);
    run_pass(loader, stop);
    run_pass(loader, stop);
    const auto actual = torch::rand({3});

    torch::manual_seed(123);
    draw();
    draw();
    const auto expected = torch::rand({3});
    INFO("stop after " << (stop ? std::to_string(*stop) : "none"));
    CHECK(same_values(actual, expected));
  }
}

TEST_CASE("A shuffled pass draws a base seed, then the permutation seed, full or stopped early",
          "[unit][data]") {
  for (const bool drop_last : {false, true}) {
    const auto loader = index_loader(11, 3, true, drop_last);
    for (const std::optional<int64_t> stop :
         {std::optional<int64_t>{}, std::optional<int64_t>{1}}) {
      torch::manual_seed(123);
      const Order first = run_pass(loader, stop);
      const Order second = run_pass(loader, stop);
      const auto actual = torch::rand({3});

      torch::manual_seed(123);
      draw();
      auto expected_first = batches_of(permutation(11, draw()), 3, drop_last);
      draw();
      auto expected_second = batches_of(permutation(11, draw()), 3, drop_last);
      const auto expected = torch::rand({3});
      if (stop) {
        expected_first.resize(1);
        expected_second.resize(1);
      }
      INFO("drop_last " << drop_last << ", stop after " << (stop ? *stop : -1));
      CHECK(first == expected_first);
      CHECK(second == expected_second);
      CHECK(first != second);
      CHECK(same_values(actual, expected));
    }
  }
}

TEST_CASE(
    "begin() draws the base seed, a shuffled pass draws its permutation seed on the first "
    "batch request, as iter() and next() do",
    "[unit][data]") {
  const auto loader = index_loader(6, 4, true, false);
  torch::manual_seed(7);
  auto it = loader.begin();
  const auto between = torch::rand({2});  // drawn between iter(loader) and next()
  const Order first{llmfs::test::to_vector(it->target)};
  const auto after = torch::rand({2});

  torch::manual_seed(7);
  const int64_t base = draw();
  const auto expected_between = torch::rand({2});
  const auto perm = permutation(6, draw());
  CHECK(same_values(between, expected_between));
  CHECK(first == Order{{perm[0], perm[1], perm[2], perm[3]}});
  CHECK(same_values(after, torch::rand({2})));
  CHECK(it.position().base_seed == base);

  // An iterator that never asks for a batch has made only the first draw.
  torch::manual_seed(7);
  { auto unused = loader.begin(); }
  const auto only_iter = torch::rand({2});
  torch::manual_seed(7);
  draw();
  CHECK(same_values(only_iter, torch::rand({2})));
}

TEST_CASE("A shuffled pass with no full batch still draws both seeds", "[unit][data]") {
  const auto loader = index_loader(3, 4, true, true);
  CHECK(loader.size() == 0);
  torch::manual_seed(5);
  CHECK(run_pass(loader).empty());
  const auto actual = torch::rand({2});
  torch::manual_seed(5);
  draw();
  draw();
  CHECK(same_values(actual, torch::rand({2})));
}

TEST_CASE("Resuming a pass at a saved position yields the remaining batches and draws nothing",
          "[unit][data]") {
  for (const bool shuffle : {false, true}) {
    const auto loader = index_loader(10, 3, shuffle, false);
    for (int64_t k = 0; k <= loader.size(); ++k) {
      // Uninterrupted: a training loop that saves the position after its k-th step.
      torch::manual_seed(123);
      Order head, tail;
      std::optional<llmfs::DataLoaderPosition> saved;
      torch::Tensor rng_state;
      auto it = loader.begin();
      const auto save = [&] {
        saved = it.position();
        rng_state = save_rng();
      };
      if (k == 0) save();
      for (; it != loader.end(); ++it) {
        (saved ? tail : head).push_back(llmfs::test::to_vector(it->target));
        torch::rand({1});  // stands for a training step's dropout draws
        if (!saved && static_cast<int64_t>(head.size()) == k) save();
      }
      const auto marker = torch::rand({3});

      // Restored: another program state, then the saved generator state and position.
      torch::manual_seed(999);
      restore_rng(rng_state);
      Order resumed;
      for (auto r = loader.resume(*saved); r != loader.end(); ++r) {
        resumed.push_back(llmfs::test::to_vector(r->target));
        torch::rand({1});
      }
      INFO("shuffle " << shuffle << ", resumed after " << k << " batches");
      CHECK(static_cast<int64_t>(head.size()) == k);
      CHECK(resumed == tail);
      CHECK(same_values(torch::rand({3}), marker));
      CHECK(saved->shuffle_seed.has_value() == (shuffle && k > 0));
    }
  }
}

TEST_CASE("A position saved right after begin() resumes with the shuffle draw still to come",
          "[unit][data]") {
  const auto loader = index_loader(8, 3, true, false);
  torch::manual_seed(42);
  auto it = loader.begin();
  const auto saved = it.position();
  const auto rng_state = save_rng();
  const Order expected = [&] {
    Order o;
    for (; it != loader.end(); ++it) o.push_back(llmfs::test::to_vector(it->target));
    return o;
  }();
  const auto marker = torch::rand({2});

  restore_rng(rng_state);
  Order resumed;
  for (auto r = loader.resume(saved); r != loader.end(); ++r) {
    resumed.push_back(llmfs::test::to_vector(r->target));
  }
  CHECK(resumed == expected);
  CHECK(same_values(torch::rand({2}), marker));
}

TEST_CASE("DataLoader::resume rejects positions that do not fit the loader", "[unit][data]") {
  const auto plain = index_loader(10, 3, false, false);
  const auto shuffled = index_loader(10, 3, true, false);
  llmfs::DataLoaderPosition position;
  position.batches_yielded = 5;
  REQUIRE_THROWS_WITH(plain.resume(position),
                      llmfs::test::contains_text("cannot resume at batch 5: a pass has 4 batches"));
  position.batches_yielded = 1;
  position.shuffle_seed = 17;
  REQUIRE_THROWS_WITH(plain.resume(position),
                      llmfs::test::contains_text("the loader does not shuffle"));
  position.shuffle_seed.reset();
  REQUIRE_THROWS_WITH(shuffled.resume(position), llmfs::test::contains_text("no shuffle seed"));
  position.shuffle_seed = 17;
  const auto it = shuffled.resume(position);
  const auto rest = batches_of(permutation(10, 17), 3, false);
  CHECK(llmfs::test::to_vector(it->target) == rest[1]);
}

TEST_CASE("DataLoader rejects a bad batch size, a null dataset and shuffling nothing",
          "[unit][data]") {
  REQUIRE_THROWS_WITH(index_loader(10, 0, false, false),
                      llmfs::test::contains_text("batch_size must be at least 1, got 0"));
  REQUIRE_THROWS_WITH(index_loader(0, 2, true, false),
                      llmfs::test::contains_text("cannot shuffle an empty dataset"));
  REQUIRE_THROWS_WITH(llmfs::DataLoader<>(nullptr, llmfs::DataLoaderOptions(2)),
                      llmfs::test::contains_text("dataset is null"));
  CHECK(run_pass(index_loader(0, 2, false, false)).empty());
}

TEST_CASE("Iterators share their pass, and dereferencing twice does not advance", "[unit][data]") {
  torch::manual_seed(3);
  const auto loader = index_loader(5, 2, false, false);
  auto it = loader.begin();
  auto copy = it;
  CHECK(llmfs::test::to_vector((*it).target) == std::vector<int64_t>{0, 1});
  CHECK(llmfs::test::to_vector(it->target) == std::vector<int64_t>{0, 1});
  ++copy;
  CHECK(llmfs::test::to_vector(it->target) == std::vector<int64_t>{2, 3});
  CHECK(it.position().batches_yielded == 2);
  ++it;
  ++it;
  CHECK(it == loader.end());
  REQUIRE_THROWS_WITH(*it, llmfs::test::contains_text("past the last batch"));
}

namespace {

// A chapter-7-style dataset: variable-length token lists, padded per batch by the collate.
class RaggedDataset : public llmfs::Dataset<std::vector<int64_t>> {
 public:
  int64_t size() const override { return 4; }
  std::vector<int64_t> get(int64_t index) const override { return iota(index + 1); }
};

struct Padded {
  torch::Tensor ids;  // (B, longest)
  std::vector<int64_t> lengths;
};

Padded pad_collate(std::vector<std::vector<int64_t>>&& examples) {
  size_t longest = 0;
  for (const auto& e : examples) longest = std::max(longest, e.size());
  Padded out{torch::full({static_cast<int64_t>(examples.size()), static_cast<int64_t>(longest)},
                         50256, torch::kInt64),
             {}};
  for (size_t b = 0; b < examples.size(); ++b) {
    out.lengths.push_back(static_cast<int64_t>(examples[b].size()));
    out.ids[static_cast<int64_t>(b)]
        .narrow(0, 0, out.lengths.back())
        .copy_(torch::tensor(examples[b], torch::kInt64));
  }
  return out;
}

}  // namespace

TEST_CASE("DataLoader takes any example type with a custom collate function", "[unit][data]") {
  torch::manual_seed(123);
  llmfs::DataLoader loader(std::make_shared<RaggedDataset>(), llmfs::DataLoaderOptions(3),
                           pad_collate);
  static_assert(std::is_same_v<decltype(loader), llmfs::DataLoader<std::vector<int64_t>, Padded>>);
  std::vector<std::vector<int64_t>> lengths;
  for (const auto& batch : loader) lengths.push_back(batch.lengths);
  CHECK(lengths == std::vector<std::vector<int64_t>>{{1, 2, 3}, {4}});
  const auto first = *loader.begin();
  CHECK(llmfs::test::to_vector(first.ids[0]) == std::vector<int64_t>{0, 50256, 50256});

  using Ragged = llmfs::DataLoader<std::vector<int64_t>, Padded>;
  REQUIRE_THROWS_WITH(Ragged(std::make_shared<RaggedDataset>(), llmfs::DataLoaderOptions(3)),
                      llmfs::test::contains_text("needs a collate function"));
}
