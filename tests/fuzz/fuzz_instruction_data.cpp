// libFuzzer target: instruction data files (chapter 7's JSON array, or JSONL), as members bring
// their own. Properties: malformed JSON, wrong types, missing fields and invalid UTF-8 are an
// llmfs::Error naming the file; what reads, written back (JSON and JSONL), reads again to the
// same entries.
#include "fuzz_input_file.h"
#include "llmfs/core/error.h"
#include "llmfs/data/instruction_data.h"

namespace {

bool same(const std::vector<llmfs::InstructionEntry>& a, const std::vector<llmfs::InstructionEntry>& b,
          const llmfs::InstructionDataConfig& config) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].instruction != b[i].instruction || a[i].input != b[i].input ||
        a[i].output != b[i].output || llmfs::py_repr(a[i], config) != llmfs::py_repr(b[i], config)) {
      return false;
    }
  }
  return true;
}

}  // namespace

// Input: one byte choosing JSON or JSONL, then the file.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using llmfs::fuzz::broken;
  if (size == 0) return 0;
  static const llmfs::fuzz::InputFile json(".json"), jsonl(".jsonl"), again_json(".again.json"),
      again_jsonl(".again.jsonl");
  const auto& path = (data[0] & 1 ? jsonl : json).write({reinterpret_cast<const char*>(data) + 1, size - 1});
  llmfs::InstructionDataConfig config;
  std::vector<llmfs::InstructionEntry> entries;
  try {
    entries = llmfs::read_instruction_entries(path, config);
  } catch (const llmfs::Error& e) {
    if (std::string_view(e.what()).find(path.filename().string()) == std::string_view::npos) {
      broken("the error names the file", size);
    }
    return 0;
  }
  for (const auto* out : {&again_json, &again_jsonl}) {
    llmfs::write_instruction_entries(out->path(), entries, config);
    if (!same(entries, llmfs::read_instruction_entries(out->path(), config), config)) {
      broken("written back, the entries read again the same", size);
    }
  }
  return 0;
}
