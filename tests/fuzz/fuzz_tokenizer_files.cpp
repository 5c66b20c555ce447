// libFuzzer target: tokenizer files as members bring them (GPT-2's encoder.json + vocab.bpe, a
// tiktoken ranks file). Properties: inconsistent or malformed files are an llmfs::Error; a
// tokenizer that loads encodes text and decodes it back unchanged, and saved in GPT-2's format
// (where its ids allow) it loads again to the same ids.
#include <algorithm>
#include <optional>

#include "fuzz_input_file.h"
#include "llmfs/core/error.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"

namespace {

const char* const kProbes[] = {"the theme", "Hello, world!", "안녕하세요 🙂", " <|endoftext|> x"};

}  // namespace

// Input: a mode byte (even: GPT-2 files, the two separated by a NUL; odd: tiktoken), the files.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using llmfs::fuzz::broken;
  if (size == 0) return 0;
  static const llmfs::fuzz::InputFile encoder(".encoder.json"), vocab(".vocab.bpe"),
      ranks(".tiktoken");
  static const std::filesystem::path saved = encoder.path().string() + ".saved";
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::optional<llmfs::BPETokenizer> tok;
  try {
    if (data[0] & 1) {
      tok = llmfs::BPETokenizer::from_tiktoken_file(ranks.write(rest));
    } else {
      const size_t split = std::min(rest.find('\0'), rest.size());
      encoder.write(rest.substr(0, split));
      vocab.write(split < rest.size() ? rest.substr(split + 1) : std::string_view{});
      tok = llmfs::BPETokenizer::from_gpt2_files(encoder.path(), vocab.path());
    }
  } catch (const llmfs::Error&) {
    return 0;
  }
  for (const char* probe : kProbes) {
    const auto ids = tok->encode(probe, {.allow_all_special = true});
    if (tok->decode(ids) != probe) broken("decode(encode(text)) == text", size);
  }
  std::filesystem::create_directories(saved);
  try {
    tok->save_gpt2(saved);
  } catch (const llmfs::Error&) {  // refused: ids 0..255 not in GPT-2's order (a tiktoken file)
    return 0;
  }
  const auto again = llmfs::BPETokenizer::from_gpt2_files(saved / "encoder.json", saved / "vocab.bpe");
  for (const char* probe : kProbes) {
    if (again.encode(probe, {.allow_all_special = true}) != tok->encode(probe, {.allow_all_special = true})) {
      broken("saved in GPT-2's format, the same ids", size);
    }
  }
  return 0;
}
