// Chapter 1: Understanding large language models.
//
// The book's first chapter has no code; this executable is the framework's self-check and the
// chapter's one table in numbers: the GPT-2 family, computed from the model configs.
//
//   ch01                       environment, GPT-2 family table, data files
//   ch01 --section 1.2         one section only
//   ch01 sizes=[124M,355M]     config overrides (see configs/ch01.yaml)
//   ch01 fetch-data            make sure every data file is present (download + SHA-256 check)
#include <torch/torch.h>
#include <torch/version.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "llmfs/config/cli.h"
#include "llmfs/core/build_info.h"
#include "llmfs/core/device.h"
#include "llmfs/core/repr.h"
#include "llmfs/core/sections.h"
#include "llmfs/core/data_files.h"
#include "llmfs/model/gpt_config.h"

namespace {

struct Ch01Config {
  std::vector<std::string> sizes = llmfs::gpt2_sizes();
  bool check_data = true;
};

Ch01Config parse_ch01_config(llmfs::ConfigNode node) {
  Ch01Config c;
  node.read("sizes", c.sizes);
  node.read("check_data", c.check_data);
  for (const auto& size : c.sizes) {
    const auto& known = llmfs::gpt2_sizes();
    node.check(std::find(known.begin(), known.end(), size) != known.end(), "sizes",
               "unknown GPT-2 size '{}' (use 124M, 355M, 774M or 1558M)", size);
  }
  return c;
}

void section_1_1() {
  fmt::print("llmfs {} ({} build, {})\n", llmfs::kVersion, llmfs::kBuildType, llmfs::kCompiler);
  fmt::print("LibTorch {}\n", TORCH_VERSION);
  fmt::print("CPU threads: {}\n", at::get_num_threads());
  if (torch::cuda::is_available()) {
    const auto names = llmfs::cuda_device_names();
    fmt::print("CUDA: available, {} device(s)\n", torch::cuda::device_count());
    for (size_t i = 0; i < names.size(); ++i) fmt::print("  cuda:{}  {}\n", i, names[i]);
  } else {
    fmt::print("CUDA: not available\n");
  }
  fmt::print("MPS: {}\n", torch::mps::is_available() ? "available" : "not available");
  fmt::print("Default device (device: auto): {}\n", llmfs::resolve_device("auto").str());
}

std::string megabytes(int64_t bytes) { return fmt::format("{:.2f} MB", static_cast<double>(bytes) / (1024.0 * 1024.0)); }

void section_1_2(const Ch01Config& cfg) {
  fmt::print("{:<6} {:>6} {:>5} {:>7} {:>15} {:>15} {:>11} {:>11}\n", "size", "layers", "heads", "emb_dim",
             "parameters", "tied head", "fp32", "bf16");
  for (const auto& size : cfg.sizes) {
    const auto model = llmfs::gpt2_config(size);
    const int64_t params = llmfs::count_gpt_parameters(model);
    fmt::print("{:<6} {:>6} {:>5} {:>7} {:>15} {:>15} {:>11} {:>11}\n", size, model.n_layers, model.n_heads,
               model.emb_dim, llmfs::group_thousands(params),
               llmfs::group_thousands(llmfs::count_gpt_parameters_tied(model)), megabytes(params * 4),
               megabytes(params * 2));
  }
  fmt::print("\nparameters: the book's GPTModel (separate output head, no qkv bias);\n"
             "tied head: the same model sharing the output head with the token embedding, as GPT-2 does.\n");
}

void section_1_3(const Ch01Config& cfg) {
  for (const auto& info : llmfs::known_data_files()) {
    const auto path = llmfs::find_data_file(info.name);
    if (!path) {
      fmt::print("{:<40} not found locally (downloaded on first use)\n", info.name);
      continue;
    }
    if (!cfg.check_data) {
      fmt::print("{:<40} {}\n", info.name, path->string());
      continue;
    }
    const bool ok = llmfs::sha256_file(*path) == info.sha256;
    fmt::print("{:<40} {}  {}\n", info.name, ok ? "sha256 ok      " : "SHA256 MISMATCH", path->string());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Chapter 1: Understanding large language models (framework self-check)"};
  llmfs::CommonOptions common;
  llmfs::add_common_options(app, common);
  std::string only_section;
  app.add_option("--section", only_section, "Run one section, e.g. 1.2");
  auto* fetch = app.add_subcommand("fetch-data", "Download every missing data file and check its hash");
  llmfs::add_common_options(*fetch, common);
  if (const auto code = llmfs::parse_command_line(app, argc, argv)) return *code;

  return llmfs::run_main([&] {
    if (fetch->parsed()) {
      llmfs::take_no_config(common, "fetch-data", "it fetches every data file");
      for (const auto& info : llmfs::known_data_files()) fmt::print("{}\n", llmfs::data_file(info.name).string());
      return 0;
    }
    const auto cfg = llmfs::load_config<Ch01Config>(common, parse_ch01_config);
    return llmfs::run_sections({{"1.1", "Environment", [&] { section_1_1(); }},
                                {"1.2", "The GPT-2 family", [&] { section_1_2(cfg); }},
                                {"1.3", "Data files", [&] { section_1_3(cfg); }}},
                               only_section);
  });
}
