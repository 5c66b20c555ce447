#include "tensor_compare.h"

#include <fmt/format.h>

namespace llmfs::test {

Comparison compare(const torch::Tensor& actual, const torch::Tensor& expected, double atol, double rtol) {
  if (actual.sizes() != expected.sizes()) {
    return {false, fmt::format("shape mismatch: actual [{}] vs expected [{}]", fmt::join(actual.sizes(), ", "),
                               fmt::join(expected.sizes(), ", "))};
  }
  const auto a = actual.detach().to(torch::kCPU, torch::kFloat64);
  const auto e = expected.detach().to(torch::kCPU, torch::kFloat64);
  const auto diff = (a - e).abs();
  const auto bad = diff > (atol + rtol * e.abs());
  const int64_t n_bad = bad.sum().item<int64_t>();
  if (a.numel() == 0) return {true, "empty"};
  const int64_t flat = diff.flatten().argmax().item<int64_t>();
  std::vector<int64_t> index(a.dim());
  int64_t rest = flat;
  for (int64_t d = a.dim() - 1; d >= 0; --d) {
    index[d] = rest % a.size(d);
    rest /= a.size(d);
  }
  const double max_diff = diff.max().item<double>();
  return {n_bad == 0, fmt::format("max |diff| {:.2e} at [{}]; {} of {} outside atol={:g} rtol={:g}", max_diff,
                                  fmt::join(index, ", "), n_bad, a.numel(), atol, rtol)};
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  const auto flat = t.detach().to(torch::kCPU, torch::kInt64).contiguous().flatten();
  return {flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel()};
}

}  // namespace llmfs::test
