#pragma once
// A child process for the chapter tests that drive a run as a user does (signals, kills, reading
// its output as it comes).
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "catch.h"
#include "llmfs/core/file_io.h"

namespace llmfs::test {

/// A running program: stdout through a pipe, read line by line; stderr into a file.
class ChildProcess {
 public:
  // file_size_limit > 0: RLIMIT_FSIZE in bytes, with SIGXFSZ ignored, so that a write past it
  // fails with EFBIG as a write to a full disk fails with ENOSPC.
  ChildProcess(const std::string& binary, const std::vector<std::string>& args,
               const std::vector<std::string>& env = {}, long file_size_limit = 0) {
    err_path_ = std::filesystem::temp_directory_path() / fmt::format("llmfs_child_{}_{}.err", ::getpid(), counter()++);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(err, STDERR_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      // One thread: the tiny model runs several times faster on a busy machine, and every run
      // of a comparison uses the same thread count.
      ::setenv("OMP_NUM_THREADS", "1", 1);
      for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
      if (file_size_limit > 0) {
        ::signal(SIGXFSZ, SIG_IGN);
        const rlimit limit{static_cast<rlim_t>(file_size_limit), static_cast<rlim_t>(file_size_limit)};
        ::setrlimit(RLIMIT_FSIZE, &limit);
      }
      std::vector<char*> argv = {const_cast<char*>(binary.c_str())};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      std::_Exit(127);
    }
    ::close(fds[1]);
    out_ = ::fdopen(fds[0], "r");
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ > 0 && !waited_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    if (out_) std::fclose(out_);
  }

  // The next stdout line; false at the end.
  bool read_line(std::string& line) {
    line.clear();
    for (int c; (c = std::fgetc(out_)) != EOF;) {
      if (c == '\n') {
        lines_.push_back(line);
        return true;
      }
      line += static_cast<char>(c);
    }
    if (!line.empty()) lines_.push_back(line);
    return !line.empty();
  }
  // Reads until a line contains `text`; true if one did.
  bool read_until(const std::string& text) {
    for (std::string line; read_line(line);) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }
  void signal(int sig) { ::kill(pid_, sig); }
  pid_t pid() const { return pid_; }
  // Reads the rest of stdout, waits; the exit code (128 + signal when killed).
  int wait() {
    if (!waited_) {
      for (std::string line; read_line(line);) {
      }
      int status = 0;
      ::waitpid(pid_, &status, 0);
      waited_ = true;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return code_;
  }
  const std::vector<std::string>& lines() const { return lines_; }
  std::string err() const { return std::filesystem::exists(err_path_) ? llmfs::read_file(err_path_) : ""; }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::filesystem::path err_path_;
  std::vector<std::string> lines_;
  bool waited_ = false;
  int code_ = -1;
};

}  // namespace llmfs::test
