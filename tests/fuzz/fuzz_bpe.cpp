// libFuzzer target: GPT-2's BPE tokenizer on arbitrary bytes. Properties checked, not only "no
// crash": valid UTF-8 round-trips through encode and decode (with and without special tokens);
// invalid UTF-8 is an llmfs::Error; every id is in the vocabulary; arbitrary ids decode to the
// concatenation of their tokens' bytes or are an llmfs::Error when out of range.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmfs/core/error.h"
#include "llmfs/core/utf8.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"

namespace {

const llmfs::BPETokenizer& tokenizer() {
  static const auto tok = llmfs::BPETokenizer::gpt2();  // LLMFS_DATA_DIR/gpt2/...
  return tok;
}

[[noreturn]] void broken(const char* property, std::string_view input) {
  std::fprintf(stderr, "property violated: %s (input %zu bytes)\n", property, input.size());
  std::abort();
}

void check_text(std::string_view text) {
  const auto& tok = tokenizer();
  const bool valid = llmfs::find_invalid_utf8(text) == std::string::npos;
  std::vector<int64_t> ids;
  try {
    ids = tok.encode_ordinary(text);
  } catch (const llmfs::Error&) {
    if (valid) broken("valid UTF-8 is encoded", text);
    return;
  }
  if (!valid) broken("invalid UTF-8 is an llmfs::Error", text);
  for (const auto id : ids) {
    if (id < 0 || id >= tok.mergeable_count()) broken("ordinary ids are mergeable tokens", text);
  }
  if (tok.decode(ids) != text) broken("decode(encode_ordinary(text)) == text", text);
  // Special tokens allowed: <|endoftext|> in the text becomes its id and still round-trips.
  const auto with_special = tok.encode(text, {.allow_all_special = true});
  if (tok.decode(with_special) != text) broken("decode(encode(text, all special)) == text", text);
  if (ids.size() > text.size()) broken("at most one token per byte", text);
}

void check_ids(std::string_view data) {
  const auto& tok = tokenizer();
  std::vector<int64_t> ids;
  for (size_t i = 0; i + 3 <= data.size(); i += 3) {  // 24-bit ids: in and out of range
    const auto b = [&](size_t k) { return static_cast<int64_t>(static_cast<uint8_t>(data[i + k])); };
    ids.push_back((b(0) << 16 | b(1) << 8 | b(2)) - 0x100);  // a few negative ones too
  }
  bool in_range = true;
  std::string expected;
  for (const auto id : ids) {
    if (id < 0 || id >= tok.vocab_size()) {
      in_range = false;
      break;
    }
    expected += tok.token_bytes(id);
  }
  try {
    const auto bytes = tok.decode_bytes(ids);
    if (!in_range) broken("ids out of range are an llmfs::Error", data);
    if (bytes != expected) broken("decode_bytes concatenates the tokens' bytes", data);
    const auto text = tok.decode(ids);  // replacement characters where bytes are not UTF-8
    if (llmfs::find_invalid_utf8(text) != std::string::npos) broken("decode gives UTF-8", data);
  } catch (const llmfs::Error&) {
    if (in_range) broken("ids in range decode", data);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) check_ids(input);
  else check_text(input);
  return 0;
}
