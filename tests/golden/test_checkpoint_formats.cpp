// safetensors and .pth against the Python libraries (tests/reference/fixtures_weights.py): files
// they write read back byte for byte; files we write equal theirs (safetensors) or load in
// Python with torch.load(weights_only=True) (.pth, a live round trip).
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "catch.h"
#include "llmfs/checkpoint/pth.h"
#include "llmfs/checkpoint/safetensors.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs_test_paths.h"
#include "run_python.h"

namespace fs = std::filesystem;
using llmfs::test::contains_text;

namespace {

fs::path fixture(const std::string& name) {
  return fs::path(llmfs::test::kFixturesDir) / "weights" / name;
}

const nlohmann::json& described() {
  static const nlohmann::json j = nlohmann::json::parse(llmfs::read_file(fixture("tensors.json")));
  return j;
}

std::string hex_bytes(const torch::Tensor& t) {
  const auto c = t.contiguous();
  const auto* p = static_cast<const unsigned char*>(c.data_ptr());
  std::string out;
  for (int64_t i = 0; i < c.numel() * c.element_size(); ++i) out += fmt::format("{:02x}", p[i]);
  return out;
}

// Every tensor matches the Python description: dtype, shape, bytes.
void check_against_python(const std::map<std::string, torch::Tensor>& tensors,
                          const std::string& file) {
  const auto& expected = described().at(file);
  REQUIRE(tensors.size() == expected.size());
  for (const auto& [name, e] : expected.items()) {
    INFO(file << ": " << name);
    REQUIRE(tensors.count(name) == 1);
    const auto& t = tensors.at(name);
    std::string dtype = c10::toString(t.scalar_type());
    CHECK(t.sizes().vec() == e.at("shape").get<std::vector<int64_t>>());
    CHECK(hex_bytes(t) == e.at("hex").get<std::string>());
    CHECK(t.element_size() * 2 * t.numel() ==
          static_cast<int64_t>(e.at("hex").get<std::string>().size()));
  }
}

std::pair<std::string, int> run_python(const std::string& script,
                                       const std::vector<std::string>& args) {
  return llmfs::test::run_python(script, args, "llmfs_golden_checkpoint.py");
}

}  // namespace

TEST_CASE("safetensors files written by Python read back with every dtype, shape and byte",
          "[golden][checkpoint]") {
  for (const std::string file : {"st_all_dtypes.safetensors", "st_plain.safetensors"}) {
    check_against_python(llmfs::load_safetensors(fixture(file)), file);
  }
  const auto header = llmfs::read_safetensors_header(fixture("st_all_dtypes.safetensors"));
  CHECK(header.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  CHECK(llmfs::read_safetensors_header(fixture("st_plain.safetensors")).metadata.empty());
}

TEST_CASE("safetensors files we write equal Python's safetensors.torch.save_file byte for byte",
          "[golden][checkpoint]") {
  const std::vector<std::pair<std::string, std::map<std::string, std::string>>> files = {
      {"st_all_dtypes.safetensors", {{"format", "pt"}}}, {"st_plain.safetensors", {}}};
  for (const auto& [file, metadata] : files) {
    INFO(file);
    const auto tensors = llmfs::load_safetensors(fixture(file));
    const std::string ours = llmfs::serialize_safetensors(tensors, metadata);
    const std::string theirs = llmfs::read_file(fixture(file));
    CHECK(ours.size() == theirs.size());
    CHECK(ours == theirs);
  }
}

TEST_CASE(".pth files written by torch.save read back, views and shared storages included",
          "[golden][checkpoint]") {
  for (const std::string file : {"pth_dtypes.pth", "pth_dtypes_p4.pth", "pth_module.pth"}) {
    check_against_python(llmfs::load_pth(fixture(file)), file);
  }
  const auto t = llmfs::load_pth(fixture("pth_dtypes.pth"));
  CHECK(t.at("view_t").storage().data() == t.at("base").storage().data());
  CHECK(t.at("view_slice").strides() == torch::IntArrayRef{6, 1});
  CHECK(t.at("view_slice").storage_offset() == 8);
}

TEST_CASE(".pth whose pickle calls os.system is refused before anything runs",
          "[golden][checkpoint]") {
  CHECK_THROWS_WITH(
      llmfs::load_pth(fixture("pth_evil.pth")),
      contains_text("pth_evil.pth: pth_evil/data.pkl: pickle global 'posix.system' is "
                    "not allowed"));
}

TEST_CASE("Python reads the .pth and safetensors files we write (torch.load weights_only=True)",
          "[golden][checkpoint]") {
  // Our reader, then our writers, then Python's readers, compared with the Python originals.
  llmfs::PthReader reader(fixture("pth_dtypes.pth"));
  std::vector<std::pair<std::string, torch::Tensor>> ordered;
  const auto all = reader.state_dict();
  for (const auto& [name, ref] : reader.tensor_refs()) ordered.emplace_back(name, all.at(name));
  const fs::path dir = fs::temp_directory_path() / "llmfs_golden_checkpoint";
  fs::create_directories(dir);
  llmfs::save_pth(dir / "ours_ordered.pth", ordered);
  llmfs::save_pth(dir / "ours_plain.pth", ordered, {.ordered_dict = false});
  llmfs::save_safetensors(dir / "ours.safetensors", all, {{"format", "pt"}, {"note", "llmfs"}});

  const std::string script = R"(
import collections, sys, torch
from safetensors import safe_open
from safetensors.torch import load_file
def same(a, b):
    flat = lambda t: t.contiguous().reshape(-1).view(torch.uint8)
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(flat(a), flat(b))
ref = torch.load(sys.argv[1], weights_only=True)
for path, kind in [(sys.argv[2], collections.OrderedDict), (sys.argv[3], dict)]:
    ours = torch.load(path, weights_only=True)
    assert type(ours) is kind, type(ours)
    assert list(ours) == list(ref), (list(ours), list(ref))
    for k in ref:
        assert same(ours[k], ref[k]), k
        assert ours[k].stride() == ref[k].stride() and ours[k].storage_offset() == ref[k].storage_offset(), k
    assert ours["view_t"].untyped_storage().data_ptr() == ours["base"].untyped_storage().data_ptr()
st = load_file(sys.argv[4])
assert set(st) == set(ref)
for k in ref:
    assert same(st[k], ref[k]), k
with safe_open(sys.argv[4], "pt") as f:
    assert f.metadata() == {"format": "pt", "note": "llmfs"}, f.metadata()
print("OK", len(ref))
)";
  const auto [out, code] =
      run_python(script, {fixture("pth_dtypes.pth").string(), (dir / "ours_ordered.pth").string(),
                          (dir / "ours_plain.pth").string(), (dir / "ours.safetensors").string()});
  INFO(out);
  CHECK(code == 0);
  CHECK(out == fmt::format("OK {}\n", all.size()));

  // LibTorch's own reader takes the plain-dict variant (of the dtypes it knows: it has no
  // _rebuild_tensor_v3, which the newer dtypes need).
  const std::vector<std::pair<std::string, torch::Tensor>> classic = {{"base", all.at("base")},
                                                                      {"view_t", all.at("view_t")}};
  llmfs::save_pth(dir / "ours_libtorch.pth", classic, {.ordered_dict = false});
  const std::string bytes = llmfs::read_file(dir / "ours_libtorch.pth");
  const auto dict =
      torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end())).toGenericDict();
  CHECK(dict.size() == 2);
  CHECK(torch::equal(dict.at("base").toTensor(), all.at("base")));
  CHECK(torch::equal(dict.at("view_t").toTensor(), all.at("view_t")));
}
