// libFuzzer target: the .pth reader (zip archive + restricted pickle machine) on arbitrary
// files. Properties: a malformed or hostile file is an llmfs::Error (never a crash or a call
// outside the allowed globals); what loads, written back by save_pth, reads again to the same
// names, dtypes, shapes and bytes.
#include <cstring>

#include "fuzz_input_file.h"
#include "llmfs/checkpoint/pth.h"
#include "llmfs/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using llmfs::fuzz::broken;
  static const llmfs::fuzz::InputFile file(".pth");
  static const llmfs::fuzz::InputFile again(".again.pth");
  const auto& path = file.write({reinterpret_cast<const char*>(data), size});
  std::map<std::string, torch::Tensor> tensors;
  try {
    tensors = llmfs::load_pth(path);
  } catch (const llmfs::Error&) {
    return 0;
  }
  llmfs::save_pth(again.path(), tensors);
  const auto back = llmfs::load_pth(again.path());
  if (back.size() != tensors.size()) broken("written back: the same tensors", size);
  for (const auto& [name, t] : tensors) {
    const auto it = back.find(name);
    if (it == back.end()) broken("written back: the same names", size);
    const auto a = t.contiguous(), b = it->second.contiguous();
    if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes() || a.nbytes() != b.nbytes() ||
        (a.nbytes() > 0 && std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) != 0)) {
      broken("written back: the same bytes", size);
    }
  }
  return 0;
}
