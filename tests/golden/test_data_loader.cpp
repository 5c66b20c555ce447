// DataLoader and GPTDatasetV1 against live PyTorch (tests/reference/fixtures_data.py: scripts of
// loader passes and random draws replayed here, the-verdict's tiktoken ids) and against the
// book's printed values (BOOK.md §3.3 C2-25…C2-27, §10.2 CA-08/CA-09, §3.2 sample counts).
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "catch.h"
#include "llmfs/core/file_io.h"
#include "llmfs/data/data_loader.h"
#include "llmfs/data/gpt_dataset.h"
#include "llmfs_test_paths.h"
#include "run_python.h"
#include "tensor_compare.h"

namespace {

using json = nlohmann::json;
using Order = std::vector<std::vector<int64_t>>;

json fixture(const std::string& name) {
  return json::parse(llmfs::read_file(std::string(llmfs::test::kFixturesDir) + "/data/" + name));
}

// Example i is (i, i), as the Python script's IndexDataset.
class IndexDataset : public llmfs::Dataset<llmfs::Example> {
 public:
  explicit IndexDataset(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  llmfs::Example get(int64_t index) const override {
    return {torch::tensor(index), torch::tensor(index)};
  }

 private:
  int64_t n_;
};

std::vector<float> rand_values(int64_t n) {
  const auto t = torch::rand({n});
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + n);
}

template <typename LoaderT>
std::vector<llmfs::Batch> all_batches(const LoaderT& loader) {
  std::vector<llmfs::Batch> out;
  for (const auto& batch : loader) out.push_back(batch);
  return out;
}

std::vector<float> as_floats(const json& values) {
  std::vector<float> out;
  for (const auto& v : values) out.push_back(static_cast<float>(v.get<double>()));
  return out;
}

// Replays one script of fixtures_data.py and checks every observation Python recorded.
void replay(const std::string& name, const json& steps) {
  std::map<std::string, llmfs::DataLoader<>> loaders;
  int step_number = 0;
  for (const auto& step : steps) {
    const std::string op = step.at("op");
    INFO(name << " step " << step_number++ << ": " << step.dump().substr(0, 200));
    if (op == "seed") {
      torch::manual_seed(step.at("value").get<uint64_t>());
    } else if (op == "loader") {
      const auto options = llmfs::DataLoaderOptions(step.at("batch_size").get<int64_t>())
                               .shuffle(step.at("shuffle").get<bool>())
                               .drop_last(step.at("drop_last").get<bool>());
      llmfs::DataLoader<> loader(std::make_shared<IndexDataset>(step.at("n").get<int64_t>()),
                                 options);
      CHECK(loader.size() == step.at("len").get<int64_t>());
      loaders.insert_or_assign(step.at("name").get<std::string>(), loader);
    } else if (op == "pass") {
      const auto& loader = loaders.at(step.at("loader"));
      std::optional<size_t> stop;
      if (step.contains("stop_after")) stop = step.at("stop_after").get<size_t>();
      Order batches;
      for (const auto& batch : loader) {  // stops as calc_loss_loader: after fetching one more
        if (stop && batches.size() >= *stop) break;
        batches.push_back(llmfs::test::to_vector(batch.input));
      }
      CHECK(batches == step.at("batches").get<Order>());
    } else if (op == "iter_only") {
      [[maybe_unused]] const auto it = loaders.at(step.at("loader")).begin();
    } else if (op == "iter_rand_next") {
      auto it = loaders.at(step.at("loader")).begin();
      CHECK(rand_values(step.at("n").get<int64_t>()) == as_floats(step.at("values")));
      CHECK(llmfs::test::to_vector(it->input) == step.at("batch").get<std::vector<int64_t>>());
    } else if (op == "rand") {
      CHECK(rand_values(step.at("n").get<int64_t>()) == as_floats(step.at("values")));
    } else {
      FAIL("unknown op " << op);
    }
  }
}

std::vector<std::vector<int64_t>> rows(const torch::Tensor& t) {
  std::vector<std::vector<int64_t>> out;
  for (int64_t i = 0; i < t.size(0); ++i) out.push_back(llmfs::test::to_vector(t[i]));
  return out;
}

}  // namespace

TEST_CASE("DataLoader draws the same orders and leaves the global generator where PyTorch does",
          "[golden][data]") {
  const auto scenarios = fixture("scenarios.json");
  REQUIRE(scenarios.size() >= 4);
  for (const auto& [name, steps] : scenarios.items()) {
    SECTION(name) { replay(name, steps); }
  }
}

TEST_CASE("The appendix A toy loaders visit 3,1,0,2,4 and then 0,2,3,1 (CA-08, CA-09)",
          "[golden][book][data]") {
  // BOOK.md §10.1: five training points with labels 0,0,0,1,1; seed 123, batch 2, shuffled.
  class ToyDataset : public llmfs::Dataset<llmfs::Example> {
   public:
    int64_t size() const override { return 5; }
    llmfs::Example get(int64_t i) const override { return {features_[i], labels_[i]}; }

   private:
    torch::Tensor features_ =
        torch::tensor({-1.2f, 3.1f, -0.9f, 2.9f, -0.5f, 2.6f, 2.3f, -1.1f, 2.7f, -1.5f})
            .view({5, 2});
    torch::Tensor labels_ = torch::tensor({0, 0, 0, 1, 1}, torch::kInt64);
  };
  const auto dataset = std::make_shared<ToyDataset>();
  torch::manual_seed(123);
  llmfs::DataLoader train_loader(dataset, llmfs::DataLoaderOptions(2).shuffle(true));
  const auto ca08 = all_batches(train_loader);
  REQUIRE(ca08.size() == 3);
  const auto x = [](std::vector<float> v) {
    return torch::tensor(v).view({static_cast<int64_t>(v.size()) / 2, 2});
  };
  CHECK(torch::equal(ca08[0].input, x({2.3f, -1.1f, -0.9f, 2.9f})));
  CHECK(torch::equal(ca08[1].input, x({-1.2f, 3.1f, -0.5f, 2.6f})));
  CHECK(torch::equal(ca08[2].input, x({2.7f, -1.5f})));
  CHECK(llmfs::test::to_vector(ca08[0].target) == std::vector<int64_t>{1, 0});
  CHECK(llmfs::test::to_vector(ca08[1].target) == std::vector<int64_t>{0, 0});
  CHECK(llmfs::test::to_vector(ca08[2].target) == std::vector<int64_t>{1});

  llmfs::DataLoader rebuilt(dataset, llmfs::DataLoaderOptions(2).shuffle(true).drop_last(true));
  const auto ca09 = all_batches(rebuilt);
  REQUIRE(ca09.size() == 2);
  CHECK(torch::equal(ca09[0].input, x({-1.2f, 3.1f, -0.5f, 2.6f})));
  CHECK(torch::equal(ca09[1].input, x({2.3f, -1.1f, -0.9f, 2.9f})));
  CHECK(llmfs::test::to_vector(ca09[0].target) == std::vector<int64_t>{0, 0});
  CHECK(llmfs::test::to_vector(ca09[1].target) == std::vector<int64_t>{1, 0});
}

TEST_CASE("the-verdict windows give the book's batches and counts (C2-25, C2-26, C2-27)",
          "[golden][book][data]") {
  const auto verdict = fixture("verdict.json");
  const auto ids = verdict.at("token_ids").get<std::vector<int64_t>>();
  REQUIRE(ids.size() == 5145);  // C2-21
  const auto counts = verdict.at("counts");

  SECTION("batch 1, max_length 4, stride 1: 5,141 samples") {
    const auto dataset = std::make_shared<llmfs::GPTDatasetV1>(ids, 4, 1);
    CHECK(dataset->size() == 5141);
    CHECK(dataset->size() == counts.at("4_1_1").at("samples").get<int64_t>());
    torch::manual_seed(123);
    llmfs::DataLoader loader(dataset, llmfs::DataLoaderOptions(1).drop_last(true));
    auto it = loader.begin();
    CHECK(rows(it->input) == Order{{40, 367, 2885, 1464}});  // C2-25
    CHECK(rows(it->target) == Order{{367, 2885, 1464, 1807}});
    ++it;
    CHECK(rows(it->input) == Order{{367, 2885, 1464, 1807}});  // C2-26
    CHECK(rows(it->target) == Order{{2885, 1464, 1807, 3619}});
  }

  SECTION("batch 8, max_length 4, stride 4: 1,286 samples, 160 full batches") {
    const auto dataset = std::make_shared<llmfs::GPTDatasetV1>(ids, 4, 4);
    llmfs::DataLoader loader(dataset, llmfs::DataLoaderOptions(8).drop_last(true));
    CHECK(dataset->size() == 1286);
    CHECK(loader.size() == 160);
    CHECK(dataset->size() == counts.at("4_4_8").at("samples").get<int64_t>());
    CHECK(loader.size() == counts.at("4_4_8").at("batches").get<int64_t>());
    const auto first = *loader.begin();
    // C2-27
    CHECK(rows(first.input) == Order{{40, 367, 2885, 1464},
                                     {1807, 3619, 402, 271},
                                     {10899, 2138, 257, 7026},
                                     {15632, 438, 2016, 257},
                                     {922, 5891, 1576, 438},
                                     {568, 340, 373, 645},
                                     {1049, 5975, 284, 502},
                                     {284, 3285, 326, 11}});
    CHECK(rows(first.target) == Order{{367, 2885, 1464, 1807},
                                      {3619, 402, 271, 10899},
                                      {2138, 257, 7026, 15632},
                                      {438, 2016, 257, 922},
                                      {5891, 1576, 438, 568},
                                      {340, 373, 645, 1049},
                                      {5975, 284, 502, 284},
                                      {3285, 326, 11, 287}});
    CHECK(first.input.sizes() == torch::IntArrayRef{8, 4});
    // And PyTorch's own first two batches of the same windows.
    const auto python = verdict.at("first_batches_4_4_8");
    auto it = loader.begin();
    for (const auto& batch : python) {
      CHECK(rows(it->input) == batch.at(0).get<Order>());
      CHECK(rows(it->target) == batch.at(1).get<Order>());
      ++it;
    }
  }

  SECTION("max_length 256, stride 128, batch 4 (create_dataloader_v1's defaults)") {
    const llmfs::GPTDatasetV1 dataset(ids, 256, 128);
    CHECK(dataset.size() == counts.at("256_128_4").at("samples").get<int64_t>());
    CHECK(llmfs::num_batches(dataset.size(), llmfs::DataLoaderOptions(4).drop_last(true)) ==
          counts.at("256_128_4").at("batches").get<int64_t>());
  }
}

TEST_CASE("Chapter 5's seeded loaders batch the-verdict as PyTorch does", "[golden][data]") {
  // BOOK.md §6.3: seed 123, training loader (batch 2, 256/256, shuffled, drop_last), validation
  // loader (same windows, in order); Python ran two training epochs and one validation pass.
  const auto ch5 = fixture("verdict.json").at("chapter5");
  torch::manual_seed(123);
  llmfs::DataLoader train_loader(std::make_shared<llmfs::GPTDatasetV1>(
                                     ch5.at("train_ids").get<std::vector<int64_t>>(), 256, 256),
                                 llmfs::DataLoaderOptions(2).shuffle(true).drop_last(true));
  llmfs::DataLoader val_loader(std::make_shared<llmfs::GPTDatasetV1>(
                                   ch5.at("val_ids").get<std::vector<int64_t>>(), 256, 256),
                               llmfs::DataLoaderOptions(2));
  CHECK(train_loader.size() == 9);  // C5-16: 9 batches of 2 x 256
  CHECK(val_loader.size() == 1);    // C5-17
  for (const auto& epoch : ch5.at("train_epochs")) {
    std::vector<Order> batches;
    for (const auto& [input, target] : train_loader) batches.push_back(rows(input));
    CHECK(batches == epoch.get<std::vector<Order>>());
  }
  std::vector<Order> val_batches;
  for (const auto& batch : val_loader) val_batches.push_back(rows(batch.input));
  CHECK(val_batches == ch5.at("val_batches").get<std::vector<Order>>());
  CHECK(rand_values(3) == as_floats(ch5.at("final_rand")));
}

TEST_CASE("Sharded loaders batch as PyTorch's DistributedSampler under a DataLoader",
          "[golden][data][dist]") {
  // Live: torch.utils.data.DistributedSampler(shuffle, seed, drop_last=False) with set_epoch,
  // batched by a DataLoader(batch_size, drop_last), for every rank of several worlds.
  const std::string script = R"(
import json, sys, torch
from torch.utils.data import DataLoader, DistributedSampler
out = []
for n, world, batch, shuffle, drop_last, seed in [(5, 2, 2, True, True, 0), (18, 2, 1, True, True, 123),
        (18, 3, 2, True, False, 7), (7, 4, 3, False, False, 0), (9, 1, 2, True, True, 123), (3, 4, 1, True, False, 5)]:
    for epoch in range(3):
        for rank in range(world):
            sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed)
            sampler.set_epoch(epoch)
            loader = DataLoader(list(range(n)), batch_size=batch, sampler=sampler, drop_last=drop_last)
            out.append({"n": n, "world": world, "batch": batch, "shuffle": shuffle, "drop_last": drop_last,
                        "seed": seed, "epoch": epoch, "rank": rank, "len": len(loader),
                        "batches": [b.tolist() for b in loader]})
print(json.dumps(out))
)";
  const auto [out, code] = llmfs::test::run_python(script, {}, "llmfs_distributed_sampler.py");
  REQUIRE(code == 0);
  const auto cases = json::parse(out);
  REQUIRE(cases.size() > 40);
  for (const auto& c : cases) {
    const llmfs::DataLoaderOptions options =
        llmfs::DataLoaderOptions(c.at("batch").get<int64_t>())
            .shuffle(c.at("shuffle").get<bool>())
            .drop_last(c.at("drop_last").get<bool>())
            .shard(llmfs::DataShard{.rank = c.at("rank").get<int64_t>(),
                                    .world_size = c.at("world").get<int64_t>(),
                                    .seed = c.at("seed").get<int64_t>()});
    const int64_t n = c.at("n").get<int64_t>();
    auto pass = llmfs::IndexPass::start(n, options, c.at("epoch").get<int64_t>());
    INFO(c.dump());
    CHECK(pass.size() == c.at("len").get<int64_t>());
    std::vector<std::vector<int64_t>> batches;
    while (auto b = pass.next()) batches.push_back(*b);
    CHECK(batches == c.at("batches").get<std::vector<std::vector<int64_t>>>());
  }
}

TEST_CASE("A sharded pass resumes with another world size where the global batch divides it",
          "[golden][data][dist]") {
  // Two ranks with batch 1 take entries 0-1, 2-3, ... of the padded order at their steps; one
  // rank with batch 2 takes the same pairs; a checkpoint of either continues in the other.
  const auto opts = [](int64_t batch, int64_t rank, int64_t world) {
    return llmfs::DataLoaderOptions(batch).shuffle(true).drop_last(true).shard(
        llmfs::DataShard{.rank = rank, .world_size = world, .seed = 123});
  };
  const int64_t n = 18;
  auto whole = llmfs::IndexPass::start(n, opts(2, 0, 1), 1);
  std::vector<std::vector<int64_t>> expected;
  while (auto b = whole.next()) expected.push_back(*b);
  REQUIRE(expected.size() == 9);

  auto r0 = llmfs::IndexPass::start(n, opts(1, 0, 2), 1);
  auto r1 = llmfs::IndexPass::start(n, opts(1, 1, 2), 1);
  for (int step = 0; step < 3; ++step) {
    CHECK(std::vector<int64_t>{r0.next()->at(0), r1.next()->at(0)} == expected[step]);
  }
  REQUIRE(r0.position().global_examples == 6);
  auto single = llmfs::IndexPass::resume(n, opts(2, 0, 1), r0.position());  // 2 -> 1
  for (size_t step = 3; step < expected.size(); ++step) CHECK(*single.next() == expected[step]);
  CHECK_FALSE(single.next());

  auto one = llmfs::IndexPass::start(n, opts(2, 0, 1), 1);
  for (int step = 0; step < 4; ++step) one.next();
  auto a = llmfs::IndexPass::resume(n, opts(1, 0, 2), one.position());  // 1 -> 2
  auto b = llmfs::IndexPass::resume(n, opts(1, 1, 2), one.position());
  for (size_t step = 4; step < expected.size(); ++step) {
    CHECK(std::vector<int64_t>{a.next()->at(0), b.next()->at(0)} == expected[step]);
  }
  // A global batch that does not divide the position, and a plain pass's position, are refused.
  auto three = llmfs::IndexPass::start(n, opts(1, 0, 3), 1);
  three.next();
  CHECK_THROWS_WITH(llmfs::IndexPass::resume(n, opts(2, 0, 1), three.position()),
                    llmfs::test::contains_text("not a multiple of batch_size x world size"));
  auto plain = llmfs::IndexPass::start(n, llmfs::DataLoaderOptions(2).shuffle(true));
  plain.next();
  CHECK_THROWS_WITH(llmfs::IndexPass::resume(n, opts(1, 0, 2), plain.position()),
                    llmfs::test::contains_text("plain single-process"));
}
