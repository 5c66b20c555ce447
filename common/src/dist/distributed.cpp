// Multi-process training on PyTorch's c10d: the rendezvous through a TCPStore (torchrun's agent
// store, or one hosted by rank 0), Gloo on CPU and NCCL on CUDA, bucketed gradient all-reduce,
// and errors that name the rank that was lost.
#include "llmfs/dist/distributed.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "backends.h"
#include "llmfs/core/error.h"

#if LLMFS_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

namespace llmfs {

namespace {

using Clock = std::chrono::steady_clock;

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, int fallback, int min_value) {
  const auto text = env(name);
  if (!text) return fallback;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text->c_str(), &end, 10);
  if (text->empty() || *end != '\0' || errno != 0 || v < min_value || v > 1'000'000) {
    fail("environment variable {}={:?}: expected a whole number >= {}", name, *text, min_value);
  }
  return static_cast<int>(v);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// The first line of a message from c10d or Gloo (they can run over several lines).
std::string first_line(std::string text) {
  const auto nl = text.find('\n');
  if (nl != std::string::npos) text.resize(nl);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.pop_back();
  return text;
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size(); ++i) {
    out += fmt::format("{}{}", i == 0 ? "" : (i + 1 == ranks.size() ? " and " : ", "), ranks[i]);
  }
  return out;
}

}  // namespace

DistributedConfig parse_distributed_config(ConfigNode node, const DistributedConfig& defaults) {
  DistributedConfig c = defaults;
  node.read("backend", c.backend, one_of({"auto", "gloo", "nccl"}));
  node.read<double>("timeout_s", c.timeout_s, [](const double& v) -> std::optional<std::string> {
    if (!(v > 0.0 && v <= 86400.0)) return fmt::format("must be in (0, 86400] seconds, got {}", v);
    return std::nullopt;
  });
  node.read<double>("bucket_mb", c.bucket_mb, [](const double& v) -> std::optional<std::string> {
    if (!(v > 0.0 && v <= 4096.0)) return fmt::format("must be in (0, 4096] MB, got {}", v);
    return std::nullopt;
  });
  node.read("gloo_host", c.gloo_host);
  return c;
}

LaunchEnvironment read_launch_environment() {
  LaunchEnvironment e;
  if (!env("WORLD_SIZE")) {
    for (const char* name : {"RANK", "LOCAL_RANK"}) {
      if (env(name) && env_int(name, 0, 0) != 0) {
        fail("environment variable {} is set but WORLD_SIZE is not (launch with torchrun)", name);
      }
    }
    return e;
  }
  e.launched = true;
  e.world_size = env_int("WORLD_SIZE", 1, 1);
  e.rank = env_int("RANK", 0, 0);
  e.local_rank = env_int("LOCAL_RANK", e.rank, 0);
  e.local_world_size = env_int("LOCAL_WORLD_SIZE", e.world_size, 1);
  if (e.rank >= e.world_size) {
    fail("environment variable RANK={} is outside the world (WORLD_SIZE={}: ranks 0..{})", e.rank,
         e.world_size, e.world_size - 1);
  }
  if (e.local_rank >= e.local_world_size) {
    fail("environment variable LOCAL_RANK={} is outside this node (LOCAL_WORLD_SIZE={})",
         e.local_rank, e.local_world_size);
  }
  if (e.local_world_size > e.world_size) {
    fail("environment variable LOCAL_WORLD_SIZE={} exceeds WORLD_SIZE={}", e.local_world_size,
         e.world_size);
  }
  if (e.world_size > 1) {
    for (const char* name : {"MASTER_ADDR", "MASTER_PORT"}) {
      if (!env(name)) {
        fail("environment variable {} is not set (WORLD_SIZE={}; launch with torchrun)", name,
             e.world_size);
      }
    }
  }
  if (const auto addr = env("MASTER_ADDR")) e.master_addr = *addr;
  if (e.master_addr.empty()) fail("environment variable MASTER_ADDR is empty");
  e.master_port = env_int("MASTER_PORT", 29500, 1);
  if (e.master_port > 65535) fail("environment variable MASTER_PORT={}: not a port", e.master_port);
  e.agent_store = env("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  e.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0, 0);
  return e;
}

std::string rank_device(const std::string& configured, const LaunchEnvironment& launch) {
  const bool cuda = configured.rfind("cuda", 0) == 0 ||
                    (configured == "auto" && torch::cuda::is_available());
  if (!launch.launched || !cuda) return configured;
  return fmt::format("cuda:{}", launch.local_rank);
}

struct ProcessGroup::Impl {
  LaunchEnvironment launch;
  DistributedConfig config;
  std::string backend_name;
  c10::intrusive_ptr<c10d::Store> store;  // torchrun's or ours, with this attempt's prefix
  c10::intrusive_ptr<c10d::Backend> backend;
  std::chrono::milliseconds timeout{0};
  double sync_seconds = 0.0;
  bool failed = false;
  // Gradient buckets, laid out once for a parameter list (reused every step).
  struct Bucket {
    std::vector<size_t> params;  // indices into the parameter list
    std::vector<int64_t> offsets;
    at::Tensor flat;
  };
  std::vector<Bucket> buckets;
  std::vector<const void*> bucket_layout_of;  // parameters' TensorImpl the layout was made for

  // Which ranks are gone: each survivor marks itself alive in the store, then waits a moment for
  // the others' marks. A rank that never marks is lost (dead, or hung past the timeout).
  std::vector<int> lost_ranks() {
    std::vector<int> lost;
    try {
      store->set(fmt::format("llmfs/alive/{}", launch.rank), std::vector<uint8_t>{'1'});
      const auto deadline = Clock::now() + std::chrono::seconds(3);
      while (true) {
        lost.clear();
        for (int r = 0; r < launch.world_size; ++r) {
          if (!store->check({fmt::format("llmfs/alive/{}", r)})) lost.push_back(r);
        }
        if (lost.empty() || Clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    } catch (const std::exception&) {
      // The store is gone with the process that hosted it (rank 0 when not under torchrun).
      if (!launch.agent_store && launch.rank != 0) return {0};
    }
    return lost;
  }

  // Runs a collective; a failure becomes one line naming the lost ranks.
  template <typename F>
  void guarded(const std::string& what, F&& body) {
    if (failed) fail("rank {}: the process group failed earlier; {} is not possible", launch.rank,
                     what);
    try {
      body();
    } catch (const std::exception& e) {
      failed = true;
      const std::string cause = first_line(e.what());
      const auto lost = lost_ranks();
      if (lost.empty()) {
        fail("rank {}: {} failed though every rank is still there ({})", launch.rank, what,
             cause);
      }
      fail("rank {}: lost rank {} of {} during {} ({}); stopping (resume from the last checkpoint)",
           launch.rank, rank_list(lost), launch.world_size, what, cause);
    }
  }
};

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;

int ProcessGroup::rank() const { return impl_->launch.rank; }
int ProcessGroup::size() const { return impl_->launch.world_size; }
const std::string& ProcessGroup::backend() const { return impl_->backend_name; }
double ProcessGroup::gradient_sync_seconds() const { return impl_->sync_seconds; }

std::shared_ptr<ProcessGroup> ProcessGroup::from_environment(const DistributedConfig& config,
                                                             const std::string& device) {
  const LaunchEnvironment launch = read_launch_environment();
  if (!launch.launched) return nullptr;
  auto impl = std::make_unique<Impl>();
  impl->launch = launch;
  impl->config = config;
  impl->timeout = std::chrono::milliseconds(std::llround(config.timeout_s * 1000.0));
  const bool cuda = device.rfind("cuda", 0) == 0;
  std::string backend = config.backend;
  if (backend == "auto") backend = cuda ? "nccl" : "gloo";
  if (backend == "nccl" && !cuda) {
    fail("dist.backend: nccl needs a CUDA device (train.device is {}); use gloo on CPU", device);
  }
  impl->backend_name = backend;

  // The rendezvous store. Under torchrun its agent hosts one for the whole job (it outlives any
  // rank, so the survivors of a lost rank can still find out which one it was); otherwise rank 0
  // hosts it at MASTER_ADDR:MASTER_PORT.
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(launch.master_port);
  store_options.isServer = !launch.agent_store && launch.rank == 0;
  store_options.numWorkers = static_cast<std::size_t>(launch.world_size);
  store_options.waitWorkers = false;
  store_options.timeout = impl->timeout;
  store_options.multiTenant = true;
  try {
    auto tcp = c10::make_intrusive<c10d::TCPStore>(launch.master_addr, store_options);
    const std::string prefix = launch.agent_store
                                   ? fmt::format("/worker/attempt_{}", launch.restart_count)
                                   : std::string("llmfs");
    impl->store = c10::make_intrusive<c10d::PrefixStore>(prefix, tcp);
  } catch (const std::exception& e) {
    fail("rank {}: cannot reach the rendezvous store at {}:{} ({})", launch.rank,
         launch.master_addr, launch.master_port, first_line(e.what()));
  }
  auto pg_store = c10::make_intrusive<c10d::PrefixStore>(fmt::format("llmfs_{}/", backend),
                                                         impl->store);
  try {
    if (backend == "gloo") {
#if LLMFS_WITH_GLOO
      auto options = c10d::ProcessGroupGloo::Options::create(impl->timeout);
      std::string host = config.gloo_host;
      if (host.empty() && is_loopback(launch.master_addr)) host = launch.master_addr;
      options->devices.push_back(host.empty()
                                     ? c10d::ProcessGroupGloo::createDefaultDevice()
                                     : c10d::ProcessGroupGloo::createDeviceForHostname(host));
      impl->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(pg_store, launch.rank,
                                                                  launch.world_size, options);
#else
      fail(
          "dist.backend: this build has no Gloo backend (gloo's headers, Debian's libgloo-dev, "
          "were missing when it was built)");
#endif
    } else {
      impl->backend = detail::make_nccl_backend(pg_store, launch.rank, launch.world_size,
                                                impl->timeout, launch.local_rank);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("rank {}: the {} process group of {} ranks did not form within {} s ({})", launch.rank,
         backend, launch.world_size, config.timeout_s, first_line(e.what()));
  }
  spdlog::info("rank {} of {} (local rank {}): c10d {} process group via {}:{}{}", launch.rank,
               launch.world_size, launch.local_rank, backend, launch.master_addr,
               launch.master_port, launch.agent_store ? " (torchrun's store)" : "");
  return std::shared_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

void ProcessGroup::broadcast(const std::vector<at::Tensor>& tensors) {
  if (size() == 1) return;
  impl_->guarded("the broadcast of rank 0's parameters", [&] {
    torch::NoGradGuard no_grad;
    for (const auto& t : tensors) {
      if (!t.defined() || t.numel() == 0) continue;
      std::vector<at::Tensor> one{t.is_contiguous() ? t : t.contiguous()};
      c10d::BroadcastOptions options;
      options.rootRank = 0;
      options.timeout = impl_->timeout;
      impl_->backend->broadcast(one, options)->wait(impl_->timeout);
      if (!t.is_same(one[0])) t.copy_(one[0]);
    }
  });
}

void ProcessGroup::average_gradients(const std::vector<at::Tensor>& parameters,
                                     const std::string& what) {
  if (size() == 1) return;
  const auto start = Clock::now();
  Impl& m = *impl_;
  torch::NoGradGuard no_grad;
  // The buckets follow the parameters backwards (the order backward finishes them, as DDP's).
  std::vector<const void*> layout;
  layout.reserve(parameters.size());
  for (const auto& p : parameters) layout.push_back(p.unsafeGetTensorImpl());
  if (layout != m.bucket_layout_of) {
    m.buckets.clear();
    const auto cap = static_cast<int64_t>(m.config.bucket_mb * 1024 * 1024);
    Impl::Bucket bucket;
    int64_t bytes = 0, elements = 0;
    const auto close = [&](const at::Tensor& like) {
      if (bucket.params.empty()) return;
      bucket.flat = torch::zeros({elements}, like.options().requires_grad(false));
      m.buckets.push_back(std::move(bucket));
      bucket = {};
      bytes = elements = 0;
    };
    for (size_t k = parameters.size(); k-- > 0;) {
      const auto& p = parameters[k];
      if (!bucket.params.empty()) {
        const auto& first = parameters[bucket.params.front()];
        if (first.scalar_type() != p.scalar_type() || first.device() != p.device() ||
            bytes >= cap) {
          close(first);
        }
      }
      bucket.params.push_back(k);
      bucket.offsets.push_back(elements);
      elements += p.numel();
      bytes += p.numel() * static_cast<int64_t>(p.element_size());
    }
    if (!bucket.params.empty()) close(parameters[bucket.params.front()]);
    m.bucket_layout_of = layout;
  }
  m.guarded(fmt::format("the gradient all-reduce of {}", what), [&] {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& b : m.buckets) {
      for (size_t i = 0; i < b.params.size(); ++i) {
        const auto& p = parameters[b.params[i]];
        auto slot = b.flat.narrow(0, b.offsets[i], p.numel());
        const auto& g = p.grad();
        if (g.defined()) {
          slot.copy_(g.reshape({-1}));
        } else {
          slot.zero_();
        }
      }
      std::vector<at::Tensor> one{b.flat};
      c10d::AllreduceOptions options;
      options.timeout = m.timeout;
      works.push_back(m.backend->allreduce(one, options));
    }
    const double scale = 1.0 / static_cast<double>(size());
    for (size_t j = 0; j < m.buckets.size(); ++j) {
      works[j]->wait(m.timeout);
      auto& b = m.buckets[j];
      b.flat.mul_(scale);
      for (size_t i = 0; i < b.params.size(); ++i) {
        const auto& p = parameters[b.params[i]];
        auto slot = b.flat.narrow(0, b.offsets[i], p.numel()).view(p.sizes());
        if (p.grad().defined()) {
          p.mutable_grad().copy_(slot);
        } else if (p.requires_grad()) {
          p.mutable_grad() = slot.clone();
        }
      }
    }
  });
  m.sync_seconds += std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<double> ProcessGroup::sum(const std::vector<double>& values, const std::string& what) {
  if (size() == 1 || values.empty()) return values;
  std::vector<double> out;
  impl_->guarded(what, [&] {
    auto t = torch::tensor(values, torch::kFloat64);
    if (impl_->backend_name == "nccl") {
      t = t.to(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(impl_->launch.local_rank)));
    }
    std::vector<at::Tensor> one{t};
    c10d::AllreduceOptions options;
    options.timeout = impl_->timeout;
    impl_->backend->allreduce(one, options)->wait(impl_->timeout);
    const auto host = one[0].cpu();
    out.assign(host.data_ptr<double>(), host.data_ptr<double>() + host.numel());
  });
  return out;
}

void ProcessGroup::barrier(const std::string& what) {
  if (size() == 1) return;
  impl_->guarded(what, [&] {
    c10d::BarrierOptions options;
    options.timeout = impl_->timeout;
    impl_->backend->barrier(options)->wait(impl_->timeout);
  });
}

}  // namespace llmfs
