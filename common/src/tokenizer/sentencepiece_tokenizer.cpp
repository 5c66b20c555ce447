// SentencePiece behind the Tokenizer interface: training from memory, loading, and tiktoken-style
// special tokens on top of SentencePiece's control symbols. SentencePiece's headers stay here.
#include "llmfs/tokenizer/sentencepiece_tokenizer.h"

#include <fmt/format.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <spdlog/spdlog.h>

#include <unordered_map>

#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/utf8.h"

namespace llmfs {

SentencePieceTrainerConfig parse_sentencepiece_trainer_config(ConfigNode node,
                                                              SentencePieceTrainerConfig defaults) {
  SentencePieceTrainerConfig c = std::move(defaults);
  node.read("vocab_size", c.vocab_size, at_least(int64_t{8}));
  node.read("model_type", c.model_type, one_of({"unigram", "bpe", "char", "word"}));
  node.read("character_coverage", c.character_coverage, in_range(0.5, 1.0));
  node.read("byte_fallback", c.byte_fallback);
  node.read("normalization_rule_name", c.normalization_rule_name,
            one_of({"identity", "nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf"}));
  node.read("remove_extra_whitespaces", c.remove_extra_whitespaces);
  node.read("add_dummy_prefix", c.add_dummy_prefix);
  node.read("split_digits", c.split_digits);
  node.read("max_sentence_length", c.max_sentence_length, at_least(int64_t{16}));
  node.read("special_tokens", c.special_tokens);
  node.read("num_threads", c.num_threads, at_least(int64_t{1}));
  node.read("seed", c.seed, at_least(int64_t{0}));
  for (const auto& s : c.special_tokens)
    node.check(!s.empty(), "special_tokens", "empty special token");
  return c;
}

struct SentencePieceTokenizer::Impl {
  std::string model_proto;
  std::string source;
  sentencepiece::SentencePieceProcessor processor;
  std::vector<std::pair<std::string, int64_t>> specials;  // control symbols written <|...|>
};

namespace {

// Lines of a text for SentencePiece's trainer (which reads sentences, one per line).
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(std::string_view text) : text_(text) { Next(); }
  bool done() const override { return done_; }
  void Next() override {
    if (pos_ > text_.size()) {
      done_ = true;
      return;
    }
    std::size_t end = text_.find('\n', pos_);
    if (end == std::string_view::npos) end = text_.size();
    std::string_view line = text_.substr(pos_, end - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    value_.assign(line);
    pos_ = end + 1;
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  std::string value_;
  bool done_ = false;
};

bool looks_special(std::string_view piece) {
  return piece.size() >= 4 && piece.substr(0, 2) == "<|" && piece.substr(piece.size() - 2) == "|>";
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(std::shared_ptr<const Impl> impl)
    : impl_(std::move(impl)) {}

SentencePieceTokenizer SentencePieceTokenizer::from_serialized(std::string model_proto,
                                                               std::string_view source) {
  auto impl = std::make_shared<Impl>();
  impl->model_proto = std::move(model_proto);
  impl->source = std::string(source);
  const auto status = impl->processor.LoadFromSerializedProto(impl->model_proto);
  if (!status.ok()) fail("{}: not a SentencePiece model ({})", source, status.ToString());
  for (int id = 0; id < impl->processor.GetPieceSize(); ++id) {
    const std::string& piece = impl->processor.IdToPiece(id);
    if (impl->processor.IsControl(id) && looks_special(piece))
      impl->specials.emplace_back(piece, id);
  }
  return SentencePieceTokenizer(std::move(impl));
}

SentencePieceTokenizer SentencePieceTokenizer::load(const std::filesystem::path& model_file) {
  return from_serialized(read_file(model_file), model_file.string());
}

SentencePieceTokenizer SentencePieceTokenizer::train(std::string_view text,
                                                     const SentencePieceTrainerConfig& c) {
  require_valid_utf8(text, "training text");
  std::string specials;
  for (const auto& s : c.special_tokens) {
    if (!looks_special(s)) fail("special token '{}' must be written <|...|>", s);
    specials += (specials.empty() ? "" : ",") + s;
  }
  const std::unordered_map<std::string, std::string> args = {
      {"vocab_size", std::to_string(c.vocab_size)},
      {"model_type", c.model_type},
      {"character_coverage", fmt::format("{}", c.character_coverage)},
      {"byte_fallback", c.byte_fallback ? "true" : "false"},
      {"normalization_rule_name", c.normalization_rule_name},
      {"remove_extra_whitespaces", c.remove_extra_whitespaces ? "true" : "false"},
      {"add_dummy_prefix", c.add_dummy_prefix ? "true" : "false"},
      {"split_digits", c.split_digits ? "true" : "false"},
      {"max_sentence_length", std::to_string(c.max_sentence_length)},
      {"control_symbols", specials},
      {"bos_id", "-1"},  // no <s> / </s>: special tokens come from the config
      {"eos_id", "-1"},
      {"unk_id", "0"},
      {"num_threads", std::to_string(c.num_threads)},
      {"hard_vocab_limit", "true"},
      {"minloglevel", "2"},  // SentencePiece's progress log is noise on our stderr
  };
  // No model_prefix: the model comes back in memory (`model`) and nothing is written.
  sentencepiece::SetRandomGeneratorSeed(static_cast<unsigned int>(c.seed));
  LineIterator lines(text);
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &model);
  if (!status.ok()) fail("SentencePiece training failed: {}", status.ToString());
  spdlog::debug("trained SentencePiece {} model, {} pieces", c.model_type, c.vocab_size);
  return from_serialized(std::move(model), "trained SentencePiece model");
}

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text,
                                                    const EncodeOptions& options) const {
  require_valid_utf8(text, "text to encode");
  for (const auto& name : options.allowed_special) {
    if (!special_token_id(name))
      fail("allowed_special: '{}' is not a special token of {}", name, this->name());
  }
  std::vector<const std::pair<std::string, int64_t>*> allowed;
  for (const auto& s : impl_->specials) {
    const bool ok = options.allow_all_special || options.allowed_special.count(s.first);
    if (ok) {
      allowed.push_back(&s);
    } else if (!options.special_as_text) {
      if (const auto at = text.find(s.first); at != std::string_view::npos) {
        fail(
            "text to encode: special token '{}' at byte {} is not allowed (allow it, or encode it "
            "as text)",
            s.first, at);
      }
    }
  }
  std::vector<int64_t> out;
  std::vector<int> piece_ids;
  const auto encode_plain = [&](std::string_view segment) {
    if (segment.empty()) return;
    const auto status = impl_->processor.Encode(segment, &piece_ids);
    if (!status.ok()) fail("SentencePiece encode failed: {}", status.ToString());
    out.insert(out.end(), piece_ids.begin(), piece_ids.end());
  };
  split_at_special_tokens(text, allowed, encode_plain, [&](int64_t id) { out.push_back(id); });
  return out;
}

std::string SentencePieceTokenizer::decode(std::span<const int64_t> ids) const {
  // Segments between special tokens are decoded by SentencePiece (which drops control symbols),
  // the special tokens are written as their text: the inverse of encode().
  const int64_t n = vocab_size();
  std::string out;
  std::vector<int> segment;
  const auto flush = [&] {
    if (segment.empty()) return;
    std::string text;
    const auto status = impl_->processor.Decode(segment, &text);
    if (!status.ok()) fail("SentencePiece decode failed: {}", status.ToString());
    out += text;
    segment.clear();
  };
  for (const int64_t id : ids) {
    if (id < 0 || id >= n) fail("decode: token id {} out of range (vocabulary size {})", id, n);
    bool special = false;
    for (const auto& s : impl_->specials) {
      if (s.second == id) {
        flush();
        out += s.first;
        special = true;
        break;
      }
    }
    if (!special) segment.push_back(static_cast<int>(id));
  }
  flush();
  return utf8_replace_invalid(out);
}

int64_t SentencePieceTokenizer::vocab_size() const { return impl_->processor.GetPieceSize(); }

std::optional<int64_t> SentencePieceTokenizer::special_token_id(std::string_view token) const {
  for (const auto& [name, id] : impl_->specials) {
    if (name == token) return id;
  }
  return std::nullopt;
}

std::string SentencePieceTokenizer::name() const {
  return fmt::format("sentencepiece ({} pieces)", vocab_size());
}

std::string SentencePieceTokenizer::piece(int64_t id) const {
  if (id < 0 || id >= vocab_size())
    fail("token id {} out of range (vocabulary size {})", id, vocab_size());
  return impl_->processor.IdToPiece(static_cast<int>(id));
}

void SentencePieceTokenizer::save(const std::filesystem::path& model_file) const {
  std::string vocab;
  for (int id = 0; id < impl_->processor.GetPieceSize(); ++id) {
    vocab += fmt::format("{}\t{}\n", impl_->processor.IdToPiece(id), impl_->processor.GetScore(id));
  }
  write_file_atomic(model_file, impl_->model_proto);
  auto vocab_file = model_file;
  vocab_file.replace_extension(".vocab");
  write_file_atomic(vocab_file, vocab);
  spdlog::debug("wrote {} and {}", model_file.string(), vocab_file.string());
}

const std::string& SentencePieceTokenizer::serialized_model() const { return impl_->model_proto; }

}  // namespace llmfs
