#include "llmfs/core/repr.h"

#include <limits>

#include "catch.h"

TEST_CASE("py_repr prints integer tensors as PyTorch does (book C2-27 layout)", "[unit][repr]") {
  const auto t = torch::tensor({{40, 367, 2885, 1464}, {1807, 3619, 402, 271}, {10899, 2138, 257, 7026}});
  CHECK(llmfs::py_repr(t) ==
        "tensor([[   40,   367,  2885,  1464],\n"
        "        [ 1807,  3619,   402,   271],\n"
        "        [10899,  2138,   257,  7026]])");
}

TEST_CASE("py_repr prints float tensors with 4 decimals and aligned columns (book C2-28)", "[unit][repr]") {
  const auto t = torch::tensor({{0.3374f, -0.1778f, -0.1690f}, {0.9178f, 1.5810f, 1.3010f}});
  CHECK(llmfs::py_repr(t) == "tensor([[ 0.3374, -0.1778, -0.1690],\n        [ 0.9178,  1.5810,  1.3010]])");
}

TEST_CASE("py_repr adds requires_grad and grad_fn suffixes", "[unit][repr]") {
  auto w = torch::tensor({1.5f, -2.25f}).requires_grad_(true);
  CHECK(llmfs::py_repr(w) == "tensor([ 1.5000, -2.2500], requires_grad=True)");
  CHECK(llmfs::py_repr_parameter(w) == "Parameter containing:\ntensor([ 1.5000, -2.2500], requires_grad=True)");
  const auto y = w * torch::tensor(2.0f);  // a tensor operand, as Python's `w * 2` makes
  CHECK(llmfs::py_repr(y) == "tensor([ 3.0000, -4.5000], grad_fn=<MulBackward0>)");
}

TEST_CASE("py_repr uses int mode, scientific mode and dtype suffixes like PyTorch", "[unit][repr]") {
  CHECK(llmfs::py_repr(torch::tensor({1.0f, 2.0f, 3.0f})) == "tensor([1., 2., 3.])");
  CHECK(llmfs::py_repr(torch::tensor({1e-5f, 1.0f})) == "tensor([1.0000e-05, 1.0000e+00])");
  CHECK(llmfs::py_repr(torch::tensor({1, 2}, torch::kInt32)) == "tensor([1, 2], dtype=torch.int32)");
  CHECK(llmfs::py_repr(torch::tensor(3.5, torch::kFloat64)) == "tensor(3.5000, dtype=torch.float64)");
  CHECK(llmfs::py_repr(torch::tensor({true, false})) == "tensor([ True, False])");
  CHECK(llmfs::py_repr(torch::empty({0})) == "tensor([])");
  CHECK(llmfs::py_repr(torch::empty({2, 0})) == "tensor([], size=(2, 0))");
}

TEST_CASE("py_repr prints shapes, lists and strings as Python does", "[unit][repr]") {
  CHECK(llmfs::py_repr(torch::zeros({8, 4, 256}).sizes()) == "torch.Size([8, 4, 256])");
  CHECK(llmfs::py_repr(std::vector<int64_t>{290, 4920}) == "[290, 4920]");
  CHECK(llmfs::py_repr(std::vector<std::string>{"Hello", ",", "it's"}) == "['Hello', ',', \"it's\"]");
  CHECK(llmfs::py_repr_str("\" It' s the last") == "'\" It\\' s the last'");
  CHECK(llmfs::py_repr_str("tab\there\n") == "'tab\\there\\n'");
  CHECK(llmfs::py_repr_str("한국어 \xC2\xA0") == "'한국어 \\xa0'");
}

TEST_CASE("group_thousands separates thousands as Python's {:,}", "[unit][repr]") {
  CHECK(llmfs::group_thousands(0) == "0");
  CHECK(llmfs::group_thousands(999) == "999");
  CHECK(llmfs::group_thousands(1000) == "1,000");
  CHECK(llmfs::group_thousands(163009536) == "163,009,536");
  CHECK(llmfs::group_thousands(-1234567) == "-1,234,567");
}

TEST_CASE("py_repr honours sci_mode as torch.set_printoptions does", "[unit][repr]") {
  // BOOK.md C4-05 / C4-06: the same means printed with the automatic choice and with sci_mode off.
  const auto mean = torch::tensor({{-5.9605e-08f}, {1.9868e-08f}});
  CHECK(llmfs::py_repr(mean) == "tensor([[-5.9605e-08],\n        [ 1.9868e-08]])");
  CHECK(llmfs::py_repr(mean, {.sci_mode = false}) == "tensor([[-0.0000],\n        [ 0.0000]])");
  CHECK(llmfs::py_repr(torch::tensor({1.5f, 2.0f}), {.sci_mode = true}) ==
        "tensor([1.5000e+00, 2.0000e+00])");
  CHECK(llmfs::py_repr(torch::tensor({1.0f, 20000.0f}), {.sci_mode = false}) ==
        "tensor([    1., 20000.])");
}

TEST_CASE("py_float prints a double as Python's repr", "[unit][repr]") {
  // Expected strings are Python 3's repr() of the same values.
  CHECK(llmfs::py_float(1.0) == "1.0");
  CHECK(llmfs::py_float(0.1) == "0.1");
  CHECK(llmfs::py_float(0.1 + 0.2) == "0.30000000000000004");
  CHECK(llmfs::py_float(2.0 / 3.0) == "0.6666666666666666");
  CHECK(llmfs::py_float(-2.5) == "-2.5");
  CHECK(llmfs::py_float(0.0) == "0.0");
  CHECK(llmfs::py_float(-0.0) == "-0.0");
  CHECK(llmfs::py_float(123456789.0) == "123456789.0");
  // Fixed notation for exponents -4 to 15, scientific beyond, with two exponent digits at least.
  CHECK(llmfs::py_float(1e-4) == "0.0001");
  CHECK(llmfs::py_float(0.00020173587836325169) == "0.00020173587836325169");
  CHECK(llmfs::py_float(1e-5) == "1e-05");
  CHECK(llmfs::py_float(1e15) == "1000000000000000.0");
  CHECK(llmfs::py_float(1e16) == "1e+16");
  CHECK(llmfs::py_float(1.5e300) == "1.5e+300");
  CHECK(llmfs::py_float(5e-324) == "5e-324");
  CHECK(llmfs::py_float(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(llmfs::py_float(-std::numeric_limits<double>::infinity()) == "-inf");
  CHECK(llmfs::py_float(std::numeric_limits<double>::quiet_NaN()) == "nan");
  CHECK(llmfs::py_float(-std::numeric_limits<double>::quiet_NaN()) == "nan");
}
