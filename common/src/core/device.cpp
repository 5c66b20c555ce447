#include "llmfs/core/device.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include "llmfs/core/error.h"

namespace llmfs {

torch::Device resolve_device(std::string_view name) {
  if (name == "auto") {
    if (torch::cuda::is_available()) return torch::Device(torch::kCUDA, 0);
    if (torch::mps::is_available()) return torch::Device(torch::kMPS);
    return torch::Device(torch::kCPU);
  }
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "mps") {
    if (!torch::mps::is_available()) fail("device 'mps' is not available on this machine");
    return torch::Device(torch::kMPS);
  }
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available()) fail("device '{}' requested but CUDA is not available", name);
    int index = 0;
    if (name.size() > 5) {
      try {
        index = std::stoi(std::string(name.substr(5)));
      } catch (const std::exception&) {
        fail("device '{}': expected cuda:N", name);
      }
    }
    if (index < 0 || index >= static_cast<int>(torch::cuda::device_count())) {
      fail("device '{}': there are {} CUDA devices", name, torch::cuda::device_count());
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  fail("unknown device '{}' (use auto, cpu, cuda, cuda:N or mps)", name);
}

std::vector<std::string> cuda_device_names() {
  // The CUDA driver API is a stable C interface; libtorch links the runtime, not the driver.
  void* lib = ::dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (!lib) return {};
  using InitFn = int (*)(unsigned);
  using CountFn = int (*)(int*);
  using GetFn = int (*)(int*, int);
  using NameFn = int (*)(char*, int, int);
  auto init = reinterpret_cast<InitFn>(::dlsym(lib, "cuInit"));
  auto count = reinterpret_cast<CountFn>(::dlsym(lib, "cuDeviceGetCount"));
  auto get = reinterpret_cast<GetFn>(::dlsym(lib, "cuDeviceGet"));
  auto name = reinterpret_cast<NameFn>(::dlsym(lib, "cuDeviceGetName"));
  std::vector<std::string> names;
  int n = 0;
  if (init && count && get && name && init(0) == 0 && count(&n) == 0) {
    for (int i = 0; i < n; ++i) {
      int device = 0;
      char buffer[256] = {};
      if (get(&device, i) == 0 && name(buffer, sizeof(buffer), device) == 0) names.emplace_back(buffer);
    }
  }
  ::dlclose(lib);
  return names;
}

std::optional<std::string> check_device_name(const std::string& d) {
  const bool cuda_n = d.rfind("cuda:", 0) == 0 && d.size() > 5 &&
                      d.find_first_not_of("0123456789", 5) == std::string::npos;
  if (d == "auto" || d == "cpu" || d == "cuda" || d == "mps" || cuda_n) return std::nullopt;
  return fmt::format("unknown device '{}' (use auto, cpu, cuda, cuda:N or mps)", d);
}

}  // namespace llmfs
