#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmfs {

/// PyTorch's Python repr of a tensor, character for character (torch/_tensor_str.py with the
/// default print options: precision 4, line width 80, summarised beyond 1000 elements), including
/// the `dtype=`, `device=`, `requires_grad=True` and `grad_fn=<...>` suffixes:
///
///   py_repr(torch::tensor({{1, 2}, {3, 4}}))  ->  "tensor([[1, 2],\n        [3, 4]])"
std::string py_repr(const torch::Tensor& tensor);

/// The torch.set_printoptions settings a chapter changes; unset members keep PyTorch's defaults.
struct PrintOptions {
  /// torch.set_printoptions(sci_mode=...): true/false forces scientific/fixed notation; unset
  /// lets PyTorch choose (the book turns it off in §4.2).
  std::optional<bool> sci_mode;
};

/// py_repr under the given print options.
std::string py_repr(const torch::Tensor& tensor, const PrintOptions& options);

/// The repr of an nn.Parameter: "Parameter containing:\n" followed by the tensor's repr.
std::string py_repr_parameter(const torch::Tensor& parameter);

/// A shape as Python prints `tensor.shape`: "torch.Size([8, 4, 256])".
std::string py_repr(c10::IntArrayRef sizes);

/// A Python list of ints: "[40, 367, 2885]".
std::string py_repr(const std::vector<int64_t>& values);

/// A Python list of str: "['Hello', ',', 'world']".
std::string py_repr(const std::vector<std::string>& values);

/// Python's repr of a str (UTF-8 in): quotes chosen and characters escaped as Python does.
std::string py_repr_str(std::string_view text);

/// Python's repr of a float: the shortest digits that read back as the same double, in fixed
/// notation for exponents -4 to 15 (always with a '.': 1.0, 0.0001, 1000000000000000.0) and
/// scientific beyond (1e-05, 1e+16); inf, -inf and nan as Python spells them.
std::string py_float(double value);

/// An integer with thousands separators, as Python's f"{n:,}": 124412160 -> "124,412,160".
std::string group_thousands(int64_t value);

}  // namespace llmfs
