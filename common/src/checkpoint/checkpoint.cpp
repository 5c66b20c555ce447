// Checkpoint folders and tensor files: the `latest` pointer, strict loading of model state.
#include "llmfs/checkpoint/checkpoint.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "llmfs/checkpoint/safetensors.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"

namespace fs = std::filesystem;

namespace llmfs {

namespace {

std::string shape_str(c10::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

}  // namespace

// --- Tensor files ---

void write_tensor_file(const fs::path& path, const std::map<std::string, torch::Tensor>& tensors) {
  std::map<std::string, torch::Tensor> cpu;
  for (const auto& [name, t] : tensors) cpu[name] = t.detach().cpu().contiguous();
  save_safetensors(path, cpu, {{"format", "pt"}});
}

std::map<std::string, torch::Tensor> read_tensor_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail("{}: no such file", path.string());
  return load_safetensors(path);
}

// --- Model state ---

std::map<std::string, torch::Tensor> model_state_dict(const torch::nn::Module& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model.named_parameters()) out[p.key()] = p.value().detach().cpu().clone();
  for (const auto& b : model.named_buffers()) out[b.key()] = b.value().detach().cpu().clone();
  return out;
}

void load_model_state_dict(torch::nn::Module& model,
                           const std::map<std::string, torch::Tensor>& state,
                           const std::string& source) {
  torch::NoGradGuard no_grad;
  const auto params = model.named_parameters();
  const auto buffers = model.named_buffers();
  // Check everything first: a mismatch must not leave the model half loaded.
  const auto check = [&](const std::string& name, const torch::Tensor& target, bool required) {
    const auto it = state.find(name);
    if (it == state.end()) {
      if (required)
        fail("{}: tensor '{}' is missing (a checkpoint of another model?)", source, name);
      return;
    }
    if (it->second.sizes() != target.sizes()) {
      fail("{}: tensor '{}' has shape {}, the model expects {} (a checkpoint of another model?)",
           source, name, shape_str(it->second.sizes()), shape_str(target.sizes()));
    }
  };
  for (const auto& p : params) check(p.key(), p.value(), true);
  for (const auto& b : buffers) check(b.key(), b.value(), false);
  for (const auto& [name, t] : state) {
    if (!params.contains(name) && !buffers.contains(name)) {
      fail("{}: tensor '{}' is not part of the model (a checkpoint of another model?)", source,
           name);
    }
  }
  for (const auto& p : params) p.value().copy_(state.at(p.key()));
  for (const auto& b : buffers) {
    if (const auto it = state.find(b.key()); it != state.end()) b.value().copy_(it->second);
  }
}

// --- Folders ---

std::optional<fs::path> latest_checkpoint(const fs::path& checkpoints_dir) {
  const fs::path pointer = checkpoints_dir / kLatestFile;
  std::error_code ec;
  if (!fs::is_regular_file(pointer, ec)) return std::nullopt;
  std::string name = read_file(pointer);
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) {
    name.pop_back();
  }
  if (name.empty() || name.find('/') != std::string::npos) {
    fail("{}: malformed pointer (expected a folder name such as step_000045)", pointer.string());
  }
  const fs::path dir = checkpoints_dir / name;
  // Killed between moving an older folder of this step aside and renaming the new one in.
  if (!fs::exists(dir, ec) && fs::is_directory(checkpoints_dir / (name + ".old"), ec)) {
    return checkpoints_dir / (name + ".old");
  }
  return dir;
}

fs::path resolve_checkpoint(const std::string& spec, const fs::path& run_dir) {
  std::error_code ec;
  const auto from_checkpoints_dir = [&](const fs::path& checkpoints_dir,
                                        const std::string& what) -> fs::path {
    const auto latest = latest_checkpoint(checkpoints_dir);
    if (!latest) {
      fail("no checkpoint to resume: {} not found ({})", (checkpoints_dir / kLatestFile).string(),
           what);
    }
    if (!fs::is_directory(*latest, ec)) {
      fail("{} names {}, which does not exist", (checkpoints_dir / kLatestFile).string(),
           latest->string());
    }
    return *latest;
  };
  if (spec.empty() || spec == "latest") {
    return from_checkpoints_dir(run_dir / "checkpoints",
                                "train first, or pass --resume PATH to a checkpoint folder");
  }
  const fs::path path(spec);
  if (!fs::exists(path, ec)) fail("{}: no such checkpoint", spec);
  if (fs::is_regular_file(path / kTrainerStateFile, ec)) return path;
  if (fs::is_regular_file(path / kLatestFile, ec)) return from_checkpoints_dir(path, spec);
  if (fs::is_directory(path / "checkpoints", ec)) {
    return from_checkpoints_dir(path / "checkpoints", "the run has no complete checkpoint");
  }
  fail("{}: not a checkpoint folder (expected {} inside it, or a run folder with checkpoints/)",
       spec, kTrainerStateFile);
}

}  // namespace llmfs
