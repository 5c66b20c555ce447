#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace llmfs {

// The on-disk layout of training checkpoints and the tensor files inside them. What a training
// checkpoint holds besides tensors (TrainerState) and how one is written belongs to the trainer:
// llmfs/train/training_checkpoint.h.

/// File names inside a checkpoint folder.
inline constexpr const char* kModelFile = "model.safetensors";
inline constexpr const char* kOptimizerFile = "optimizer.safetensors";
inline constexpr const char* kRngFile = "rng.safetensors";
inline constexpr const char* kTrainerStateFile = "trainer_state.json";
inline constexpr const char* kLatestFile = "latest";

/// The checkpoint folder a --resume argument names:
///   "latest"                         <run_dir>/checkpoints/latest
///   a checkpoint folder              itself
///   a run folder / checkpoints folder   its latest checkpoint
/// llmfs::Error with one line saying what is missing otherwise.
std::filesystem::path resolve_checkpoint(const std::string& spec,
                                         const std::filesystem::path& run_dir);

/// The folder `latest` in a checkpoints folder names, if there is one.
std::optional<std::filesystem::path> latest_checkpoint(
    const std::filesystem::path& checkpoints_dir);

/// A module's parameters and buffers by name (copies on the CPU; the book's state_dict keys).
std::map<std::string, torch::Tensor> model_state_dict(const torch::nn::Module& model);

/// Copies named tensors into a module's parameters and buffers. Every parameter must be present
/// with its shape; buffers may be absent (they are rebuilt by the constructor). A missing
/// parameter, a shape mismatch or an unknown name is an llmfs::Error naming `source` and the
/// tensor: "run/model.safetensors: tensor 'tok_emb.weight' has shape [50257, 32], the model expects
/// [50257, 768] (a checkpoint of another model?)".
void load_model_state_dict(torch::nn::Module& model,
                           const std::map<std::string, torch::Tensor>& state,
                           const std::string& source);

/// Reads / writes a safetensors file of named tensors (CPU copies). llmfs::Error naming the file.
std::map<std::string, torch::Tensor> read_tensor_file(const std::filesystem::path& path);
void write_tensor_file(const std::filesystem::path& path,
                       const std::map<std::string, torch::Tensor>& tensors);

}  // namespace llmfs
