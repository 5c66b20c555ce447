#pragma once
// Reading the files Python fixtures write with torch.save (a dict of name -> tensor).

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "catch.h"

namespace llmfs::test {

/// torch.save({name: tensor, ...}) read with torch::pickle_load. REQUIREs the file.
inline std::map<std::string, torch::Tensor> load_tensor_dict(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto dict = torch::pickle_load(bytes).toGenericDict();
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : dict) out[e.key().toStringRef()] = e.value().toTensor();
  return out;
}

}  // namespace llmfs::test
