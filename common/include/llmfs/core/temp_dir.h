#pragma once

#include <filesystem>
#include <string>

namespace llmfs {

/// A folder of its own under the system's temp directory (`llmfs-<name>-<pid>`), created empty
/// and removed with everything in it when the object goes out of scope: scratch space for a
/// demonstration that writes files (chapter 5 saving and loading a model).
///
///   llmfs::TempDir scratch("ch05-5.4");
///   save_weights(model, scratch.path() / "model.pth");
class TempDir {
 public:
  explicit TempDir(const std::string& name);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace llmfs
