#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmfs {

/// The device a config names: "auto" (CUDA if available, else MPS, else CPU), "cpu", "cuda",
/// "cuda:N" or "mps". A device that is not available is an llmfs::Error saying so.
torch::Device resolve_device(std::string_view name);

/// Why `name` is not a device name resolve_device knows ("unknown device 'x' (use auto, cpu, ...)"),
/// or nothing when it is one. Config parsers check `device:` keys with it.
std::optional<std::string> check_device_name(const std::string& name);

/// The names of the CUDA devices ("NVIDIA H200", ...), read through the driver library; empty
/// when there is no driver or no device.
std::vector<std::string> cuda_device_names();

}  // namespace llmfs
