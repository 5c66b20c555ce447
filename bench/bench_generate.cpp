// Greedy generation throughput of GPTModel with random weights (book ch04/03_kv-cache/README):
// the book's uncached loop (generate_text_simple) and the KV-cache path (generate_tokens), best
// of N runs each. Prints one line of JSON per mode for scripts/bench_generate.sh:
//   {"mode": "cached", "prompt_tokens": 4, "new_tokens": 200, "best_s": 1.9, "new_tokens_per_s":
//   105.3, ...}
//
//   bench_generate [--model-config configs/models/gpt2-124M.yaml] [--new-tokens 200]
//                  [--threads 2] [--repeat 3] [--modes uncached,cached,copy] [--device cpu]
//                  [--dtype fp32|bf16] [--no-huge-pages] [--profile]
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <sys/mman.h>
#include <time.h>

#include <ATen/Parallel.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
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

// What a decode step reads once per token: every weight matrix but the embeddings (of which it
// reads a row).
std::vector<torch::Tensor> decode_matrices(const llmfs::GPTModelImpl& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model.named_parameters()) {
    if (p.value().dim() == 2 && p.key().find("emb") == std::string::npos) out.push_back(p.value());
  }
  return out;
}

int64_t bytes_of(const std::vector<torch::Tensor>& tensors) {
  int64_t bytes = 0;
  for (const auto& t : tensors) bytes += t.numel() * static_cast<int64_t>(t.element_size());
  return bytes;
}

// The fastest of `runs` calls of f, in seconds (on a shared machine the best run is the one
// least disturbed by other processes).
template <typename F>
double best_seconds(int runs, F&& f) {
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    best = std::min(best, seconds_since(start));
  }
  return best;
}

// One decode step at ~100 cached positions vs only the linear layers it runs (every weight is
// read once per token, so these products are the floor on a memory-bound CPU).
void profile_decode(llmfs::GPTModel& model, const torch::Tensor& idx) {
  c10::InferenceMode inference;
  auto cache = model->make_kv_cache();
  model(torch::randint(0, 50257, {1, 100}, idx.options()), &cache);
  const auto token = idx.narrow(1, 0, 1);
  constexpr int kSteps = 20;
  const double step = best_seconds(kSteps, [&] { model(token, &cache); });

  const std::vector<torch::Tensor> weights = decode_matrices(*model);
  const auto dtype = weights.front().scalar_type();
  const auto x = torch::randn({1, 1, model->config().emb_dim}).to(dtype);
  const auto h = torch::randn({1, 1, 4 * model->config().emb_dim}).to(dtype);
  const double floor = best_seconds(kSteps, [&] {
    for (const auto& w : weights) torch::linear(w.size(1) == x.size(2) ? x : h, w);
  });
  const llmfs::KernelOptions fast{.native_kernels = true};
  const double gemv = best_seconds(kSteps, [&] {
    for (const auto& w : weights) llmfs::linear(w.size(1) == x.size(2) ? x : h, w, {}, fast);
  });
  const int64_t bytes = bytes_of(weights);
  const auto gb_per_s = [&](double s) { return static_cast<double>(bytes) / s / 1e9; };
  fmt::print(
      "{{\"mode\": \"profile\", \"decode_step_ms\": {:.2f}, \"linear_only_ms\": {:.2f}, "
      "\"weight_mb\": {:.1f}, \"linear_gb_per_s\": {:.2f}, \"fast_gemv_only_ms\": {:.2f}, "
      "\"fast_gemv_gb_per_s\": {:.2f}}}\n",
      step * 1e3, floor * 1e3, static_cast<double>(bytes) / 1e6, gb_per_s(floor), gemv * 1e3,
      gb_per_s(gemv));
}

// STREAM's copy (a[i] = b[i]) over two 256 MiB arrays, split over the intra-op threads; bytes
// counted as STREAM counts them, read plus written. The best of 10 runs, in GB/s: the memory
// bandwidth a decode step, which reads every weight once, is measured against.
double copy_bandwidth() {
  constexpr int64_t kBytes = int64_t{256} << 20;
  constexpr size_t kHugePage = size_t{2} << 20;
  // On huge pages, as the model's weights are (place_on_huge_pages): the copy's best case.
  const auto huge = [&] {
    void* p = std::aligned_alloc(kHugePage, kBytes);
    if (p == nullptr) llmfs::fail("copy bandwidth: out of memory");
    ::madvise(p, kBytes, MADV_HUGEPAGE);
    return std::unique_ptr<uint8_t, void (*)(void*)>(static_cast<uint8_t*>(p), std::free);
  };
  auto a = huge(), b = huge();
  uint8_t* src = a.get();
  uint8_t* dst = b.get();
  constexpr int64_t kChunk = int64_t{1} << 20;
  // First touch by the threads that copy later (pages land on their memory), then the runs.
  at::parallel_for(0, kBytes / kChunk, 1, [&](int64_t begin, int64_t end) {
    std::memset(src + begin * kChunk, 1, (end - begin) * kChunk);
    std::memset(dst + begin * kChunk, 0, (end - begin) * kChunk);
  });
  const double s = best_seconds(10, [&] {
    at::parallel_for(0, kBytes / kChunk, 1, [&](int64_t begin, int64_t end) {
      std::memcpy(dst + begin * kChunk, src + begin * kChunk, (end - begin) * kChunk);
    });
  });
  return 2.0 * static_cast<double>(kBytes) / s / 1e9;
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
  std::string dtype = "fp32";
  app.add_option("--dtype", dtype, "Weights and activations: fp32 or bf16 (logits stay float32)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--model-config", model_config, "Model YAML (default: the 124M preset)");
  app.add_option("--new-tokens", new_tokens, "Tokens to generate")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "Intra-op threads (0: LibTorch's default)");
  app.add_option("--repeat", repeat, "Runs per mode; the best is reported")
      ->check(CLI::PositiveNumber);
  app.add_option("--modes", modes, "uncached, cached, copy (the memory's copy bandwidth)")
      ->delimiter(',');
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
    if (dtype == "bf16") model->to(torch::kBFloat16);
    model->eval();
    if (huge_pages && device.is_cpu()) llmfs::place_on_huge_pages(*model);
    const auto idx = torch::tensor(prompt, torch::kLong).unsqueeze(0).to(device);

    if (profile) profile_decode(model, idx);
    const int64_t weight_bytes = bytes_of(decode_matrices(*model));
    torch::Tensor reference;
    for (const auto& mode : modes) {
      if (mode == "copy") {
        fmt::print("{{\"mode\": \"copy\", \"threads\": {}, \"copy_gb_per_s\": {:.2f}}}\n",
                   at::get_num_threads(), copy_bandwidth());
        std::fflush(stdout);
        continue;
      }
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
          "{{\"mode\": \"{}\", \"dtype\": \"{}\", \"attention\": \"{}\", \"native_kernels\": {}, \"threads\": {}, \"prompt_tokens\": {}, "
          "\"new_tokens\": {}, \"best_s\": {:.4f}, \"best_cpu_s\": {:.4f}, "
          "\"new_tokens_per_s\": {:.2f}, \"total_tokens_per_s\": {:.2f}, \"huge_pages\": {}, "
          "\"same_ids_as_first_mode\": {}, \"weight_bytes_per_token\": {}, \"ids\": [{}]}}\n",
          mode, dtype, cfg.attention, cfg.native_kernels ? "true" : "false", at::get_num_threads(), idx.size(1), generated, best, best_cpu,
          static_cast<double>(generated) / best, static_cast<double>(out.size(1)) / best,
          huge_pages && device.is_cpu() ? "true" : "false", same ? "true" : "false", weight_bytes,
          fmt::join(std::vector<int64_t>(out[0].data_ptr<int64_t>() + idx.size(1),
                                         out[0].data_ptr<int64_t>() + out.size(1)),
                    ", "));
      std::fflush(stdout);
    }
    return 0;
  });
}
