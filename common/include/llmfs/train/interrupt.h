#pragma once

namespace llmfs {

/// Ctrl-C (SIGINT) and SIGTERM as a request to stop at the next step boundary. While one exists,
/// the first signal sets a flag the training loop polls (it then saves a checkpoint and stops);
/// a second signal ends the program at once, as without the guard. The previous handlers come
/// back when it is destroyed. One at a time per process.
///
///   llmfs::InterruptGuard interrupt;
///   for (...) { step(); if (interrupt.requested()) { save(); break; } }
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  /// Whether a signal arrived since construction (or the last reset()).
  bool requested() const;
  /// The signal that arrived ("SIGINT", "SIGTERM"), "" if none.
  const char* signal_name() const;
  void reset();

  /// Sets the flag as a signal would (for tests).
  static void simulate(int signal_number);
};

}  // namespace llmfs
