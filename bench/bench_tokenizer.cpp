// Encode throughput of the GPT-2 tokenizer on one file, single thread: best of N repetitions.
// Prints one line of JSON for scripts/bench_tokenizer.sh:
//   {"bytes": 1826634, "tokens": 472870, "best_s": 0.05, "mb_per_s": 36.5, "tokens_per_s": 9.4e6}
//
//   bench_tokenizer --input middlemarch.txt [--repeat 5] [--ids-out ids.txt]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <limits>

#include "llmfs/config/cli.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/data_files.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"

int main(int argc, char** argv) {
  CLI::App app{"GPT-2 BPE encode throughput (single thread)"};
  std::string input = "middlemarch.txt";
  int repeat = 5;
  std::string ids_out;
  app.add_option("--input", input, "Text file, or a data file name (default: middlemarch.txt)");
  app.add_option("--repeat", repeat, "Repetitions; the best is reported")
      ->check(CLI::PositiveNumber);
  app.add_option("--ids-out", ids_out, "Also write the ids, space-separated, to this file");
  CLI11_PARSE(app, argc, argv);

  return llmfs::run_main([&] {
    const std::string text = llmfs::read_file(llmfs::input_file(input));
    const auto tokenizer = llmfs::BPETokenizer::gpt2();
    llmfs::EncodeOptions options;
    options.allow_all_special =
        true;  // the same setting as the tiktoken side (allowed_special="all")
    std::vector<int64_t> ids;
    double best = std::numeric_limits<double>::infinity();
    for (int r = 0; r < repeat; ++r) {
      const auto start = std::chrono::steady_clock::now();
      ids = tokenizer.encode(text, options);
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      best = std::min(best, took.count());
    }
    if (!ids_out.empty()) {
      std::string s;
      for (std::size_t i = 0; i < ids.size(); ++i) s += fmt::format("{}{}", i ? " " : "", ids[i]);
      llmfs::write_file_atomic(ids_out, s + "\n");
    }
    fmt::print(
        "{{\"bytes\": {}, \"tokens\": {}, \"best_s\": {:.6f}, \"mb_per_s\": {:.3f}, "
        "\"tokens_per_s\": {:.1f}}}\n",
        text.size(), ids.size(), best, static_cast<double>(text.size()) / best / 1e6,
        static_cast<double>(ids.size()) / best);
    return 0;
  });
}
