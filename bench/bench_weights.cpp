// Checkpoint loading speed: reading every tensor of a safetensors or .pth file into memory, and
// building a GPTModel and loading GPT-2 weights into it (load_weights), best of N runs each.
// Prints one line of JSON per measurement for scripts/bench_weights.sh:
//   {"what": "read:safetensors", "path": "...", "bytes": 497759232, "best_s": 0.06}
// Reading gives tensors over the mapped file (as safetensors.torch.load_file does); loading copies
// into the model's parameters.
//
//   bench_weights --read FILE... [--load PATH --model-config config.json] [--repeat 3]
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <limits>

#include "llmfs/checkpoint/gpt2_weights.h"
#include "llmfs/checkpoint/pth.h"
#include "llmfs/checkpoint/safetensors.h"
#include "llmfs/config/cli.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Best wall time of `repeat` runs of `run`.
template <typename F>
double best_of(int repeat, F&& run) {
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    best = std::min(best, seconds_since(start));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Checkpoint reading and GPT-2 weight loading speed"};
  std::vector<std::string> read_files;
  std::string load_path;
  std::string model_config;
  int repeat = 3;
  app.add_option("--read", read_files, "safetensors / .pth files to read completely");
  app.add_option("--load", load_path, "weights to load into a GPTModel (file or HF folder)");
  app.add_option("--model-config", model_config, "config.json or YAML (default: beside --load)");
  app.add_option("--repeat", repeat, "Runs; the best is reported")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  return llmfs::run_main([&] {
    for (const auto& file : read_files) {
      const bool is_pth = std::filesystem::path(file).extension() != ".safetensors";
      int64_t bytes = 0;
      const double best = best_of(repeat, [&] {
        const auto tensors = is_pth ? llmfs::load_pth(file) : llmfs::load_safetensors(file);
        bytes = 0;
        for (const auto& [name, t] : tensors) bytes += t.numel() * t.element_size();
      });
      fmt::print("{{\"what\": \"read:{}\", \"path\": \"{}\", \"bytes\": {}, \"best_s\": {:.4f}}}\n",
                 is_pth ? "pth" : "safetensors", file, bytes, best);
      std::fflush(stdout);
    }
    if (!load_path.empty()) {
      const auto cfg = model_config.empty() ? llmfs::model_config_for(load_path)
                                            : llmfs::read_model_config(model_config);
      const double build = best_of(repeat, [&] { llmfs::GPTModel model(cfg); });
      llmfs::GPTModel existing(cfg);
      const double load = best_of(repeat, [&] { llmfs::load_weights(existing, load_path); });
      const double both = best_of(repeat, [&] {
        llmfs::GPTModel model(cfg);
        llmfs::load_weights(model, load_path);
      });
      fmt::print("{{\"what\": \"build\", \"best_s\": {:.4f}}}\n", build);
      fmt::print("{{\"what\": \"load\", \"path\": \"{}\", \"best_s\": {:.4f}}}\n", load_path, load);
      fmt::print("{{\"what\": \"build+load\", \"path\": \"{}\", \"best_s\": {:.4f}}}\n", load_path,
                 both);
    }
    return 0;
  });
}
