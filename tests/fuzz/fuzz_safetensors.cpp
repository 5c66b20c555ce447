// libFuzzer target: the safetensors reader on arbitrary files. Properties: a malformed file is an
// llmfs::Error (never a crash, never an allocation the file's size does not back: tensors are
// views of the mapped file); a header that validates loads; what loads, written back by our
// writer, reads again to the same names, dtypes, shapes and bytes.
#include <cstdio>
#include <cstring>

#include "fuzz_input_file.h"
#include "llmfs/checkpoint/safetensors.h"
#include "llmfs/core/error.h"

namespace {

bool same_bytes(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const auto ca = a.contiguous(), cb = b.contiguous();
  return ca.nbytes() == cb.nbytes() &&
         (ca.nbytes() == 0 || std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using llmfs::fuzz::broken;
  static const llmfs::fuzz::InputFile file(".safetensors");
  static const llmfs::fuzz::InputFile again(".again.safetensors");
  const auto& path = file.write({reinterpret_cast<const char*>(data), size});
  llmfs::SafetensorsHeader header;
  try {
    header = llmfs::read_safetensors_header(path);
  } catch (const llmfs::Error&) {
    return 0;
  }
  std::map<std::string, torch::Tensor> tensors;
  try {
    tensors = llmfs::load_safetensors(path);
  } catch (const llmfs::Error&) {
    broken("a file whose header validates loads", size);
  }
  if (tensors.size() != header.entries.size()) broken("one tensor per header entry", size);
  uint64_t bytes = 0;
  for (const auto& [name, t] : tensors) bytes += t.nbytes();
  if (bytes > size) broken("the tensors' bytes are backed by the file", size);
  llmfs::save_safetensors(again.path(), tensors, header.metadata);
  const auto back = llmfs::load_safetensors(again.path());
  if (back.size() != tensors.size()) broken("written back: the same tensors", size);
  for (const auto& [name, t] : tensors) {
    const auto it = back.find(name);
    if (it == back.end() || !same_bytes(t, it->second)) broken("written back: the same bytes", size);
  }
  if (llmfs::read_safetensors_header(again.path()).metadata != header.metadata) {
    broken("written back: the same metadata", size);
  }
  return 0;
}
