// Chapter 2: Working with text data.
//
// Narrates the book's sections 2.1-2.8 with the book's values (BOOK.md §3, C2-01 ... C2-34): the
// regex tokenizers, GPT-2's byte-level BPE, the sliding-window data loader and the embedding
// layers; section 2.9 (a bonus) trains a BPE and a SentencePiece tokenizer on Korean text and
// compares token counts with GPT-2's. Subcommands are the tokenizer tools a project needs.
//
//   ch02                                   all sections; ch02 --section 2.6 for one
//   ch02 encode --input FILE [--tokenizer gpt2|bpe|sentencepiece|simple] [--special allow]
//   ch02 decode --input FILE               ids (whitespace-separated) back to text; - is stdin
//   ch02 train-bpe [train_bpe.vocab_size=5000 train_bpe.input=my.txt ...]
//   ch02 train-sentencepiece [train_sentencepiece.vocab_size=8000 ...]
//   ch02 encode --config runs/ch02/bpe/tokenizer.yaml --input FILE   (a trained tokenizer)
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <spdlog/stopwatch.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>

#include "llmfs/config/cli.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/repr.h"
#include "llmfs/core/sections.h"
#include "llmfs/core/utf8.h"
#include "llmfs/core/data_files.h"
#include "llmfs/data/gpt_dataset.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/tokenizer/bpe_trainer.h"
#include "llmfs/tokenizer/sentencepiece_tokenizer.h"
#include "llmfs/tokenizer/simple_tokenizer.h"
#include "llmfs/tokenizer/tokenizer_config.h"

namespace {

// --- Config ---------------------------------------------------------------------------------

struct BonusConfig {  // section 2.9
  std::string text = "unsu-joeun-nal.txt";
  llmfs::BPETrainerConfig bpe;
  llmfs::SentencePieceTrainerConfig sentencepiece;
};

struct TrainBPEConfig {
  std::string input = "the-verdict.txt";
  std::string output_dir = "runs/ch02/bpe";
  llmfs::BPETrainerConfig trainer;
};

struct TrainSentencePieceConfig {
  std::string input = "unsu-joeun-nal.txt";
  std::string output_dir = "runs/ch02/sentencepiece";
  llmfs::SentencePieceTrainerConfig trainer;
};

struct Ch02Config {
  std::string text = "the-verdict.txt";
  llmfs::TokenizerConfig tokenizer;
  BonusConfig bonus;
  TrainBPEConfig train_bpe;
  TrainSentencePieceConfig train_sentencepiece;
};

Ch02Config parse_ch02_config(llmfs::ConfigNode node) {
  Ch02Config c;
  c.bonus.bpe.vocab_size = 1000;
  c.bonus.sentencepiece.vocab_size = 1000;
  c.train_sentencepiece.trainer.vocab_size = 1000;  // unsu-joeun-nal.txt supports up to about 1,600
  node.read("text", c.text);
  c.tokenizer = llmfs::parse_tokenizer_config(node.child("tokenizer"));
  auto bonus = node.child("bonus");
  bonus.read("text", c.bonus.text);
  c.bonus.bpe = llmfs::parse_bpe_trainer_config(bonus.child("bpe"), c.bonus.bpe);
  c.bonus.sentencepiece = llmfs::parse_sentencepiece_trainer_config(bonus.child("sentencepiece"),
                                                                    c.bonus.sentencepiece);
  auto bpe = node.child("train_bpe");
  bpe.read("input", c.train_bpe.input);
  bpe.read("output_dir", c.train_bpe.output_dir);
  c.train_bpe.trainer = llmfs::parse_bpe_trainer_config(bpe, c.train_bpe.trainer);
  auto sp = node.child("train_sentencepiece");
  sp.read("input", c.train_sentencepiece.input);
  sp.read("output_dir", c.train_sentencepiece.output_dir);
  c.train_sentencepiece.trainer =
      llmfs::parse_sentencepiece_trainer_config(sp, c.train_sentencepiece.trainer);
  return c;
}

// A text file as UTF-8 (an error names the file and the byte offset otherwise); "-" is stdin.
std::string read_text(const std::string& path_or_name) {
  std::string text;
  if (path_or_name == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    text = llmfs::read_file(llmfs::input_file(path_or_name));
  }
  llmfs::require_valid_utf8(text, path_or_name == "-" ? "stdin" : path_or_name);
  return text;
}

// Python's print((token, id)).
void print_vocab_entry(const std::string& token, int64_t id) {
  fmt::print("({}, {})\n", llmfs::py_repr_str(token), id);
}

// --- 2.1 - 2.4: the regex tokenizers ---------------------------------------------------------

void section_2_1() {
  fmt::print(
      "No code in this section: embeddings map tokens to vectors; sections 2.2-2.8 build\n"
      "the pipeline text -> tokens -> token ids -> embedding vectors.\n");
}

std::size_t whitespace_at(std::string_view t, std::size_t pos) {
  return llmfs::is_python_space(static_cast<unsigned char>(t[pos])) ? 1 : 0;
}

void section_2_2(const Ch02Config& cfg) {
  const std::string raw_text = read_text(cfg.text);
  fmt::print("Total number of character: {}\n{}\n", llmfs::utf8_length(raw_text),
             llmfs::utf8_slice(raw_text, 0, 99));  // C2-01

  const std::string text = "Hello, world. This, is a test.";
  fmt::print("\n# re.split(r'(\\s)', text)\n{}\n",
             llmfs::py_repr(llmfs::split_keep_delimiters(text, whitespace_at)));
  const auto comma_period_space = [](std::string_view t, std::size_t pos) -> std::size_t {
    return t[pos] == ',' || t[pos] == '.' ? 1 : whitespace_at(t, pos);
  };
  const auto result = llmfs::split_keep_delimiters(text, comma_period_space);
  fmt::print("\n# re.split(r'([,.]|\\s)', text)\n{}\n", llmfs::py_repr(result));  // C2-03
  fmt::print("\n# [item.strip() for item in result if item.strip()]\n{}\n",
             llmfs::py_repr(llmfs::strip_and_drop_empty(result)));  // C2-04
  fmt::print("\n# the book's rule on \"Hello, world. Is this-- a test?\"\n{}\n",
             llmfs::py_repr(llmfs::simple_split("Hello, world. Is this-- a test?")));  // C2-05

  const auto preprocessed = llmfs::simple_split(raw_text);
  fmt::print("\n# the first 30 tokens of {}\n{}\n", cfg.text,
             llmfs::py_repr(std::vector<std::string>(
                 preprocessed.begin(),
                 preprocessed.begin() + std::min<std::size_t>(30, preprocessed.size()))));
  fmt::print("\n# number of tokens\n{}\n", preprocessed.size());  // C2-07
}

void section_2_3(const Ch02Config& cfg) {
  const auto preprocessed = llmfs::simple_split(read_text(cfg.text));
  const auto vocab = llmfs::build_vocabulary(preprocessed);
  fmt::print("# vocabulary size (unique tokens)\n{}\n\n# the first 51 entries\n",
             vocab.size());  // C2-08
  for (std::size_t i = 0; i < vocab.size() && i <= 50; ++i)
    print_vocab_entry(vocab[i], static_cast<int64_t>(i));

  const llmfs::SimpleTokenizerV1 tokenizer(vocab);
  const std::string text =
      "\"It's the last he painted, you know,\" Mrs. Gisburn said with pardonable pride.";
  const auto ids = tokenizer.encode(text);
  fmt::print("\n# SimpleTokenizerV1.encode\n{}\n", llmfs::py_repr(ids));           // C2-10
  fmt::print("\n# decode(ids)\n{}\n", llmfs::py_repr_str(tokenizer.decode(ids)));  // C2-11
  fmt::print("\n# decode(encode(text))\n{}\n",
             llmfs::py_repr_str(tokenizer.decode(tokenizer.encode(text))));
}

void section_2_4(const Ch02Config& cfg) {
  const auto preprocessed = llmfs::simple_split(read_text(cfg.text));
  fmt::print("# SimpleTokenizerV1 on \"Hello, do you like tea. Is this-- a test?\"\n");
  try {
    llmfs::SimpleTokenizerV1(llmfs::build_vocabulary(preprocessed))
        .encode("Hello, do you like tea. Is this-- a test?");
  } catch (const llmfs::Error& e) {
    fmt::print("llmfs::Error: {}\n", e.what());  // C2-13 (the book's KeyError: 'Hello')
  }
  const llmfs::SimpleTokenizerV2 tokenizer(
      llmfs::build_vocabulary(preprocessed, {"<|endoftext|>", "<|unk|>"}));
  const auto& vocab = tokenizer.vocabulary();
  fmt::print("\n# vocabulary size with <|endoftext|> and <|unk|>\n{}\n\n# the last 5 entries\n",
             vocab.size());
  for (std::size_t i = vocab.size() - 5; i < vocab.size(); ++i)
    print_vocab_entry(vocab[i], static_cast<int64_t>(i));

  const std::string text =
      "Hello, do you like tea? <|endoftext|> In the sunlit terraces of the palace.";
  fmt::print("\n# \" <|endoftext|> \".join((text1, text2))\n{}\n", text);  // C2-16
  fmt::print("\n# SimpleTokenizerV2.encode\n{}\n",
             llmfs::py_repr(tokenizer.encode(text)));  // C2-17
  fmt::print("\n# decode(encode(text))\n{}\n",
             llmfs::py_repr_str(tokenizer.decode(tokenizer.encode(text))));
}

// --- 2.5 - 2.8: BPE, sliding windows, embeddings --------------------------------------------

void section_2_5() {
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  const std::string text =
      "Hello, do you like tea? <|endoftext|> In the sunlit terracesof someunknownPlace.";
  llmfs::EncodeOptions options;
  options.allowed_special = {"<|endoftext|>"};
  const auto integers = tokenizer.encode(text, options);
  fmt::print("# GPT-2 BPE, allowed_special={{\"<|endoftext|>\"}}\n{}\n",
             llmfs::py_repr(integers));                        // C2-19
  fmt::print("\n# decode\n{}\n", tokenizer.decode(integers));  // C2-20
  fmt::print("\n# an unknown word becomes subword tokens\n");
  for (const int64_t id : tokenizer.encode("Akwirw ier")) {
    fmt::print("{} -> {}\n", id, llmfs::py_repr_str(tokenizer.decode(std::vector<int64_t>{id})));
  }
}

void print_batch(const llmfs::Batch& batch) {
  fmt::print("[{}, {}]\n", llmfs::py_repr(batch.input), llmfs::py_repr(batch.target));
}

void section_2_6(const Ch02Config& cfg) {
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  const std::string raw_text = read_text(cfg.text);
  const auto enc_text = tokenizer.encode(raw_text);
  fmt::print("# number of GPT-2 tokens in {}\n{}\n", cfg.text, enc_text.size());  // C2-21

  const std::vector<int64_t> enc_sample(
      enc_text.begin() + std::min<std::size_t>(50, enc_text.size()), enc_text.end());
  const std::size_t context_size = 4;
  if (enc_sample.size() <= context_size)
    llmfs::fail("{}: too short for the sliding-window demo", cfg.text);
  const std::vector<int64_t> x(enc_sample.begin(), enc_sample.begin() + context_size);
  const std::vector<int64_t> y(enc_sample.begin() + 1, enc_sample.begin() + context_size + 1);
  fmt::print("\nx: {}\ny:      {}\n\n", llmfs::py_repr(x), llmfs::py_repr(y));  // C2-22
  for (std::size_t i = 1; i <= context_size; ++i) {
    const std::vector<int64_t> context(enc_sample.begin(), enc_sample.begin() + i);
    fmt::print("{} ----> {}\n", llmfs::py_repr(context), enc_sample[i]);  // C2-23
  }
  fmt::print("\n");
  for (std::size_t i = 1; i <= context_size; ++i) {
    const std::vector<int64_t> context(enc_sample.begin(), enc_sample.begin() + i);
    fmt::print("{} ----> {}\n", tokenizer.decode(context),
               tokenizer.decode(std::vector<int64_t>{enc_sample[i]}));
  }

  fmt::print("\n# create_dataloader_v1(batch_size=1, max_length=4, stride=1, shuffle=False)\n");
  const auto loader = llmfs::create_dataloader_v1(raw_text, tokenizer, 1, 4, 1, false);
  auto it = loader.begin();
  print_batch(*it);  // C2-25
  ++it;
  print_batch(*it);  // C2-26

  fmt::print("\n# create_dataloader_v1(batch_size=8, max_length=4, stride=4, shuffle=False)\n");
  const auto loader8 = llmfs::create_dataloader_v1(raw_text, tokenizer, 8, 4, 4, false);
  auto first = loader8.begin();  // keeps the batch alive
  const auto& batch = *first;
  fmt::print("Inputs:\n {}\n\nTargets:\n {}\n", llmfs::py_repr(batch.input),
             llmfs::py_repr(batch.target));  // C2-27
}

void section_2_7() {
  const auto input_ids = torch::tensor({2, 3, 5, 1}, torch::kInt64);
  torch::manual_seed(123);
  torch::nn::Embedding embedding_layer(6, 3);  // vocab_size 6, output_dim 3
  fmt::print("{}\n\n", llmfs::py_repr_parameter(embedding_layer->weight));  // C2-28
  fmt::print("{}\n\n",
             llmfs::py_repr(embedding_layer(torch::tensor({3}, torch::kInt64))));  // C2-29
  fmt::print("{}\n", llmfs::py_repr(embedding_layer(input_ids)));                  // C2-30
}

void section_2_8(const Ch02Config& cfg) {
  const int64_t vocab_size = 50257, output_dim = 256, max_length = 4;
  torch::nn::Embedding token_embedding_layer(vocab_size, output_dim);
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  const auto loader =
      llmfs::create_dataloader_v1(read_text(cfg.text), tokenizer, 8, max_length, max_length, false);
  auto first = loader.begin();  // keeps the batch alive
  const auto& [inputs, targets] = *first;
  fmt::print("Token IDs:\n {}\n\nInputs shape:\n {}\n", llmfs::py_repr(inputs),
             llmfs::py_repr(inputs.sizes()));  // C2-31
  const auto token_embeddings = token_embedding_layer(inputs);
  fmt::print("{}\n", llmfs::py_repr(token_embeddings.sizes()));  // C2-32
  const int64_t context_length = max_length;
  torch::nn::Embedding pos_embedding_layer(context_length, output_dim);
  const auto pos_embeddings = pos_embedding_layer(torch::arange(max_length));
  fmt::print("{}\n", llmfs::py_repr(pos_embeddings.sizes()));  // C2-33
  const auto input_embeddings = token_embeddings + pos_embeddings;
  fmt::print("{}\n", llmfs::py_repr(input_embeddings.sizes()));  // C2-34
}

// --- 2.9 (bonus): training tokenizers on Korean text ----------------------------------------

// A token as Python shows it: a str when its bytes are whole UTF-8 characters, else bytes
// (b'\xec\x9a', as tiktoken's decode_single_token_bytes).
std::string token_repr(const std::string& bytes) {
  if (llmfs::find_invalid_utf8(bytes) == std::string::npos) return llmfs::py_repr_str(bytes);
  std::string out = "b'";
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    if (b == '\\' || b == '\'') {
      out += fmt::format("\\{}", c);
    } else if (b >= 0x20 && b < 0x7F) {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", b);
    }
  }
  return out + "'";
}

void section_2_9(const Ch02Config& cfg) {
  const std::string text = read_text(cfg.bonus.text);
  fmt::print("# {}: {} characters, {} bytes (UTF-8)\n\n", cfg.bonus.text,
             llmfs::group_thousands(llmfs::utf8_length(text)),
             llmfs::group_thousands(static_cast<int64_t>(text.size())));
  const auto gpt2 = llmfs::BPETokenizer::gpt2();
  const auto bpe = llmfs::train_bpe(text, cfg.bonus.bpe);
  const auto sp = llmfs::SentencePieceTokenizer::train(text, cfg.bonus.sentencepiece);
  llmfs::EncodeOptions as_text;
  as_text.special_as_text = true;
  const auto row = [&](const std::string& label, const llmfs::Tokenizer& tok) {
    const auto ids = tok.encode(text, as_text);
    const bool lossless = tok.decode(ids) == text;
    fmt::print("{:<50} {:>7} tokens  {:.2f} chars/token  round trip {}\n", label,
               llmfs::group_thousands(static_cast<int64_t>(ids.size())),
               static_cast<double>(llmfs::utf8_length(text)) / static_cast<double>(ids.size()),
               lossless ? "exact" : "LOSSY");
  };
  row("GPT-2 BPE (50,257 tokens)", gpt2);
  row(fmt::format("byte-level BPE trained here ({} tokens)", bpe.vocab_size()), bpe);
  row(fmt::format("SentencePiece {} trained here ({} pieces)", cfg.bonus.sentencepiece.model_type,
                  sp.vocab_size()),
      sp);

  const std::string phrase = "운수 좋은 날";
  fmt::print("\n# {} as tokens (bytes where a token ends inside a character)\n", phrase);
  const auto show = [&](const std::string& label, const llmfs::BPETokenizer& tok) {
    std::vector<std::string> pieces;
    for (const int64_t id : tok.encode(phrase)) pieces.push_back(token_repr(tok.token_bytes(id)));
    fmt::print("{:<14} [{}]\n", label, fmt::join(pieces, ", "));
  };
  show("GPT-2", gpt2);
  show("trained BPE", bpe);
  std::vector<std::string> pieces;
  for (const int64_t id : sp.encode(phrase)) pieces.push_back(llmfs::py_repr_str(sp.piece(id)));
  fmt::print("{:<14} [{}]\n", "SentencePiece", fmt::join(pieces, ", "));
}

// --- Subcommands ----------------------------------------------------------------------------

int run_encode(const Ch02Config& cfg, const std::string& input, const std::string& special) {
  const auto tokenizer = llmfs::make_tokenizer(cfg.tokenizer);
  const std::string text = read_text(input);
  llmfs::EncodeOptions options;
  options.allow_all_special = special == "allow";
  options.special_as_text = special == "text";
  const auto ids = tokenizer->encode(text, options);
  spdlog::info("{}: {} bytes -> {} tokens ({})", input == "-" ? "stdin" : input, text.size(),
               ids.size(), tokenizer->name());
  std::string out;
  out.reserve(ids.size() * 6);
  for (std::size_t i = 0; i < ids.size(); ++i)
    fmt::format_to(std::back_inserter(out), "{}{}", i ? " " : "", ids[i]);
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int run_decode(const Ch02Config& cfg, const std::string& input) {
  const auto tokenizer = llmfs::make_tokenizer(cfg.tokenizer);
  std::istringstream in(read_text(input));
  std::vector<int64_t> ids;
  for (std::string word; in >> word;) {
    int64_t id = 0;
    const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
    if (ec != std::errc() || end != word.data() + word.size()) {
      llmfs::fail("{}: token {} is {}, not an integer id", input, ids.size() + 1,
                  llmfs::py_repr_str(word));
    }
    ids.push_back(id);
  }
  const std::string text = tokenizer->decode(ids);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

// tokenizer.yaml beside a trained tokenizer: a config that `ch02 encode --config` takes.
std::string tokenizer_yaml(const std::string& how,
                           const std::vector<std::pair<std::string, std::string>>& keys) {
  std::string yaml = fmt::format(
      "# Written by `ch02 {}`. Use it with: ch02 encode --config <this file> --input "
      "FILE\ntokenizer:\n",
      how);
  for (const auto& [key, value] : keys) yaml += fmt::format("  {}: {}\n", key, value);
  return yaml;
}

int run_train_bpe(const TrainBPEConfig& cfg, const std::string& resolved_yaml) {
  const std::string text = read_text(cfg.input);
  spdlog::stopwatch watch;
  const auto tokenizer = llmfs::train_bpe(text, cfg.trainer, [](int64_t done, int64_t wanted) {
    spdlog::debug("train-bpe: {} / {} merges", done, wanted);
  });
  spdlog::info("trained {} merges in {:.2f} s", tokenizer.mergeable_count() - 256, watch);
  const auto dir = std::filesystem::absolute(cfg.output_dir);
  tokenizer.save_gpt2(dir);
  llmfs::write_file_atomic(
      dir / "tokenizer.yaml",
      tokenizer_yaml("train-bpe", {{"kind", "bpe"},
                                   {"encoder_json", (dir / "encoder.json").string()},
                                   {"vocab_bpe", (dir / "vocab.bpe").string()}}));
  llmfs::write_resolved_config(dir.string(), resolved_yaml);
  const auto ids = tokenizer.encode(text, llmfs::EncodeOptions{{}, true, false});
  fmt::print("vocabulary: {} tokens (256 bytes, {} merges, {} special)\n", tokenizer.vocab_size(),
             tokenizer.mergeable_count() - 256, tokenizer.special_tokens().size());
  fmt::print("{}: {} bytes -> {} tokens\n", cfg.input,
             llmfs::group_thousands(static_cast<int64_t>(text.size())),
             llmfs::group_thousands(static_cast<int64_t>(ids.size())));
  fmt::print("wrote {}/{{encoder.json, vocab.bpe, tokenizer.yaml, config.yaml}}\n", dir.string());
  return 0;
}

int run_train_sentencepiece(const TrainSentencePieceConfig& cfg,
                            const std::string& resolved_yaml) {
  const std::string text = read_text(cfg.input);
  spdlog::stopwatch watch;
  const auto tokenizer = llmfs::SentencePieceTokenizer::train(text, cfg.trainer);
  spdlog::info("trained a {} model in {:.2f} s", cfg.trainer.model_type, watch);
  const auto dir = std::filesystem::absolute(cfg.output_dir);
  tokenizer.save(dir / "tokenizer.model");
  llmfs::write_file_atomic(
      dir / "tokenizer.yaml",
      tokenizer_yaml("train-sentencepiece",
                     {{"kind", "sentencepiece"}, {"model", (dir / "tokenizer.model").string()}}));
  llmfs::write_resolved_config(dir.string(), resolved_yaml);
  const auto ids = tokenizer.encode(text, llmfs::EncodeOptions{{}, true, false});
  fmt::print("vocabulary: {} pieces ({})\n", tokenizer.vocab_size(), cfg.trainer.model_type);
  fmt::print("{}: {} bytes -> {} tokens\n", cfg.input,
             llmfs::group_thousands(static_cast<int64_t>(text.size())),
             llmfs::group_thousands(static_cast<int64_t>(ids.size())));
  fmt::print("wrote {}/{{tokenizer.model, tokenizer.vocab, tokenizer.yaml, config.yaml}}\n",
             dir.string());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Chapter 2: Working with text data"};
  llmfs::CommonOptions common;
  llmfs::add_common_options(app, common);
  std::string only_section, input = "-", tokenizer_kind, special = "error";
  app.add_option("--section", only_section, "Run one section, e.g. 2.6");
  auto* encode = app.add_subcommand("encode", "Print the token ids of a text file (- for stdin)");
  auto* decode =
      app.add_subcommand("decode", "Print the text of token ids read from a file (- for stdin)");
  auto* train_bpe =
      app.add_subcommand("train-bpe", "Train a byte-level BPE tokenizer (config: train_bpe)");
  auto* train_sp = app.add_subcommand("train-sentencepiece",
                                      "Train a SentencePiece model (config: train_sentencepiece)");
  for (auto* sub : {encode, decode}) {
    sub->add_option("--input", input, "Input file, or - for stdin (default)");
    sub->add_option("--tokenizer", tokenizer_kind, "Shorthand for tokenizer.kind=...")
        ->check(CLI::IsMember({"gpt2", "bpe", "sentencepiece", "simple"}));
  }
  encode
      ->add_option("--special", special,
                   "Special tokens in the text: error (default, as tiktoken), allow, text")
      ->check(CLI::IsMember({"error", "allow", "text"}));
  for (auto* sub : {encode, decode, train_bpe, train_sp}) llmfs::add_common_options(*sub, common);
  if (const auto code = llmfs::parse_command_line(app, argc, argv)) return *code;

  return llmfs::run_main([&] {
    if (!tokenizer_kind.empty()) common.overrides.push_back("tokenizer.kind=" + tokenizer_kind);
    const auto cfg = llmfs::load_config<Ch02Config>(common, parse_ch02_config);
    if (encode->parsed()) return run_encode(cfg, input, special);
    if (decode->parsed()) return run_decode(cfg, input);
    if (train_bpe->parsed()) return run_train_bpe(cfg.train_bpe, common.resolved_yaml);
    if (train_sp->parsed()) return run_train_sentencepiece(cfg.train_sentencepiece, common.resolved_yaml);
    return llmfs::run_sections(
        {{"2.1", "Understanding word embeddings", [&] { section_2_1(); }},
         {"2.2", "Tokenizing text", [&] { section_2_2(cfg); }},
         {"2.3", "Converting tokens into token IDs", [&] { section_2_3(cfg); }},
         {"2.4", "Adding special context tokens", [&] { section_2_4(cfg); }},
         {"2.5", "Byte pair encoding", [&] { section_2_5(); }},
         {"2.6", "Data sampling with a sliding window", [&] { section_2_6(cfg); }},
         {"2.7", "Creating token embeddings", [&] { section_2_7(); }},
         {"2.8", "Encoding word positions", [&] { section_2_8(cfg); }},
         {"2.9", "Bonus: training tokenizers on Korean text", [&] { section_2_9(cfg); }}},
        only_section);
  });
}
