#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llmfs/config/config_node.h"

namespace llmfs {

/// The `dist:` section: how a run launched by torchrun talks to its peers. A run started without
/// a launcher (no WORLD_SIZE in the environment) ignores it.
struct DistributedConfig {
  std::string backend = "auto";  // auto (gloo on CPU, nccl on CUDA) | gloo | nccl
  /// Longest wait for a peer: the rendezvous, each collective, the store. A lost peer usually
  /// shows at once (its sockets close); a hung one shows after this long.
  double timeout_s = 300.0;
  double bucket_mb = 25.0;  // gradients per all-reduce (PyTorch DDP's bucket_cap_mb)
  /// Address this process's Gloo transport binds to; "" : MASTER_ADDR when it is a loopback
  /// address (one machine), else this machine's hostname (Gloo's default).
  std::string gloo_host;
};

/// Reads a `dist:` section (every key optional).
DistributedConfig parse_distributed_config(ConfigNode node, const DistributedConfig& defaults = {});

/// What the launcher told this process (torchrun's variables). `launched` is false when
/// WORLD_SIZE is not set: a plain single-process run.
struct LaunchEnvironment {
  bool launched = false;
  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  /// torchrun hosts the store in its agent (TORCHELASTIC_USE_AGENT_STORE=True): every rank is a
  /// client under the prefix /worker/attempt_<restart_count>, and the store outlives any rank.
  bool agent_store = false;
  int restart_count = 0;
};

/// Reads RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT and torchrun's
/// TORCHELASTIC_* variables. A variable that is not a number, a rank outside the world, or a
/// multi-process world without MASTER_ADDR / MASTER_PORT is an llmfs::Error naming the variable.
LaunchEnvironment read_launch_environment();

/// The device of this process: a CUDA device ("cuda", "cuda:N", or "auto" where CUDA is
/// present) becomes cuda:LOCAL_RANK under a launcher; anything else stays as configured.
std::string rank_device(const std::string& configured, const LaunchEnvironment& launch);

/// A c10d process group (PyTorch's own engine: a TCPStore for the rendezvous, Gloo on CPU, NCCL
/// on CUDA) and the collectives training needs. Every collective is called by every rank in the
/// same order. A collective that fails (a peer died, its connection closed, the timeout passed)
/// is an llmfs::Error naming the lost rank(s): the surviving ranks find out which ranks are gone
/// through the store.
///
///   auto group = llmfs::ProcessGroup::from_environment(cfg.dist, device);  // null: single
///   if (group) group->broadcast_parameters(model->parameters());
class ProcessGroup {
 public:
  /// A process group when the launcher started several processes (or one under torchrun, so
  /// that a run of 1 process shards its data like a run of many); nullptr for a plain run.
  /// `device` chooses the backend for backend=auto and, for CUDA, must be cuda:LOCAL_RANK.
  static std::shared_ptr<ProcessGroup> from_environment(const DistributedConfig& config,
                                                        const std::string& device);

  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int size() const;
  bool is_main() const { return rank() == 0; }
  const std::string& backend() const;

  /// Copies rank 0's tensors into every rank's (parameters and buffers at the start).
  void broadcast(const std::vector<at::Tensor>& tensors);

  /// Averages the gradients of `parameters` over the ranks (sum / world size), in buckets of
  /// bucket_mb issued together; parameters without a gradient count as zeros, as in PyTorch
  /// DDP with find_unused_parameters. `what` names the moment in an error ("step 12").
  void average_gradients(const std::vector<at::Tensor>& parameters, const std::string& what);

  /// Element-wise sums of a few numbers over the ranks (losses, token counts, flags).
  std::vector<double> sum(const std::vector<double>& values, const std::string& what);

  /// Waits for every rank.
  void barrier(const std::string& what);

  /// Seconds spent inside average_gradients since construction (bench_ddp's all-reduce share).
  double gradient_sync_seconds() const;

 private:
  struct Impl;
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmfs
