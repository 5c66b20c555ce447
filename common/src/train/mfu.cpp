// Model FLOPs utilization: a GPT's training FLOPs per token, and the device's matmul rate.
#include "llmfs/train/mfu.h"

#include <chrono>
#include <limits>

namespace llmfs {

double gpt_training_flops_per_token(const GPTConfig& cfg, int64_t seq_len) {
  const auto c = static_cast<double>(cfg.emb_dim);
  const auto layers = static_cast<double>(cfg.n_layers);
  // Per block: W_query, W_key, W_value, out_proj (4 C²) and the feed-forward's C·4C twice.
  const double matrices = layers * 12.0 * c * c + static_cast<double>(cfg.vocab_size) * c;
  return 6.0 * matrices + 12.0 * layers * c * static_cast<double>(seq_len);
}

double measure_matmul_flops(const torch::Device& device, at::ScalarType dtype, double seconds) {
  torch::NoGradGuard no_grad;
  const bool cuda = device.is_cuda();
  const int64_t m = cuda ? 4096 : 512, k = cuda ? 4096 : 768, n = cuda ? 4096 : 3072;
  const auto options = torch::TensorOptions().device(device).dtype(dtype);
  // Constant operands: the global generator, which the training run's draws come from, is not
  // touched (the rate does not depend on the values).
  const auto a = torch::full({m, k}, 0.5, options);
  const auto b = torch::full({k, n}, 0.25, options);
  auto c = torch::empty({m, n}, options);
  const auto sync = [&] {
    if (cuda) torch::cuda::synchronize();
  };
  torch::mm_out(c, a, b);  // first call: the library picks and prepares its kernel
  sync();
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  double best = std::numeric_limits<double>::infinity();
  int runs = 0;
  while (runs < 3 || std::chrono::duration<double>(Clock::now() - start).count() < seconds) {
    const auto t = Clock::now();
    torch::mm_out(c, a, b);
    sync();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t).count());
    if (++runs >= 1000) break;
  }
  return 2.0 * static_cast<double>(m * k * n) / best;
}

}  // namespace llmfs
