// py_repr against PyTorch's own repr of the same tensors (tests/reference/fixtures_repr.py).
#include <nlohmann/json.hpp>

#include "catch.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/repr.h"
#include "llmfs_test_paths.h"

namespace {

std::string fixture(const std::string& name) {
  return llmfs::read_file(std::string(llmfs::test::kFixturesDir) + "/repr/" + name);
}

}  // namespace

TEST_CASE("py_repr equals PyTorch's repr for every reference tensor", "[golden][repr]") {
  const auto reprs = nlohmann::json::parse(fixture("reprs.json"));
  const std::string bytes = fixture("tensors.pt");
  const auto dict = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end())).toGenericDict();
  REQUIRE(dict.size() == reprs.size());
  for (const auto& entry : dict) {
    const std::string name = entry.key().toStringRef();
    torch::Tensor t = entry.value().toTensor();
    if (name == "requires_grad") t.requires_grad_(true);
    if (name.rfind("grad_fn_", 0) == 0) t = t.requires_grad_(true) * torch::tensor(1.0f);  // MulBackward0, as Python's `t * 1`
    const std::string expected = reprs.at(name).get<std::string>();
    const std::string actual = llmfs::py_repr(t);
    INFO(name);
    CHECK(actual == expected);
  }
}
