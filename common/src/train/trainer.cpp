// The training loop of book §5.2 (train_model_simple) with appendix D's schedule and clipping,
// gradient accumulation, autocast, checkpoints, resume and Ctrl-C handling.
#include "llmfs/train/trainer.h"

#include <ATen/autocast_mode.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/core/device.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/repr.h"
#include "llmfs/ops/cpu_features.h"
#include "llmfs/train/mfu.h"

namespace fs = std::filesystem;

namespace llmfs {

// --- Config ---

TrainConfig parse_train_config(ConfigNode node, const TrainConfig& defaults) {
  TrainConfig c = defaults;
  node.read("seed", c.seed);
  node.read("num_epochs", c.num_epochs, at_least(int64_t{1}));
  node.read("batch_size", c.batch_size, at_least(int64_t{1}));
  node.read("learning_rate", c.learning_rate, at_least(0.0));
  node.read("weight_decay", c.weight_decay, at_least(0.0));
  node.read("betas", c.betas);
  node.check(
      c.betas.size() == 2 && c.betas[0] >= 0 && c.betas[0] < 1 && c.betas[1] >= 0 && c.betas[1] < 1,
      "betas", "expected two numbers in [0, 1), e.g. [0.9, 0.999]");
  node.read("eps", c.eps, at_least(0.0));
  node.read("eval_freq", c.eval_freq, at_least(int64_t{0}));
  node.read("eval_iter", c.eval_iter, at_least(int64_t{1}));
  node.read("eval_at_end", c.eval_at_end);
  node.read("lr_schedule", c.lr_schedule, one_of({"constant", "warmup_cosine"}));
  node.read("warmup_steps", c.warmup_steps, at_least(int64_t{0}));
  node.read<std::optional<double>>(
      "warmup_fraction", c.warmup_fraction,
      [](const std::optional<double>& f) -> std::optional<std::string> {
        if (f && !(*f >= 0.0 && *f < 1.0)) return fmt::format("must be in [0, 1), got {}", *f);
        return std::nullopt;
      });
  node.check(!(c.warmup_fraction && node.has("warmup_steps")), "warmup_fraction",
             "give warmup_steps or warmup_fraction, not both");
  node.read("initial_lr", c.initial_lr, at_least(0.0));
  node.read("min_lr", c.min_lr, at_least(0.0));
  node.read<std::optional<double>>(
      "grad_clip", c.grad_clip, [](const std::optional<double>& v) -> std::optional<std::string> {
        if (v && !(*v > 0.0)) return fmt::format("must be > 0 or null (no clipping), got {}", *v);
        return std::nullopt;
      });
  node.read("clip_after_warmup_erratum", c.clip_after_warmup_erratum);
  node.read("grad_accumulation_steps", c.grad_accumulation_steps, at_least(int64_t{1}));
  node.read<std::optional<int64_t>>(
      "max_steps", c.max_steps, [](const std::optional<int64_t>& v) -> std::optional<std::string> {
        if (v && *v < 1) return fmt::format("must be at least 1 or null (no limit), got {}", *v);
        return std::nullopt;
      });
  node.read<std::string>("device", c.device, check_device_name);
  node.read("precision", c.precision, one_of({"fp32", "bf16"}));
  node.read<std::optional<double>>(
      "peak_tflops", c.peak_tflops, [](const std::optional<double>& v) -> std::optional<std::string> {
        if (v && !(*v > 0.0)) return fmt::format("must be > 0 or null (measured), got {}", *v);
        return std::nullopt;
      });
  node.read("fused_adamw", c.fused_adamw);
  node.read<std::string>("output_dir", c.output_dir,
                         [](const std::string& d) -> std::optional<std::string> {
                           if (d.empty()) return "must not be empty";
                           return std::nullopt;
                         });
  node.read("checkpoint_every", c.checkpoint_every, at_least(int64_t{0}));
  node.read("keep_checkpoints", c.keep_checkpoints, at_least(int64_t{0}));
  node.read("final_checkpoint", c.final_checkpoint);
  c.dist = parse_distributed_config(node.child("dist"), defaults.dist);
  return c;
}

std::shared_ptr<ProcessGroup> join_data_parallel(TrainConfig& config) {
  const LaunchEnvironment launch = read_launch_environment();
  if (!launch.launched) return nullptr;
  if (resolve_device(config.device).is_cuda()) config.device = rank_device("cuda", launch);
  if (launch.rank != 0) {
    spdlog::set_level(spdlog::level::warn);
    std::fflush(stdout);
    if (std::freopen("/dev/null", "w", stdout) == nullptr) {
      spdlog::warn("rank {}: could not silence stdout", launch.rank);
    }
  }
  return ProcessGroup::from_environment(config.dist, config.device);
}

DataShard data_shard(const ProcessGroup& group, const TrainConfig& config) {
  return {.rank = group.rank(), .world_size = group.size(), .seed = config.seed};
}

LrSchedule make_lr_schedule(const TrainConfig& c, int64_t total_steps) {
  if (c.lr_schedule == "constant") return LrSchedule::constant(c.learning_rate);
  const int64_t warmup = c.warmup_fraction
                             ? warmup_steps_from_fraction(*c.warmup_fraction, total_steps)
                             : c.warmup_steps;
  if (warmup >= total_steps) {
    fail(
        "train.warmup_steps: {} warmup steps leave no step for the decay (the run has {} optimizer "
        "steps)",
        warmup, total_steps);
  }
  return LrSchedule::warmup_cosine(c.initial_lr, c.learning_rate, c.min_lr, warmup, total_steps);
}

// --- The non-template parts of the Trainer ---

namespace detail {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

AutocastGuard::AutocastGuard(bool enabled, c10::DeviceType device_type, at::ScalarType dtype)
    : active_(enabled), type_(device_type) {
  if (!active_) return;
  prev_enabled_ = at::autocast::is_autocast_enabled(type_);
  prev_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::set_autocast_dtype(type_, dtype);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, prev_enabled_);
  at::autocast::set_autocast_dtype(type_, prev_dtype_);
}

void check_train_loader_size(int64_t size, const TrainConfig& config) {
  if (size > 0) return;
  fail(
      "the training loader has no batches (fewer examples than batch_size {} with drop_last): "
      "use more text, a smaller batch_size or a shorter max_length",
      config.batch_size);
}

std::unique_ptr<AdamW> make_trainer_optimizer(const TrainConfig& config, NamedParameters params) {
  AdamWOptions opt;
  opt.lr = config.learning_rate;
  opt.beta1 = config.betas.at(0);
  opt.beta2 = config.betas.at(1);
  opt.eps = config.eps;
  opt.weight_decay = config.weight_decay;
  opt.fused = config.fused_adamw;
  return std::make_unique<AdamW>(params, opt);
}

void prepare_output_dir(const TrainConfig& config, bool overwrite) {
  const fs::path out(config.output_dir);
  const fs::path checkpoints = out / "checkpoints";
  std::error_code ec;
  if (!fs::exists(checkpoints / kLatestFile, ec)) return;
  if (!overwrite) {
    const auto latest = latest_checkpoint(checkpoints);
    fail(
        "{} holds a previous run (latest checkpoint {}): continue it with --resume latest, start "
        "over with --overwrite, or set train.output_dir",
        out.string(), latest ? latest->filename().string() : "?");
  }
  spdlog::info("--overwrite: removing the previous run's checkpoints and metrics in {}",
               out.string());
  fs::remove_all(checkpoints);
  for (const char* file : {"metrics.jsonl", "metrics.csv", "epoch_metrics.csv"}) {
    fs::remove(out / file, ec);
  }
}

namespace {

// Flattens a YAML document to dotted keys -> scalar text, to tell what a resumed run changed.
void flatten_yaml(const YAML::Node& node, const std::string& prefix,
                  std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      flatten_yaml(kv.second, prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar(),
                   out);
    }
  } else {
    YAML::Emitter e;
    e.SetSeqFormat(YAML::Flow);
    e << node;
    out[prefix] = e.c_str();
  }
}

std::vector<std::string> config_differences(const std::string& before, const std::string& now) {
  std::map<std::string, std::string> a, b;
  try {
    flatten_yaml(YAML::Load(before), "", a);
    flatten_yaml(YAML::Load(now), "", b);
  } catch (const YAML::Exception&) {
    return {"(the checkpoint's config could not be read)"};
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : b) {
    const auto it = a.find(k);
    if (it == a.end()) {
      out.push_back(fmt::format("{} (new: {})", k, v));
    } else if (it->second != v) {
      out.push_back(fmt::format("{} ({} -> {})", k, it->second, v));
    }
  }
  for (const auto& [k, v] : a) {
    if (!b.count(k)) out.push_back(fmt::format("{} (dropped: {})", k, v));
  }
  return out;
}

}  // namespace

void warn_config_changes(const std::string& before, const std::string& now) {
  for (const auto& d : config_differences(before, now)) {
    spdlog::warn("resuming with a changed setting: {}", d);
  }
}

void resolve_precision(TrainConfig& config, const torch::Device& device) {
  if (config.precision == "bf16" && device.is_cpu() &&
      !check_bf16_units("train.precision=bf16", "training in fp32 instead")) {
    config.precision = "fp32";
  }
}

double peak_flops(const TrainConfig& config, const torch::Device& device) {
  if (config.peak_tflops) {
    spdlog::info("MFU against the configured peak of {:.1f} TFLOP/s (train.peak_tflops)",
                 *config.peak_tflops);
    return *config.peak_tflops * 1e12;
  }
  const auto dtype = config.precision == "bf16" ? at::kBFloat16 : at::kFloat;
  const double peak = measure_matmul_flops(device, dtype);
  spdlog::info(
      "MFU against torch's {} matmul rate on {}, measured now: {:.1f} GFLOP/s (train.peak_tflops "
      "sets a peak instead)",
      config.precision, device.str(), peak / 1e9);
  return peak;
}

void write_timing(const TrainConfig& config, const TrainResult& result,
                  const torch::Device& device) {
  // Step times of this process, for scripts/bench_train.sh and anyone tuning a run.
  std::string json = "{\"step_seconds\": [";
  for (size_t i = 0; i < result.step_seconds.size(); ++i) {
    json += fmt::format("{}{:.6f}", i ? ", " : "", result.step_seconds[i]);
  }
  json += "], \"first_step\": " + std::to_string(result.global_step + 1 -
                                                  static_cast<int64_t>(result.step_seconds.size()));
  json += ", \"step_losses\": [";
  for (size_t i = 0; i < result.step_losses.size(); ++i) {
    json += fmt::format("{}{:.9g}", i ? ", " : "", result.step_losses[i]);
  }
  json += fmt::format(
      "], \"tokens\": {}, \"device\": \"{}\", \"threads\": {}, \"world_size\": {}, "
      "\"gradient_sync_seconds\": {:.6f}, \"flops_per_token\": {:.6g}, \"peak_flops\": {:.6g}}}\n",
      result.steps_tokens, device.str(), at::get_num_threads(), result.world_size,
      result.gradient_sync_seconds, result.flops_per_token, result.peak_flops);
  write_file_atomic(fs::path(config.output_dir) / "timing.json", json);
  double total = 0;
  for (const double t : result.step_seconds) total += t;
  spdlog::info("{} optimizer steps in {:.1f} s of step time: {} tokens/s",
               result.step_seconds.size(), total,
               group_thousands(static_cast<int64_t>(std::llround(result.steps_tokens / total))));
}

}  // namespace detail

// Chapter 5's batch type, compiled once here (extern in trainer.h). Other batch types are
// instantiated where they are used, from the template in trainer_impl.h.
template class Trainer<Batch>;

}  // namespace llmfs
