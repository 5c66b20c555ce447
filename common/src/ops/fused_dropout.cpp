// Dropout with a counter-based mask: one pass forward, one pass backward, no mask tensor.
#include "llmfs/ops/fused_dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <mutex>

namespace llmfs {

namespace {

// SplitMix64 (Steele, Lea, Flood 2014): a fast 64-bit mixer; two 32-bit keep tests per value.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// dst[i] = keep(i) ? src[i] * scale : 0 for i in [0, n), keep(i) from (seed, i).
template <typename T>
void apply_mask(const T* src, T* dst, int64_t n, uint64_t seed, uint32_t threshold, float scale) {
  // Pairs of elements share one hash: the grain keeps chunks even so pairs never straddle them.
  at::parallel_for(0, (n + 1) / 2, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t pair = begin; pair < end; ++pair) {
      const uint64_t h = splitmix64(seed ^ (static_cast<uint64_t>(pair) * 0xD1B54A32D192ED03ull));
      const int64_t i = 2 * pair;
      const bool keep0 = static_cast<uint32_t>(h) >= threshold;
      dst[i] = keep0 ? static_cast<T>(static_cast<float>(src[i]) * scale) : static_cast<T>(0);
      if (i + 1 < n) {
        const bool keep1 = static_cast<uint32_t>(h >> 32) >= threshold;
        dst[i + 1] = keep1 ? static_cast<T>(static_cast<float>(src[i + 1]) * scale) : static_cast<T>(0);
      }
    }
  });
}

torch::Tensor masked(const torch::Tensor& x, uint64_t seed, double p) {
  const auto src = x.contiguous();
  auto out = torch::empty_like(src, torch::MemoryFormat::Contiguous);
  // Keep when the 32-bit hash >= p * 2^32: probability 1 - p within 2^-32.
  const auto threshold = static_cast<uint32_t>(
      std::min(std::ldexp(p, 32), static_cast<double>(std::numeric_limits<uint32_t>::max())));
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, src.scalar_type(), "fused_dropout", [&] {
    apply_mask<scalar_t>(src.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), src.numel(), seed,
                         threshold, scale);
  });
  return out;
}

class FusedDropoutFunction : public torch::autograd::Function<FusedDropoutFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               double p, int64_t seed) {
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    return masked(x, static_cast<uint64_t>(seed), p);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    // The same mask from the same seed: d(x * m * s)/dx = m * s.
    const double p = ctx->saved_data["p"].toDouble();
    const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    return {masked(grads[0], seed, p), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor fused_dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p == 0.0) return x;
  const bool supported = x.device().is_cpu() &&
                         (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64 ||
                          x.scalar_type() == torch::kBFloat16);
  if (!supported || p >= 1.0) return torch::dropout(x, p, training);
  int64_t seed = 0;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    seed = static_cast<int64_t>(at::check_generator<at::CPUGeneratorImpl>(gen)->random64());
  }
  return FusedDropoutFunction::apply(x, p, seed);
}

}  // namespace llmfs
