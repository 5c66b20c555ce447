// Training checkpoints: folders written atomically, a `latest` pointer, strict loading.
#include "llmfs/train/training_checkpoint.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/zip_archive.h"

namespace fs = std::filesystem;

namespace llmfs {

namespace {

constexpr const char* kFormat = "llmfs-training-checkpoint";
constexpr int kFormatVersion = 1;

// fsync on a folder makes the names in it (a rename) durable.
void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string checkpoint_name(int64_t global_step) { return fmt::format("step_{:06d}", global_step); }

// Step number of a folder named step_NNNNNN, or -1.
int64_t step_of(const std::string& name) {
  static const std::regex pattern("step_([0-9]{6,})");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) return -1;
  return std::stoll(m[1].str());
}

void write_checkpoint_files(const fs::path& tmp_dir, const TrainingCheckpoint& checkpoint);
void remove_leftovers(const fs::path& checkpoints_dir, const std::string& name, int64_t keep);

// --- checksums.json: the CRC-32 of every file, written last, checked by load_checkpoint ---

constexpr const char* kChecksumsFile = "checksums.json";
constexpr const char* kChecksummed[] = {kModelFile, kOptimizerFile, kRngFile, kTrainerStateFile,
                                        "config.yaml"};

std::string file_crc(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read", path.string());
  std::vector<char> buffer(size_t{1} << 20);
  uint32_t crc = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    crc = crc32(buffer.data(), static_cast<uint64_t>(in.gcount()), crc);
  }
  if (in.bad()) fail("{}: read failed", path.string());
  return fmt::format("{:08x}", crc);
}

void write_checksums(const fs::path& dir) {
  nlohmann::ordered_json files;
  for (const char* file : kChecksummed) files[file] = file_crc(dir / file);
  write_file_atomic(dir / kChecksumsFile,
                    nlohmann::ordered_json{{"algorithm", "crc32"}, {"files", files}}.dump(1) + "\n");
}

// The first file of a checkpoint folder that does not match its checksum ("" : all match, or a
// folder written before checksums).
std::string damaged_file(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / kChecksumsFile, ec)) return {};
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(dir / kChecksumsFile));
    for (const auto& [file, crc] : j.at("files").items()) {
      if (!fs::is_regular_file(dir / file, ec)) return file + " (missing)";
      if (file_crc(dir / file) != crc.get<std::string>()) return file;
    }
  } catch (const nlohmann::json::exception&) {
    return kChecksumsFile;
  }
  return {};
}

// The newest complete checkpoint before `dir` in its folder whose files match their checksums.
std::optional<fs::path> previous_intact(const fs::path& dir) {
  const int64_t step = step_of(dir.filename().string());
  std::vector<std::pair<int64_t, fs::path>> older;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir.parent_path(), ec)) {
    const int64_t s = step_of(entry.path().filename().string());
    if (s >= 0 && (step < 0 || s < step) && entry.is_directory()) older.emplace_back(s, entry.path());
  }
  std::sort(older.rbegin(), older.rend());
  for (const auto& [s, path] : older) {
    if (fs::is_regular_file(path / kTrainerStateFile, ec) && damaged_file(path).empty()) return path;
  }
  return std::nullopt;
}

// --- trainer_state.json ---

nlohmann::ordered_json state_to_json(const TrainerState& s) {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["version"] = kFormatVersion;
  j["epoch"] = s.epoch;
  j["pass_started"] = s.pass_started;
  j["position"] = {
      {"base_seed", s.position.base_seed},
      {"shuffle_seed", s.position.shuffle_seed ? nlohmann::ordered_json(*s.position.shuffle_seed)
                                               : nlohmann::ordered_json(nullptr)},
      {"batches_yielded", s.position.batches_yielded}};
  if (s.position.global_examples) {  // a sharded (torchrun) pass
    j["position"]["global_examples"] = *s.position.global_examples;
    j["world_size"] = s.world_size;
  }
  j["global_step"] = s.global_step;
  j["tokens_seen"] = s.tokens_seen;
  j["elapsed_s"] = s.elapsed_s;
  j["finished"] = s.finished;
  j["track_lrs"] = s.history.track_lrs;
  auto points = nlohmann::ordered_json::array();
  for (const auto& p : s.history.points) {
    points.push_back(nlohmann::ordered_json::parse(eval_point_to_json(p)));
  }
  j["history"] = points;
  auto epochs = nlohmann::ordered_json::array();
  for (const auto& e : s.history.epochs) {
    epochs.push_back(nlohmann::ordered_json::parse(epoch_metrics_to_json(e)));
  }
  j["epoch_metrics"] = epochs;
  return j;
}

TrainerState state_from_json(const std::string& text, const fs::path& path) {
  TrainerState s;
  try {
    const auto j = nlohmann::json::parse(text);
    if (j.value("format", "") != kFormat) fail("not an llmfs training checkpoint");
    if (j.at("version").get<int>() != kFormatVersion) {
      fail("checkpoint format version {} (this build reads {})", j.at("version").get<int>(),
           kFormatVersion);
    }
    s.epoch = j.at("epoch").get<int64_t>();
    s.pass_started = j.at("pass_started").get<bool>();
    const auto& pos = j.at("position");
    s.position.base_seed = pos.at("base_seed").get<int64_t>();
    if (!pos.at("shuffle_seed").is_null())
      s.position.shuffle_seed = pos.at("shuffle_seed").get<int64_t>();
    s.position.batches_yielded = pos.at("batches_yielded").get<int64_t>();
    if (pos.contains("global_examples")) {
      s.position.global_examples = pos.at("global_examples").get<int64_t>();
      if (*s.position.global_examples < 0) fail("negative counters");
      s.world_size = j.at("world_size").get<int64_t>();
    }
    s.global_step = j.at("global_step").get<int64_t>();
    s.tokens_seen = j.at("tokens_seen").get<int64_t>();
    s.elapsed_s = j.at("elapsed_s").get<double>();
    s.finished = j.at("finished").get<bool>();
    s.history.track_lrs = j.at("track_lrs").get<std::vector<double>>();
    for (const auto& p : j.at("history"))
      s.history.points.push_back(eval_point_from_json(p.dump()));
    if (j.contains("epoch_metrics")) {  // checkpoints written before epoch metrics have none
      for (const auto& e : j.at("epoch_metrics"))
        s.history.epochs.push_back(epoch_metrics_from_json(e.dump()));
    }
    if (s.epoch < 0 || s.global_step < -1 || s.tokens_seen < 0 || s.position.batches_yielded < 0) {
      fail("negative counters");
    }
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed trainer state ({})", path.string(), e.what());
  } catch (const Error& e) {
    fail("{}: {}", path.string(), e.what());
  }
  return s;
}

}  // namespace

// --- Random generators ---

std::map<std::string, torch::Tensor> get_rng_states(const torch::Device& device) {
  std::map<std::string, torch::Tensor> out;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    out["cpu"] = gen.get_state();
  }
  if (device.is_cuda()) {
    auto gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    out[device.str()] = gen.get_state();
  }
  return out;
}

void set_rng_states(const std::map<std::string, torch::Tensor>& states, const std::string& source) {
  for (const auto& [name, state] : states) {
    if (state.scalar_type() != torch::kUInt8)
      fail("{}: generator state '{}' is not uint8", source, name);
    if (name == "cpu") {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state);
    } else if (name.rfind("cuda", 0) == 0) {
      if (!torch::cuda::is_available()) {
        spdlog::warn("{}: the run used {}, which is not available; its generator state is ignored",
                     source, name);
        continue;
      }
      auto gen = at::globalContext().defaultGenerator(torch::Device(name));
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state);
    } else {
      fail("{}: unknown generator '{}'", source, name);
    }
  }
}

fs::path save_checkpoint(const fs::path& checkpoints_dir, const TrainingCheckpoint& checkpoint,
                         int64_t keep) {
  fs::create_directories(checkpoints_dir);
  const std::string name = checkpoint_name(checkpoint.state.global_step);
  const fs::path final_dir = checkpoints_dir / name;
  const fs::path tmp_dir = checkpoints_dir / (name + ".tmp");
  const fs::path old_dir = checkpoints_dir / (name + ".old");
  std::error_code ec;
  try {
    fs::remove_all(tmp_dir);
    fs::create_directories(tmp_dir);
    write_checkpoint_files(tmp_dir, checkpoint);
  } catch (const std::exception& e) {  // a full disk, a size limit, a folder we may not write
    fs::remove_all(tmp_dir, ec);
    const auto kept = latest_checkpoint(checkpoints_dir);
    fail("could not write the checkpoint of step {} ({}); {}", checkpoint.state.global_step,
         e.what(),
         kept ? fmt::format("the previous checkpoint {} is kept", kept->string())
              : std::string("there is no earlier checkpoint"));
  }
  // A folder of the same step (saved mid-epoch, now saved again at the end of training) moves
  // aside first; latest_checkpoint() falls back to it if we die between the two renames.
  if (fs::exists(final_dir, ec)) {
    fs::remove_all(old_dir);
    fs::rename(final_dir, old_dir);
  }
  fs::rename(tmp_dir, final_dir);
  sync_dir(checkpoints_dir);
  write_file_atomic(checkpoints_dir / kLatestFile, name + "\n");
  sync_dir(checkpoints_dir);
  remove_leftovers(checkpoints_dir, name, keep);
  return final_dir;
}

namespace {

void write_checkpoint_files(const fs::path& tmp_dir, const TrainingCheckpoint& checkpoint) {
  write_tensor_file(tmp_dir / kModelFile, checkpoint.model);
  // Test hook: pause inside the write (of one step only, if LLMFS_TEST_CHECKPOINT_PAUSE_STEP is
  // set), so that a test can kill the process while the folder is half written.
  if (const char* pause = std::getenv("LLMFS_TEST_CHECKPOINT_PAUSE_MS")) {
    const char* only = std::getenv("LLMFS_TEST_CHECKPOINT_PAUSE_STEP");
    if (only == nullptr || std::atoll(only) == checkpoint.state.global_step) {
      spdlog::info("test hook: pausing {} ms inside the checkpoint write", pause);
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atoll(pause)));
    }
  }
  write_tensor_file(tmp_dir / kOptimizerFile, checkpoint.optimizer);
  write_tensor_file(tmp_dir / kRngFile, checkpoint.rng);
  write_file_atomic(tmp_dir / "config.yaml", checkpoint.config_yaml);
  write_file_atomic(tmp_dir / kTrainerStateFile, state_to_json(checkpoint.state).dump(1) + "\n");
  write_checksums(tmp_dir);  // last: a folder with checksums has all its files
  sync_dir(tmp_dir);
}

// Unfinished folders, then all but the newest `keep` checkpoints (never `name`).
void remove_leftovers(const fs::path& checkpoints_dir, const std::string& name, int64_t keep) {
  std::error_code ec;
  std::vector<std::pair<int64_t, fs::path>> complete;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    if (!entry.is_directory()) continue;
    const std::string n = entry.path().filename().string();
    if (n.ends_with(".tmp") || n.ends_with(".old")) {
      fs::remove_all(entry.path(), ec);
      continue;
    }
    if (const int64_t step = step_of(n); step >= 0) complete.emplace_back(step, entry.path());
  }
  if (keep > 0 && static_cast<int64_t>(complete.size()) > keep) {
    std::sort(complete.begin(), complete.end());
    for (size_t i = 0; i + static_cast<size_t>(keep) < complete.size(); ++i) {
      if (complete[i].second.filename() == name) continue;
      fs::remove_all(complete[i].second, ec);
    }
  }
}

}  // namespace

TrainingCheckpoint load_checkpoint(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: no such checkpoint folder", dir.string());
  for (const char* file : {kModelFile, kOptimizerFile, kRngFile, kTrainerStateFile}) {
    if (!fs::is_regular_file(dir / file, ec)) {
      fail("{}: incomplete checkpoint (missing {})", dir.string(), file);
    }
  }
  if (const auto damaged = damaged_file(dir); !damaged.empty()) {
    const auto previous = previous_intact(dir);
    fail("{}: {} does not match its checksum (the checkpoint is damaged); {}", dir.string(),
         damaged,
         previous ? fmt::format("the previous checkpoint is intact: --resume {}", previous->string())
                  : std::string("no earlier intact checkpoint in its folder"));
  }
  TrainingCheckpoint c;
  c.state = state_from_json(read_file(dir / kTrainerStateFile), dir / kTrainerStateFile);
  c.model = read_tensor_file(dir / kModelFile);
  c.optimizer = read_tensor_file(dir / kOptimizerFile);
  c.rng = read_tensor_file(dir / kRngFile);
  if (fs::is_regular_file(dir / "config.yaml", ec)) c.config_yaml = read_file(dir / "config.yaml");
  return c;
}

}  // namespace llmfs
