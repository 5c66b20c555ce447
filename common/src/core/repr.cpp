// PyTorch's Python repr of tensors, ported from torch/_tensor_str.py (default print options), so
// that chapter output can be read beside the book, plus the few Python reprs the chapters print
// (str, float, list, torch.Size).
#include "llmfs/core/repr.h"

#include <fmt/format.h>
#include <unicode/uchar.h>

#include <algorithm>
#include <cmath>

#include "llmfs/core/utf8.h"

namespace llmfs {

namespace {

// torch/_tensor_str.py PRINT_OPTS defaults.
constexpr int kPrecision = 4;
constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdgeItems = 3;
constexpr int64_t kLineWidth = 80;

std::string dtype_name(c10::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return "torch.float32";
    case torch::kFloat64: return "torch.float64";
    case torch::kFloat16: return "torch.float16";
    case torch::kBFloat16: return "torch.bfloat16";
    case torch::kInt64: return "torch.int64";
    case torch::kInt32: return "torch.int32";
    case torch::kInt16: return "torch.int16";
    case torch::kInt8: return "torch.int8";
    case torch::kUInt8: return "torch.uint8";
    case torch::kBool: return "torch.bool";
    default: return std::string("torch.") + c10::toString(type);
  }
}

// The values of a tensor as Python would see them through .tolist(): doubles for floating point,
// int64 for integers, 0/1 for bool. Floating half types are widened to float first, as
// _tensor_str does.
struct Values {
  enum class Kind { kFloat, kInt, kBool } kind = Kind::kFloat;
  torch::Tensor data;  // contiguous, CPU, float64 or int64

  double f(int64_t i) const { return data.data_ptr<double>()[i]; }
  int64_t n(int64_t i) const { return data.data_ptr<int64_t>()[i]; }
};

Values to_values(const torch::Tensor& t) {
  Values v;
  auto cpu = t.detach().to(torch::kCPU).contiguous();
  if (cpu.is_floating_point()) {
    v.kind = Values::Kind::kFloat;
    // float32 -> float64 is exact; half types go through float like Python's .float().
    v.data = cpu.to(torch::kFloat32).to(torch::kFloat64).contiguous();
  } else {
    v.kind = cpu.scalar_type() == torch::kBool ? Values::Kind::kBool : Values::Kind::kInt;
    v.data = cpu.to(torch::kInt64).contiguous();
  }
  return v;
}

std::string format_fixed(double value, int precision) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return fmt::format("{:.{}f}", value, precision);
}

std::string format_sci(double value, int precision) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return fmt::format("{:.{}e}", value, precision);
}

// torch/_tensor_str.py _Formatter: decides int/fixed/scientific mode and the column width from
// the (summarised) values, then formats each element right-aligned to that width.
class Formatter {
 public:
  Formatter(const Values& values, std::optional<bool> sci_mode) : kind_(values.kind) {
    const int64_t count = values.data.numel();
    if (kind_ != Values::Kind::kFloat) {
      for (int64_t i = 0; i < count; ++i) {
        max_width_ = std::max<size_t>(max_width_, format_integral(values.n(i)).size());
      }
      return;
    }
    std::vector<double> finite;  // nonzero finite values
    for (int64_t i = 0; i < count; ++i) {
      const double x = values.f(i);
      if (std::isfinite(x) && x != 0.0) finite.push_back(x);
    }
    if (finite.empty()) return;
    double lo = std::abs(finite[0]), hi = lo;
    for (double x : finite) {
      lo = std::min(lo, std::abs(x));
      hi = std::max(hi, std::abs(x));
      if (x != std::ceil(x)) int_mode_ = false;
    }
    // torch.set_printoptions(sci_mode=...) overrides the automatic choice, before the widths.
    sci_mode_ = sci_mode.value_or(hi / lo > 1000.0 || hi > 1.0e8 || lo < 1.0e-4);
    if (sci_mode_) {
      for (double x : finite) max_width_ = std::max(max_width_, format_sci(x, kPrecision).size());
    } else if (int_mode_) {
      for (double x : finite) max_width_ = std::max(max_width_, format_fixed(x, 0).size() + 1);
    } else {
      for (double x : finite) {
        max_width_ = std::max(max_width_, format_fixed(x, kPrecision).size());
      }
    }
  }

  size_t width() const { return max_width_; }

  std::string format(const Values& values, int64_t index) const {
    std::string s;
    if (kind_ == Values::Kind::kFloat) {
      const double x = values.f(index);
      if (sci_mode_) {
        s = format_sci(x, kPrecision);
      } else if (int_mode_) {
        s = format_fixed(x, 0);
        if (std::isfinite(x)) s += ".";
      } else {
        s = format_fixed(x, kPrecision);
      }
    } else {
      s = format_integral(values.n(index));
    }
    if (s.size() < max_width_) s.insert(0, max_width_ - s.size(), ' ');
    return s;
  }

 private:
  std::string format_integral(int64_t x) const {
    if (kind_ == Values::Kind::kBool) return x ? "True" : "False";
    return std::to_string(x);
  }

  Values::Kind kind_;
  bool int_mode_ = true;
  bool sci_mode_ = false;
  size_t max_width_ = 1;
};

// get_summarized_data: the first and last kEdgeItems entries along every long dimension.
torch::Tensor summarized(const torch::Tensor& t) {
  if (t.dim() == 0) return t;
  if (t.dim() == 1) {
    if (t.size(0) > 2 * kEdgeItems) {
      return torch::cat({t.narrow(0, 0, kEdgeItems), t.narrow(0, t.size(0) - kEdgeItems, kEdgeItems)});
    }
    return t;
  }
  std::vector<torch::Tensor> rows;
  if (t.size(0) > 2 * kEdgeItems) {
    for (int64_t i = 0; i < kEdgeItems; ++i) rows.push_back(summarized(t[i]));
    for (int64_t i = t.size(0) - kEdgeItems; i < t.size(0); ++i) rows.push_back(summarized(t[i]));
  } else {
    for (int64_t i = 0; i < t.size(0); ++i) rows.push_back(summarized(t[i]));
  }
  return torch::stack(rows);
}

std::string vector_str(const torch::Tensor& t, int64_t indent, bool summarize, const Formatter& fmt) {
  const int64_t element_length = static_cast<int64_t>(fmt.width()) + 2;
  const int64_t per_line = std::max<int64_t>(1, (kLineWidth - indent) / element_length);
  const Values values = to_values(t);
  const int64_t n = t.size(0);
  std::vector<std::string> data;
  if (summarize && n > 2 * kEdgeItems) {
    for (int64_t i = 0; i < kEdgeItems; ++i) data.push_back(fmt.format(values, i));
    data.emplace_back(" ...");
    for (int64_t i = n - kEdgeItems; i < n; ++i) data.push_back(fmt.format(values, i));
  } else {
    for (int64_t i = 0; i < n; ++i) data.push_back(fmt.format(values, i));
  }
  std::string out = "[";
  for (size_t i = 0; i < data.size(); ++i) {
    if (i > 0) {
      if (static_cast<int64_t>(i) % per_line == 0) {
        out += ",\n" + std::string(indent + 1, ' ');
      } else {
        out += ", ";
      }
    }
    out += data[i];
  }
  return out + "]";
}

std::string tensor_str(const torch::Tensor& t, int64_t indent, bool summarize, const Formatter& fmt) {
  if (t.dim() == 0) return fmt.format(to_values(t), 0);
  if (t.dim() == 1) return vector_str(t, indent, summarize, fmt);
  std::vector<std::string> slices;
  const int64_t n = t.size(0);
  if (summarize && n > 2 * kEdgeItems) {
    for (int64_t i = 0; i < kEdgeItems; ++i) slices.push_back(tensor_str(t[i], indent + 1, summarize, fmt));
    slices.emplace_back("...");
    for (int64_t i = n - kEdgeItems; i < n; ++i) slices.push_back(tensor_str(t[i], indent + 1, summarize, fmt));
  } else {
    for (int64_t i = 0; i < n; ++i) slices.push_back(tensor_str(t[i], indent + 1, summarize, fmt));
  }
  const std::string sep = "," + std::string(t.dim() - 1, '\n') + std::string(indent + 1, ' ');
  std::string out = "[";
  for (size_t i = 0; i < slices.size(); ++i) {
    if (i > 0) out += sep;
    out += slices[i];
  }
  return out + "]";
}

// _add_suffixes, including its way of measuring the last line.
std::string add_suffixes(const std::string& body, const std::vector<std::string>& suffixes, int64_t indent) {
  std::string out = body;
  const auto newline = body.rfind('\n');
  int64_t last_line_len = static_cast<int64_t>(body.size()) -
                          (newline == std::string::npos ? -1 : static_cast<int64_t>(newline)) + 1;
  for (const auto& suffix : suffixes) {
    const auto len = static_cast<int64_t>(suffix.size());
    if (last_line_len + len + 2 > kLineWidth) {
      out += ",\n" + std::string(indent, ' ') + suffix;
      last_line_len = indent + len;
    } else {
      out += ", " + suffix;
      last_line_len += len + 2;
    }
  }
  return out + ")";
}

std::string grad_fn_name(const torch::Tensor& t) {
  const auto& fn = t.grad_fn();
  if (!fn) return {};
  std::string name = fn->name();
  const auto colon = name.rfind("::");
  return colon == std::string::npos ? name : name.substr(colon + 2);
}

}  // namespace

std::string py_repr(const torch::Tensor& tensor) { return py_repr(tensor, PrintOptions{}); }

std::string py_repr(const torch::Tensor& tensor, const PrintOptions& options) {
  const std::string prefix = "tensor(";
  const auto indent = static_cast<int64_t>(prefix.size());
  std::vector<std::string> suffixes;
  if (!tensor.device().is_cpu()) suffixes.push_back("device='" + tensor.device().str() + "'");

  std::string body;
  const auto type = tensor.scalar_type();
  const bool default_dtype = type == torch::kFloat32 || type == torch::kInt64 || type == torch::kBool;
  if (tensor.numel() == 0) {
    if (tensor.dim() != 1) {  // str(tuple(shape)); a 1-d empty tensor shows no size
      suffixes.push_back(fmt::format("size=({})", fmt::join(tensor.sizes(), ", ")));
    }
    if (type != torch::kFloat32) suffixes.push_back("dtype=" + dtype_name(type));
    body = "[]";
  } else {
    if (!default_dtype) suffixes.push_back("dtype=" + dtype_name(type));
    const auto data = tensor.detach().to(torch::kCPU);
    const bool summarize = data.numel() > kThreshold;
    const Formatter fmt(to_values(summarize ? summarized(data) : data), options.sci_mode);
    body = tensor_str(data, indent, summarize, fmt);
  }

  const std::string grad_fn = grad_fn_name(tensor);
  if (!grad_fn.empty()) {
    suffixes.push_back("grad_fn=<" + grad_fn + ">");
  } else if (tensor.requires_grad()) {
    suffixes.emplace_back("requires_grad=True");
  }
  return add_suffixes(prefix + body, suffixes, indent);
}

std::string py_repr_parameter(const torch::Tensor& parameter) {
  return "Parameter containing:\n" + py_repr(parameter);
}

std::string py_repr(c10::IntArrayRef sizes) {
  return fmt::format("torch.Size([{}])", fmt::join(sizes, ", "));
}

std::string py_repr(const std::vector<int64_t>& values) {
  return fmt::format("[{}]", fmt::join(values, ", "));
}

std::string py_repr(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += py_repr_str(values[i]);
  }
  return out + "]";
}

std::string py_repr_str(std::string_view text) {
  const std::string valid = utf8_replace_invalid(text);
  const bool has_single = valid.find('\'') != std::string::npos;
  const bool has_double = valid.find('"') != std::string::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  std::size_t pos = 0;
  while (pos < valid.size()) {
    const Utf8Step step = utf8_step(valid, pos);
    const char32_t c = step.code_point;
    if (c == static_cast<char32_t>(quote) || c == U'\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == U'\t') {
      out += "\\t";
    } else if (c == U'\n') {
      out += "\\n";
    } else if (c == U'\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned>(c));
    } else if (c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      // Python's str.isprintable: everything but Cc, Cf, Cs, Co, Cn and separators other than space.
      const auto category = u_charType(static_cast<UChar32>(c));
      const bool printable = !(category == U_CONTROL_CHAR || category == U_FORMAT_CHAR ||
                               category == U_SURROGATE || category == U_PRIVATE_USE_CHAR ||
                               category == U_UNASSIGNED || category == U_LINE_SEPARATOR ||
                               category == U_PARAGRAPH_SEPARATOR || category == U_SPACE_SEPARATOR);
      if (printable) {
        out.append(valid, pos, step.length);
      } else if (c <= 0xFF) {
        out += fmt::format("\\x{:02x}", static_cast<unsigned>(c));
      } else if (c <= 0xFFFF) {
        out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
      } else {
        out += fmt::format("\\U{:08x}", static_cast<unsigned>(c));
      }
    }
    pos += step.length;
  }
  out += quote;
  return out;
}

std::string py_float(double value) {
  if (std::isnan(value)) return "nan";  // fmt would write "-nan" for a negative NaN
  // fmt's shortest round-trip format switches to an exponent exactly where Python's repr does
  // (below 1e-4, from 1e16) and writes it the same way (e-05, e+16); Python adds ".0" to integers.
  std::string s = fmt::format("{}", value);
  if (s.find_first_of(".ei") == std::string::npos) s += ".0";
  return s;
}

std::string group_thousands(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out;
  const size_t n = digits.size();
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

}  // namespace llmfs
