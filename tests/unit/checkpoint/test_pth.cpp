#include <cstring>
#include <filesystem>

#include "catch.h"
#include "llmfs/checkpoint/pth.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/zip_archive.h"

namespace fs = std::filesystem;
using llmfs::test::contains_text;

namespace {

fs::path temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_pth";
  fs::create_directories(dir);
  return dir / name;
}

bool same(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const auto ca = a.contiguous();
  const auto cb = b.contiguous();
  return ca.numel() == 0 ||
         std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * ca.element_size()) == 0;
}

// Pickle opcodes spelled out, to craft files by hand.
std::string unicode(const std::string& s) {
  std::string out = "X";
  const auto n = static_cast<uint32_t>(s.size());
  out.append(reinterpret_cast<const char*>(&n), 4);
  return out + s;
}

// {"w": tensor} whose storage "0" is a FloatStorage of `numel` elements, viewed with this
// offset, size and stride (one dimension).
std::string one_tensor_pickle(int numel, int offset, int size, int stride,
                              const std::string& storage_class = "FloatStorage") {
  std::string p = "\x80\x02}(" + unicode("w") + "ctorch._utils\n_rebuild_tensor_v2\n((" +
                  unicode("storage") + "ctorch\n" + storage_class + "\n" + unicode("0") +
                  unicode("cpu") + "K" + char(numel) + "tQ" + "K" + char(offset) + "K" +
                  char(size) + "\x85" + "K" + char(stride) + "\x85" + "\x89" +
                  "ccollections\nOrderedDict\n)Rt" + "Ru.";
  return p;
}

// An archive "arch/" with this data.pkl and storages "arch/data/<key>".
fs::path write_archive(const std::string& name, const std::string& pickle,
                       const std::map<std::string, std::string>& storages = {}) {
  const fs::path path = temp_path(name);
  llmfs::ZipWriter zip(path);
  zip.add("arch/data.pkl", pickle);
  for (const auto& [key, bytes] : storages) zip.add("arch/data/" + key, bytes);
  zip.add("arch/version", "3\n");
  zip.finish();
  return path;
}

}  // namespace

TEST_CASE("save_pth and load_pth round-trip dtypes, views and shared storages",
          "[unit][checkpoint]") {
  torch::manual_seed(0);
  const auto base = torch::randn({3, 4});
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"base", base},
      {"transposed", base.t()},
      {"slice", base.index({torch::indexing::Slice(1), torch::indexing::Slice(1)})},
      {"half", torch::randn({5}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"f64", torch::randn({2}).to(torch::kFloat64)},
      {"i64", torch::arange(-3, 300000, 70000)},
      {"i32", torch::tensor({-1, 2}, torch::kInt32)},
      {"i8", torch::tensor({-5, 7}, torch::kInt8)},
      {"u8", torch::tensor({250, 3}, torch::kUInt8)},
      {"bool", torch::tensor({true, false})},
      {"u16", torch::arange(5, torch::kInt32).to(torch::kUInt16)},  // _rebuild_tensor_v3 path
      {"scalar", torch::tensor(1.5)},
      {"empty", torch::empty({0, 3})},
  };
  for (const bool ordered : {true, false}) {
    INFO("ordered_dict " << ordered);
    const fs::path path = temp_path("round.pth");
    llmfs::save_pth(path, tensors, {.ordered_dict = ordered});
    llmfs::PthReader reader(path);
    CHECK(reader.root().kind() == llmfs::PickleValue::Kind::Dict);
    const auto loaded = reader.state_dict();
    REQUIRE(loaded.size() == tensors.size());
    for (const auto& [name, t] : tensors) {
      INFO(name);
      CHECK(same(loaded.at(name), t));
    }
    // One storage for base, transposed and slice, as torch.save writes them.
    CHECK(loaded.at("transposed").storage().data() == loaded.at("base").storage().data());
    CHECK(loaded.at("slice").storage_offset() == 5);
    const auto refs = reader.tensor_refs();
    CHECK(refs[1].first == "transposed");
    CHECK(refs[1].second->strides == std::vector<int64_t>{1, 4});
    CHECK(same(reader.tensor(*refs[2].second), tensors[2].second));
  }
}

TEST_CASE("PthReader reads a nested state dict by key", "[unit][checkpoint]") {
  // {"model_state_dict": {"w": tensor}, "epoch": 3}
  std::string p =
      "\x80\x02}(" + unicode("model_state_dict") + one_tensor_pickle(2, 0, 2, 1).substr(2);
  p.pop_back();  // drop STOP: the inner dict continues as a value
  p += unicode("epoch") + "K\x03u.";
  const fs::path path = write_archive("nested.pth", p, {{"0", std::string(8, '\0')}});
  llmfs::PthReader reader(path);
  CHECK(reader.root().find("epoch")->as_int() == 3);
  CHECK(reader.state_dict("model_state_dict").at("w").sizes() == torch::IntArrayRef{2});
  CHECK_THROWS_WITH(
      reader.state_dict(),
      contains_text("nested.pth: the checkpoint: the value of 'model_state_dict' is a "
                    "dict, not a tensor"));
  CHECK_THROWS_WITH(reader.state_dict("optimizer"),
                    contains_text("the checkpoint has no 'optimizer'"));
}

TEST_CASE("PthReader refuses pickle globals outside the allow-list and names them",
          "[unit][checkpoint]") {
  const fs::path a =
      write_archive("evil.pth", "\x80\x02\x63os\nsystem\nq\x00" + unicode("ls") + "\x85R.");
  CHECK_THROWS_WITH(
      llmfs::PthReader(a),
      contains_text("evil.pth: arch/data.pkl: pickle global 'os.system' is not allowed") &&
          contains_text("(at byte 2)"));
  // The same through protocol 4's STACK_GLOBAL.
  const fs::path b = write_archive(
      "evil4.pth", "\x80\x04\x8c\x08\x62uiltins\x8c\x04\x65val\x93" + unicode("1") + "\x85R.");
  CHECK_THROWS_WITH(llmfs::PthReader(b),
                    contains_text("pickle global 'builtins.eval' is not allowed"));
  // A whole pickled module (torch.save(model)) names its class.
  const fs::path c = write_archive("model.pth", "\x80\x02\x63__main__\nGPTModel\n)\x81.");
  CHECK_THROWS_WITH(llmfs::PthReader(c),
                    contains_text("pickle global '__main__.GPTModel' is not allowed"));
}

TEST_CASE("PthReader refuses unsupported opcodes and malformed pickles", "[unit][checkpoint]") {
  struct Case {
    std::string pickle;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"\x80\x02(i os\nsystem\n.",
       "pickle opcode INST (0x69) is not supported in a checkpoint (at byte 3)"},
      {"\x80\x02}(" + unicode("w"), "pickle ends in the middle of an opcode's argument"},
      {"\x80\x02}", "pickle ends in the middle of an opcode's argument"},
      {"\x80\x02h\x05.", "memo index 5 was never stored"},
      {"\x80\x02}}.", "pickle stops with a malformed stack"},
      {"\x80\x02}.junk", "4 bytes after the pickle's STOP"},
      {"\x80\x02\xff.", "unknown pickle opcode 0xff"},
      {"\x80\x09}.", "pickle protocol 9 is not supported"},
      {"\x80\x02\x63torch._utils\n_rebuild_tensor_v2\n)R.",
       "_rebuild_tensor_v2 expects 6 or 7 arguments"},
      {"\x80\x02(" + unicode("w") + "K\x01u.", "pickle stack underflow"},
      {"\x80\x02" + unicode(std::string("\xff\xfe")) + ".", "str is not valid UTF-8"},
  };
  for (const auto& c : cases) {
    INFO(c.message);
    const fs::path path = write_archive("bad.pth", c.pickle);
    CHECK_THROWS_WITH(llmfs::PthReader(path),
                      contains_text("bad.pth: arch/data.pkl: ") && contains_text(c.message));
  }
}

TEST_CASE("PthReader checks storages and tensor views against the archive", "[unit][checkpoint]") {
  const std::string eight(8, '\0');
  const fs::path missing = write_archive("nostorage.pth", one_tensor_pickle(2, 0, 2, 1));
  CHECK_THROWS_WITH(llmfs::PthReader(missing),
                    contains_text("storage '0' has no entry arch/data/0"));
  const fs::path wrong_size =
      write_archive("size.pth", one_tensor_pickle(3, 0, 3, 1), {{"0", eight}});
  CHECK_THROWS_WITH(llmfs::PthReader(wrong_size),
                    contains_text("storage '0' holds 8 bytes but the pickle says 12"));
  const fs::path past_end =
      write_archive("view.pth", one_tensor_pickle(2, 1, 2, 1), {{"0", eight}});
  CHECK_THROWS_WITH(
      llmfs::PthReader(past_end),
      contains_text("tensor view (offset 1, size [2], stride [1]) runs past its storage "
                    "'0' of 2 elements"));
  const fs::path bad_class =
      write_archive("class.pth", one_tensor_pickle(2, 0, 2, 1, "QInt8Storage"), {{"0", eight}});
  CHECK_THROWS_WITH(llmfs::PthReader(bad_class),
                    contains_text("pickle global 'torch.QInt8Storage' is not allowed"));
  const fs::path ok = write_archive("ok.pth", one_tensor_pickle(2, 1, 1, 1), {{"0", eight}});
  CHECK(llmfs::load_pth(ok).at("w").sizes() == torch::IntArrayRef{1});
}

TEST_CASE("PthReader explains files that are not torch.save zip archives", "[unit][checkpoint]") {
  const fs::path legacy = temp_path("legacy.pth");
  llmfs::write_file_atomic(
      legacy, std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15));
  CHECK_THROWS_WITH(llmfs::PthReader(legacy), contains_text("legacy torch.save format"));
  const fs::path no_pickle = temp_path("nopickle.pth");
  {
    llmfs::ZipWriter zip(no_pickle);
    zip.add("arch/constants.pkl", "x");
    zip.finish();
  }
  CHECK_THROWS_WITH(llmfs::PthReader(no_pickle), contains_text("no <archive>/data.pkl entry"));
  const fs::path text = temp_path("text.pth");
  llmfs::write_file_atomic(text, "this is not a checkpoint at all, just some text");
  CHECK_THROWS_WITH(llmfs::PthReader(text), contains_text("text.pth: not a zip archive"));
}

TEST_CASE("save_pth refuses duplicate names", "[unit][checkpoint]") {
  CHECK_THROWS_WITH(llmfs::save_pth(temp_path("dup.pth"),
                                    std::vector<std::pair<std::string, torch::Tensor>>{
                                        {"a", torch::ones({1})}, {"a", torch::ones({1})}}),
                    contains_text("tensor 'a' given twice"));
  CHECK_FALSE(fs::exists(temp_path("dup.pth")));
}
