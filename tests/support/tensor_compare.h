#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace llmfs::test {

/// The result of comparing two tensors: ok, and a report that says where they differ.
struct Comparison {
  bool ok = false;
  std::string report;
};

/// Checks |actual - expected| <= atol + rtol * |expected| elementwise (shapes must match):
/// "max |diff| 3.00e-03 at [1, 2, 3]; 1 of 24 outside atol=1e-05 rtol=1e-04".
Comparison compare(const torch::Tensor& actual, const torch::Tensor& expected, double atol, double rtol);

/// A 1-d or 2-d integer tensor as a flat vector.
std::vector<int64_t> to_vector(const torch::Tensor& t);

}  // namespace llmfs::test
