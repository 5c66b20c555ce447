#include "llmfs/config/config_node.h"

#include <string>

#include "catch.h"

namespace {

struct TrainSection {
  int64_t num_epochs = 10;
  double learning_rate = 4e-4;
  std::string device = "auto";
  std::optional<int64_t> max_steps;
  std::vector<int64_t> ids;
};

struct Demo {
  uint64_t seed = 123;
  bool verbose = false;
  TrainSection train;
};

Demo parse_demo(llmfs::ConfigNode node) {
  Demo d;
  node.read("seed", d.seed);
  node.read("verbose", d.verbose);
  auto t = node.child("train");
  t.read("num_epochs", d.train.num_epochs, llmfs::at_least(int64_t{1}));
  t.read("learning_rate", d.train.learning_rate, llmfs::greater_than(0.0));
  t.read("device", d.train.device, llmfs::one_of({"auto", "cpu", "cuda", "mps"}));
  t.read("max_steps", d.train.max_steps);
  t.read("ids", d.train.ids);
  return d;
}

Demo load(std::string_view yaml, std::vector<std::string> overrides = {}) {
  auto doc = llmfs::ConfigDocument::from_string(yaml, "demo.yaml", overrides);
  Demo d = parse_demo(doc.root());
  doc.finish();
  return d;
}

std::string error_of(std::string_view yaml, std::vector<std::string> overrides = {}) {
  try {
    load(yaml, std::move(overrides));
  } catch (const llmfs::ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("Config values come from YAML, defaults fill the rest", "[unit][config]") {
  const Demo d = load("seed: 7\ntrain:\n  num_epochs: 2\n  ids: [1, 2, 3]\n");
  CHECK(d.seed == 7);
  CHECK(d.train.num_epochs == 2);
  CHECK(d.train.learning_rate == 4e-4);
  CHECK(d.train.ids == std::vector<int64_t>{1, 2, 3});
  CHECK_FALSE(d.train.max_steps.has_value());
}

TEST_CASE("Command-line overrides replace file values and reach nested keys", "[unit][config]") {
  const Demo d = load("train:\n  num_epochs: 2\n",
                      {"train.num_epochs=5", "train.learning_rate=1e-3", "verbose=true", "train.max_steps=100"});
  CHECK(d.train.num_epochs == 5);
  CHECK(d.train.learning_rate == 1e-3);
  CHECK(d.verbose);
  REQUIRE(d.train.max_steps.has_value());
  CHECK(*d.train.max_steps == 100);
}

TEST_CASE("An unknown key is an error with a suggestion, file and line", "[unit][config]") {
  const std::string msg = error_of("seed: 1\ntrain:\n  lerning_rate: 0.1\n");
  CHECK(msg == "demo.yaml:3: train.lerning_rate: unknown key (did you mean 'learning_rate'?)");
}

TEST_CASE("A key that is a list, a mapping or null is an error naming the line", "[unit][config]") {
  CHECK(error_of("? [a, b]\n: 1\n") == "demo.yaml:1: (top level): a key must be a name, got a list");
  CHECK(error_of("seed: 1\ntrain:\n  ? {x: 1}\n  : 2\n") ==
        "demo.yaml:3: train: a key must be a name, got a mapping");
  CHECK(error_of("train:\n  ~: 3\n") == "demo.yaml:2: train: a key must be a name, got null");
}

TEST_CASE("An unknown override key names the command line", "[unit][config]") {
  const std::string msg = error_of("", {"train.num_epoch=3"});
  CHECK(msg == "(command line): train.num_epoch: unknown key (did you mean 'num_epochs'?)");
}

TEST_CASE("A wrong type names the key and line", "[unit][config]") {
  CHECK(error_of("train:\n  num_epochs: two\n") ==
        "demo.yaml:2: train.num_epochs: expected an integer, got 'two'");
  CHECK(error_of("train:\n  num_epochs: 2.5\n") ==
        "demo.yaml:2: train.num_epochs: expected an integer, got '2.5'");
  CHECK(error_of("verbose: maybe\n") == "demo.yaml:1: verbose: expected true or false, got 'maybe'");
  CHECK(error_of("train: 3\n") == "demo.yaml:1: train: expected a section (a mapping of keys)");
}

TEST_CASE("A value out of range names the key and the rule", "[unit][config]") {
  CHECK(error_of("train:\n  num_epochs: 0\n") == "demo.yaml:2: train.num_epochs: must be at least 1, got 0");
  CHECK(error_of("", {"train.device=tpu"}) ==
        "(command line): train.device: must be one of 'auto', 'cpu', 'cuda', 'mps', got 'tpu'");
}

TEST_CASE("Several problems are reported together, one per line", "[unit][config]") {
  const std::string msg = error_of("seeed: 1\ntrain:\n  num_epochs: -1\n");
  CHECK(msg == "demo.yaml: 2 problems\n"
               "  demo.yaml:3: train.num_epochs: must be at least 1, got -1\n"
               "  demo.yaml:1: seeed: unknown key (did you mean 'seed'?)");
}

TEST_CASE("Malformed YAML and malformed overrides are config errors", "[unit][config]") {
  CHECK_THROWS_WITH(load("train: [1, 2\n"), llmfs::test::contains_text("demo.yaml:"));
  CHECK_THROWS_WITH(load("train: [1, 2\n"), llmfs::test::contains_text("malformed YAML"));
  CHECK_THROWS_WITH(load("", {"seed"}), llmfs::test::contains_text("expected key.sub=value"));
  CHECK_THROWS_WITH(load("- 1\n- 2\n"), llmfs::test::contains_text("expected a mapping"));
}

TEST_CASE("A missing config file is a config error naming it", "[unit][config]") {
  CHECK_THROWS_WITH(llmfs::ConfigDocument("/nonexistent/run.yaml", {}),
                    llmfs::test::contains_text("/nonexistent/run.yaml: cannot open config file"));
}

TEST_CASE("The resolved config lists every value read, defaults included", "[unit][config]") {
  auto doc = llmfs::ConfigDocument::from_string("train:\n  num_epochs: 2\n", "demo.yaml",
                                                {"train.learning_rate=0.0005"});
  parse_demo(doc.root());
  doc.finish();
  CHECK(doc.resolved_yaml() ==
        "seed: 123\nverbose: false\ntrain:\n  num_epochs: 2\n  learning_rate: 0.0005\n"
        "  device: auto\n  max_steps: ~\n  ids: []\n");
}

TEST_CASE("The resolved config reads back to the same values", "[unit][config]") {
  auto doc = llmfs::ConfigDocument::from_string("", "demo.yaml",
                                                {"train.learning_rate=1e-5", "train.ids=[4, 5]", "seed=9"});
  const Demo first = parse_demo(doc.root());
  doc.finish();
  const Demo again = load(doc.resolved_yaml());
  CHECK(again.seed == first.seed);
  CHECK(again.train.learning_rate == first.train.learning_rate);
  CHECK(again.train.ids == first.train.ids);
}

TEST_CASE("An override value with a colon stays one string", "[unit][config]") {
  struct P {
    std::string prompt;
  };
  auto doc = llmfs::ConfigDocument::from_string("", "x.yaml", {"prompt=Note: hello"});
  P p;
  doc.root().read("prompt", p.prompt);
  doc.finish();
  CHECK(p.prompt == "Note: hello");
}
