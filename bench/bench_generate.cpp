// Greedy generation throughput of GPTModel with random weights (book ch04/03_kv-cache/README):
// the book's uncached loop (generate_text_simple) and the KV-cache path (generate_tokens), best
// of N runs each. Prints one line of JSON per mode for scripts/bench_generate.sh:
//   {"mode": "cached", "prompt_tokens": 4, "new_tokens": 200, "best_s": 1.9, "new_tokens_per_s": 105.3, ...}
//
//   bench_generate [--model-config configs/models/gpt2-124M.yaml] [--new-tokens 200]
//                  [--threads 2] [--repeat 3] [--modes uncached,cached] [--device cpu]
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <limits>

#include "llmfs/config/cli.h"
#include "llmfs/config/config_node.h"
#include "llmfs/core/device.h"
#include "llmfs/generate/generate.h"
#include "llmfs/model/gpt_model.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Greedy generation throughput: uncached vs KV cache (random weights)"};
  std::string model_config;
  int64_t new_tokens = 200;
  int threads = 0;
  int repeat = 3;
  std::vector<std::string> modes = {"uncached", "cached"};
  std::vector<int64_t> prompt = {15496, 11, 314, 716};  // "Hello, I am" (BOOK.md C4-18)
  std::string device_name = "cpu";
  std::string attention;
  app.add_option("--model-config", model_config, "Model YAML (default: the 124M preset)");
  app.add_option("--new-tokens", new_tokens, "Tokens to generate")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "Intra-op threads (0: LibTorch's default)");
  app.add_option("--repeat", repeat, "Runs per mode; the best is reported")->check(CLI::PositiveNumber);
  app.add_option("--modes", modes, "uncached, cached")->delimiter(',');
  app.add_option("--prompt-ids", prompt, "Prompt token ids")->delimiter(',');
  app.add_option("--device", device_name, "cpu, cuda, auto");
  app.add_option("--attention", attention, "Override the model's attention: book or sdpa");
  CLI11_PARSE(app, argc, argv);

  return llmfs::run_main([&] {
    llmfs::GPTConfig cfg = llmfs::gpt2_config("124M");
    if (!model_config.empty()) {
      llmfs::ConfigDocument doc(model_config, {});
      cfg = llmfs::parse_gpt_config(doc.root());
      doc.finish();
    }
    if (!attention.empty()) cfg.attention = attention;
    if (threads > 0) at::set_num_threads(threads);
    const auto device = llmfs::resolve_device(device_name);
    torch::manual_seed(123);
    llmfs::GPTModel model(cfg);
    model->to(device);
    model->eval();
    const auto idx = torch::tensor(prompt, torch::kLong).unsqueeze(0).to(device);

    torch::Tensor reference;
    for (const auto& mode : modes) {
      if (mode != "uncached" && mode != "cached") llmfs::fail("--modes: unknown mode '{}'", mode);
      llmfs::GenerateOptions options;
      options.max_new_tokens = new_tokens;
      options.use_cache = mode == "cached";
      llmfs::GenerateOptions warmup = options;
      warmup.max_new_tokens = 3;
      llmfs::generate_tokens(model, idx, warmup);
      double best = std::numeric_limits<double>::infinity();
      torch::Tensor out;
      for (int r = 0; r < repeat; ++r) {
        const auto start = std::chrono::steady_clock::now();
        out = llmfs::generate_tokens(model, idx, options);
        if (device.is_cuda()) torch::cuda::synchronize();
        best = std::min(best, seconds_since(start));
      }
      bool same = true;
      if (reference.defined()) same = torch::equal(out.cpu(), reference);
      else reference = out.cpu();
      const int64_t generated = out.size(1) - idx.size(1);
      fmt::print(
          "{{\"mode\": \"{}\", \"attention\": \"{}\", \"threads\": {}, \"prompt_tokens\": {}, "
          "\"new_tokens\": {}, \"best_s\": {:.4f}, \"new_tokens_per_s\": {:.2f}, "
          "\"total_tokens_per_s\": {:.2f}, \"same_ids_as_first_mode\": {}}}\n",
          mode, cfg.attention, at::get_num_threads(), idx.size(1), generated, best,
          static_cast<double>(generated) / best, static_cast<double>(out.size(1)) / best,
          same ? "true" : "false");
      std::fflush(stdout);
    }
    return 0;
  });
}
