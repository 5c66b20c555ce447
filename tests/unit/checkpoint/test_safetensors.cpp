#include <cstring>
#include <filesystem>

#include "catch.h"
#include "llmfs/checkpoint/safetensors.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "tensor_compare.h"

namespace fs = std::filesystem;
using llmfs::test::contains_text;

namespace {

fs::path temp_dir() {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_safetensors";
  fs::create_directories(dir);
  return dir;
}

// A file with this header JSON (padded to 8 bytes) followed by `data`.
fs::path write_raw(const std::string& name, const std::string& json, const std::string& data) {
  std::string header = json;
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += header;
  bytes += data;
  const fs::path path = temp_dir() / name;
  llmfs::write_file_atomic(path, bytes);
  return path;
}

bool same(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const auto ca = a.contiguous();
  const auto cb = b.contiguous();
  return ca.numel() == 0 ||
         std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * ca.element_size()) == 0;
}

}  // namespace

TEST_CASE("safetensors round-trips tensors of every supported dtype", "[unit][checkpoint]") {
  torch::manual_seed(0);
  const auto base = torch::randn({3, 5}) * 100;
  std::map<std::string, torch::Tensor> tensors;
  for (const auto dtype :
       {torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kFloat64, torch::kInt64,
        torch::kInt32, torch::kInt16, torch::kInt8, torch::kUInt8, torch::kBool}) {
    tensors.emplace(std::string("t_") + c10::toString(dtype), base.to(dtype));
  }
  tensors.emplace("uint16", torch::arange(7, torch::kInt32).to(torch::kUInt16));
  tensors.emplace("scalar", torch::tensor(2.5));
  tensors.emplace("empty", torch::empty({0, 4}));
  tensors.emplace("transposed", base.t());  // non-contiguous: written contiguous

  const fs::path path = temp_dir() / "all.safetensors";
  llmfs::save_safetensors(path, tensors, {{"format", "pt"}});
  const auto loaded = llmfs::load_safetensors(path);
  REQUIRE(loaded.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO(name);
    REQUIRE(loaded.count(name) == 1);
    CHECK(same(loaded.at(name), t));
  }
  const auto header = llmfs::read_safetensors_header(path);
  CHECK(header.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  CHECK(header.entries.size() == tensors.size());
  CHECK(header.data_start % 8 == 0);
}

TEST_CASE("safetensors writer orders by dtype size then name and pads the header to 8 bytes",
          "[unit][checkpoint]") {
  const std::string bytes = llmfs::serialize_safetensors(
      {{"b", torch::ones({3})}, {"a", torch::zeros({2}, torch::kInt8)}}, {{"format", "pt"}});
  // The same tensors through Python's safetensors.torch.save(..., metadata={"format": "pt"}).
  const std::string json =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
      R"("a":{"dtype":"I8","shape":[2],"data_offsets":[12,14]}}    )";
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n == json.size());
  CHECK(bytes.substr(8, n) == json);
  CHECK(bytes.size() == 8 + n + 14);
}

TEST_CASE("safetensors header-only reading gives the entries without the data",
          "[unit][checkpoint]") {
  const fs::path path = temp_dir() / "listing.safetensors";
  llmfs::save_safetensors(path, {{"w", torch::ones({2, 3})}, {"b", torch::ones({3}, torch::kF16)}});
  const auto header = llmfs::read_safetensors_header(path);
  REQUIRE(header.entries.size() == 2);
  CHECK(header.entries[0].name == "w");
  CHECK(header.entries[0].dtype_name == "F32");
  CHECK(header.entries[0].shape == std::vector<int64_t>{2, 3});
  CHECK(header.entries[1].name == "b");
  CHECK(header.entries[1].begin == 24);
  CHECK(header.entries[1].end == 30);
  llmfs::SafetensorsFile file(path);
  CHECK(file.contains("w"));
  CHECK_THROWS_WITH(file.tensor("nope"),
                    contains_text("listing.safetensors: no tensor named 'nope'"));
}

TEST_CASE("safetensors reader rejects malformed files with one-line errors naming file and tensor",
          "[unit][checkpoint]") {
  const std::string f32x2(8, '\0');
  struct Case {
    const char* what;
    std::string json;
    std::string data;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"corrupt JSON", R"({"w":{"dtype":"F32",)", f32x2, "malformed safetensors header JSON"},
      {"not an object", R"([1, 2])", "", "the JSON is not an object"},
      {"unknown dtype", R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", f32x2,
       "tensor 'w': unknown dtype 'F33'"},
      {"shape vs bytes", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2,
       "tensor 'w': shape [3] of F32 needs 12 bytes but data_offsets [0, 8] hold 8"},
      {"dtype vs bytes", R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", f32x2,
       "tensor 'w': shape [2] of F64 needs 16 bytes"},
      {"negative dim", R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32x2,
       "tensor 'w': shape [-2] must hold non-negative integers"},
      {"out of bounds", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", f32x2,
       "tensor 'w': data_offsets [0, 16] run past the end of the data buffer (8 bytes)"},
      {"reversed offsets", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", f32x2,
       "tensor 'w': data_offsets [8, 0] end before they begin"},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       f32x2, "tensor 'b': data_offsets [4, 8] overlap tensor 'a' [0, 8]"},
      {"hole", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f32x2,
       "tensor 'w': data_offsets [4, 8] leave bytes 0..4 of the data buffer unused"},
      {"trailing bytes", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32x2,
       "4 trailing bytes after the last tensor"},
      {"duplicate name",
       R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       f32x2, "name 'w' appears twice"},
      {"non-string metadata",
       R"({"__metadata__":{"step":3},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32x2,
       "__metadata__ value for 'step' is not a string (3)"},
      {"unknown field", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})",
       f32x2, "tensor 'w': unknown header field 'extra'"},
      {"missing field", R"({"w":{"dtype":"F32","shape":[2]}})", f32x2,
       "tensor 'w': header entry has no 'data_offsets'"},
      {"float offsets", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", f32x2,
       "tensor 'w': data_offsets [0,8.0] must be two non-negative integers"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    const fs::path path = write_raw("bad.safetensors", c.json, c.data);
    CHECK_THROWS_WITH(llmfs::load_safetensors(path),
                      contains_text(path.string() + ": ") && contains_text(c.message));
    CHECK_THROWS_WITH(llmfs::read_safetensors_header(path), contains_text(c.message));
  }
}

TEST_CASE("safetensors reader rejects truncated files", "[unit][checkpoint]") {
  const fs::path good = temp_dir() / "good.safetensors";
  llmfs::save_safetensors(good, {{"w", torch::ones({4})}});
  const std::string bytes = llmfs::read_file(good);
  const fs::path path = temp_dir() / "truncated.safetensors";

  llmfs::write_file_atomic(path, bytes.substr(0, 5));
  CHECK_THROWS_WITH(llmfs::load_safetensors(path),
                    contains_text("file too short for safetensors (5 bytes"));
  llmfs::write_file_atomic(path, bytes.substr(0, 20));
  CHECK_THROWS_WITH(llmfs::load_safetensors(path),
                    contains_text("header length 56 runs past the end of the file (20 bytes"));
  llmfs::write_file_atomic(path, bytes.substr(0, bytes.size() - 3));
  CHECK_THROWS_WITH(llmfs::load_safetensors(path),
                    contains_text("tensor 'w': data_offsets [0, 16] run past the end of the data "
                                  "buffer (13 bytes)"));
  std::string huge = bytes;
  huge[7] = '\x7f';
  llmfs::write_file_atomic(path, huge);
  CHECK_THROWS_WITH(llmfs::load_safetensors(path),
                    contains_text("exceeds the 100000000-byte limit"));
  CHECK_THROWS_WITH(llmfs::load_safetensors(temp_dir() / "missing.safetensors"),
                    contains_text("missing.safetensors: cannot open"));
}

TEST_CASE("safetensors writer refuses what the format cannot hold", "[unit][checkpoint]") {
  CHECK_THROWS_WITH(llmfs::serialize_safetensors({{"__metadata__", torch::ones({1})}}),
                    contains_text("'__metadata__' cannot be a tensor name"));
  CHECK_THROWS_WITH(
      llmfs::serialize_safetensors({{"c", torch::ones({1}, torch::kComplexDouble)}}),
      contains_text("tensor 'c': dtype ComplexDouble cannot be stored in safetensors"));
  CHECK_THROWS_WITH(llmfs::serialize_safetensors({{std::string("bad\xff"), torch::ones({1})}}),
                    contains_text("safetensors tensor name: invalid UTF-8 at byte 3"));
}

TEST_CASE("safetensors escapes names in the JSON header as serde_json does", "[unit][checkpoint]") {
  const std::string name = "q\"uote\\back\nline\x01\xc3\xa9";
  const fs::path path = temp_dir() / "names.safetensors";
  llmfs::save_safetensors(path, {{name, torch::ones({1})}});
  const std::string bytes = llmfs::read_file(path);
  CHECK(bytes.find(R"("q\"uote\\back\nline\u0001)"
                   "\xc3\xa9\"") != std::string::npos);
  CHECK(llmfs::load_safetensors(path).count(name) == 1);
}

TEST_CASE("safetensors tensors use the file in place, and writing to them leaves the file alone",
          "[unit][checkpoint]") {
  const fs::path path = temp_dir() / "cow.safetensors";
  llmfs::save_safetensors(path, {{"w", torch::arange(6, torch::kFloat32)}});
  auto loaded = llmfs::load_safetensors(path);
  loaded.at("w").add_(100);
  CHECK(loaded.at("w")[0].item<float>() == 100.0f);
  CHECK(torch::equal(llmfs::load_safetensors(path).at("w"), torch::arange(6, torch::kFloat32)));
}

TEST_CASE("safetensors reads tensors whose offset is not aligned to their element size",
          "[unit][checkpoint]") {
  std::string data(1, '\x05');
  const float values[2] = {1.5f, -2.25f};
  data.append(reinterpret_cast<const char*>(values), sizeof(values));
  const fs::path path = write_raw(
      "unaligned.safetensors",
      R"({"b":{"dtype":"I8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})",
      data);
  const auto loaded = llmfs::load_safetensors(path);
  CHECK(loaded.at("b").item<int8_t>() == 5);
  CHECK(loaded.at("f")[0].item<float>() == 1.5f);
  CHECK(loaded.at("f")[1].item<float>() == -2.25f);
}
