#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/data/data_loader.h"
#include "llmfs/train/metrics.h"

namespace llmfs {

/// Where a training run stands between two optimizer steps: everything besides the tensors that
/// a resumed run needs to continue exactly like an uninterrupted one.
struct TrainerState {
  int64_t epoch = 0;            // 0-based epoch in progress (num_epochs once finished)
  bool pass_started = false;    // whether this epoch's training pass has begun (else: new pass)
  DataLoaderPosition position;  // of the training pass, when started
  int64_t global_step = -1;     // the last optimizer step taken (0-based; -1 before the first)
  int64_t tokens_seen = 0;
  double elapsed_s = 0.0;  // training time so far, over all processes of the run
  int64_t world_size = 1;  // processes of the run when this state was saved (torchrun)
  bool finished = false;   // all epochs (or max_steps) done
  TrainHistory history;    // evaluations and learning rates so far
};

/// A training checkpoint in memory. On disk it is a folder:
///   model.safetensors       the model's parameters and buffers by the book's names (its
///                           state_dict keys): load_weights() and Python's
///                           model.load_state_dict(safetensors.torch.load_file(...)) read it
///   optimizer.safetensors   the optimizer state (AdamW::state_dict())
///   rng.safetensors         random generator states: "cpu" (the global CPU generator), "cuda:N"
///   trainer_state.json      TrainerState
///   config.yaml             the resolved config of the run
///   checksums.json          the CRC-32 of each file above, written last (load_checkpoint checks)
struct TrainingCheckpoint {
  std::map<std::string, torch::Tensor> model;
  std::map<std::string, torch::Tensor> optimizer;
  std::map<std::string, torch::Tensor> rng;
  TrainerState state;
  std::string config_yaml;
};

/// Writes a checkpoint as `<checkpoints_dir>/step_NNNNNN/` (NNNNNN = state.global_step) so that a
/// crash or kill at any moment never leaves a corrupt latest checkpoint:
///   1. everything goes into `step_NNNNNN.tmp/`, each file flushed to disk;
///   2. the folder is renamed to `step_NNNNNN/` (atomic);
///   3. the pointer file `<checkpoints_dir>/latest` is replaced atomically (write_file_atomic).
/// A folder of the same step is replaced (moved aside to `.old` until the new one is in place).
/// A write that fails (no space left, a file size limit, a folder that cannot be written) removes
/// the unfinished folder and throws an llmfs::Error saying so and naming the previous checkpoint,
/// which stays the latest.
/// Afterwards it removes leftover `.tmp` folders and all but the newest `keep` checkpoints
/// (keep <= 0: keep all), never the one `latest` names. Returns the checkpoint folder.
/// Test hook: LLMFS_TEST_CHECKPOINT_PAUSE_MS=<ms> sleeps inside step 1 (after the model file;
/// with LLMFS_TEST_CHECKPOINT_PAUSE_STEP=<n> only for the checkpoint of step n).
std::filesystem::path save_checkpoint(const std::filesystem::path& checkpoints_dir,
                                      const TrainingCheckpoint& checkpoint, int64_t keep = 0);

/// Reads a checkpoint folder. llmfs::Error naming the folder and file when a file is missing,
/// malformed or does not match its checksum (flipped bytes); for a damaged one the message
/// offers the newest earlier checkpoint of the folder that is intact (`--resume PATH`).
TrainingCheckpoint load_checkpoint(const std::filesystem::path& dir);

/// The generator states a checkpoint stores: the global CPU generator, and the CUDA generator
/// of `device` when it is a CUDA device. set_rng_states puts them back.
std::map<std::string, torch::Tensor> get_rng_states(const torch::Device& device);
void set_rng_states(const std::map<std::string, torch::Tensor>& states, const std::string& source);

}  // namespace llmfs
