// Greedy generation throughput of GPTModel with random weights (book ch04/03_kv-cache/README):
// the book's uncached loop (generate_text_simple) and the KV-cache path (generate_tokens), best
// of N runs each. Prints one line of JSON per mode for scripts/bench_generate.sh:
//   {"mode": "cached", "prompt_tokens": 4, "new_tokens": 200, "best_s": 1.9, "new_tokens_per_s":
//   105.3, ...}
//
//   bench_generate [--model-config configs/models/gpt2-124M.yaml] [--new-tokens 200]
//                  [--threads 2] [--repeat 3] [--modes uncached,cached] [--device cpu]
//                  [--no-huge-pages] [--profile]
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <time.h>

#include <chrono>
#include <limits>

#include "llmfs/config/cli.h"
#include "llmfs/config/config_node.h"
#include "llmfs/core/device.h"
#include "llmfs/core/huge_pages.h"
#include "llmfs/ops/linear.h"
#include "llmfs/generate/generate.h"
#include "llmfs/model/gpt_model.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// CPU time of the whole process (all threads): on a shared machine it leaves out the time other
// processes had the cores, which wall-clock time does not.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// One decode step at ~100 cached positions vs only the linear layers it runs (every weight is
// read once per token, so these products are the floor on a memory-bound CPU).
void profile_decode(llmfs::GPTModel& model, const torch::Tensor& idx) {
  c10::InferenceMode inference;
  auto cache = model->make_kv_cache();
  model(torch::randint(0, 50257, {1, 100}, idx.options()), &cache);
  const auto token = idx.narrow(1, 0, 1);
  constexpr int kSteps = 20;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kSteps; ++i) model(token, &cache);
  const double step = seconds_since(start) / kSteps;

  std::vector<torch::Tensor> weights;
  for (const auto& p : model->named_parameters()) {
    if (p.value().dim() == 2 && p.key().find("emb") == std::string::npos)
      weights.push_back(p.value());
  }
  const auto x = torch::randn({1, 1, model->config().emb_dim});
  const auto h = torch::randn({1, 1, 4 * model->config().emb_dim});
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < kSteps; ++i) {
    for (const auto& w : weights) torch::linear(w.size(1) == x.size(2) ? x : h, w);
  }
  const double floor = seconds_since(start) / kSteps;
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < kSteps; ++i) {
    for (const auto& w : weights) llmfs::linear(w.size(1) == x.size(2) ? x : h, w, {}, llmfs::KernelOptions{.native_kernels = true});
  }
  const double gemv = seconds_since(start) / kSteps;
  int64_t bytes = 0;
  for (const auto& w : weights) bytes += w.numel() * static_cast<int64_t>(w.element_size());
  fmt::print(
      "{{\"mode\": \"profile\", \"decode_step_ms\": {:.2f}, \"linear_only_ms\": {:.2f}, "
      "\"weight_mb\": {:.1f}, \"linear_gb_per_s\": {:.2f}, \"fast_gemv_only_ms\": {:.2f}}}\n",
      step * 1e3, floor * 1e3, static_cast<double>(bytes) / 1e6,
      static_cast<double>(bytes) / floor / 1e9, gemv * 1e3);
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
  bool native_kernels = false;
  bool profile = false;
  bool huge_pages = true;
  app.add_option("--model-config", model_config, "Model YAML (default: the 124M preset)");
  app.add_option("--new-tokens", new_tokens, "Tokens to generate")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "Intra-op threads (0: LibTorch's default)");
  app.add_option("--repeat", repeat, "Runs per mode; the best is reported")
      ->check(CLI::PositiveNumber);
  app.add_option("--modes", modes, "uncached, cached")->delimiter(',');
  app.add_option("--prompt-ids", prompt, "Prompt token ids")->delimiter(',');
  app.add_option("--device", device_name, "cpu, cuda, auto");
  app.add_option("--attention", attention, "Override the model's attention: book or sdpa");
  app.add_flag("--native-kernels", native_kernels,
               "PyTorch's fused layer norm and GELU instead of the book's arithmetic");
  app.add_flag("--profile", profile,
               "Also time one cached decode step against the bare matrix-vector products of its "
               "weights (the memory-bound floor)");
  app.add_flag("!--no-huge-pages", huge_pages, "Keep the weights on ordinary 4 KiB pages");
  CLI11_PARSE(app, argc, argv);

  return llmfs::run_main([&] {
    llmfs::GPTConfig cfg = llmfs::gpt2_config("124M");
    if (!model_config.empty()) {
      llmfs::ConfigDocument doc(model_config, {});
      cfg = llmfs::parse_gpt_config(doc.root());
      doc.finish();
    }
    if (!attention.empty()) cfg.attention = attention;
    if (native_kernels) cfg.native_kernels = true;
    if (threads > 0) at::set_num_threads(threads);
    const auto device = llmfs::resolve_device(device_name);
    torch::manual_seed(123);
    llmfs::GPTModel model(cfg);
    model->to(device);
    model->eval();
    if (huge_pages && device.is_cpu()) llmfs::place_on_huge_pages(*model);
    const auto idx = torch::tensor(prompt, torch::kLong).unsqueeze(0).to(device);

    if (profile) profile_decode(model, idx);
    torch::Tensor reference;
    for (const auto& mode : modes) {
      if (mode != "uncached" && mode != "cached") llmfs::fail("--modes: unknown mode '{}'", mode);
      llmfs::GenerateOptions options;
      options.max_new_tokens = new_tokens;
      options.use_cache = mode == "cached";
      llmfs::GenerateOptions warmup = options;
      warmup.max_new_tokens = 3;
      llmfs::generate(model, idx, warmup);
      double best = std::numeric_limits<double>::infinity();
      double best_cpu = best;
      torch::Tensor out;
      for (int r = 0; r < repeat; ++r) {
        const auto start = std::chrono::steady_clock::now();
        const double cpu_start = process_cpu_seconds();
        out = llmfs::generate(model, idx, options);
        if (device.is_cuda()) torch::cuda::synchronize();
        best = std::min(best, seconds_since(start));
        best_cpu = std::min(best_cpu, process_cpu_seconds() - cpu_start);
      }
      bool same = true;
      if (reference.defined())
        same = torch::equal(out.cpu(), reference);
      else
        reference = out.cpu();
      const int64_t generated = out.size(1) - idx.size(1);
      fmt::print(
          "{{\"mode\": \"{}\", \"attention\": \"{}\", \"native_kernels\": {}, \"threads\": {}, \"prompt_tokens\": {}, "
          "\"new_tokens\": {}, \"best_s\": {:.4f}, \"best_cpu_s\": {:.4f}, "
          "\"new_tokens_per_s\": {:.2f}, \"total_tokens_per_s\": {:.2f}, \"huge_pages\": {}, "
          "\"same_ids_as_first_mode\": {}}}\n",
          mode, cfg.attention, cfg.native_kernels ? "true" : "false", at::get_num_threads(), idx.size(1), generated, best, best_cpu,
          static_cast<double>(generated) / best, static_cast<double>(out.size(1)) / best,
          huge_pages && device.is_cpu() ? "true" : "false", same ? "true" : "false");
      std::fflush(stdout);
    }
    return 0;
  });
}
