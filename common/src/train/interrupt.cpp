// SIGINT / SIGTERM as a request to stop training at the next step boundary.
#include "llmfs/train/interrupt.h"

#include <csignal>

#include "llmfs/core/error.h"

namespace llmfs {

namespace {

volatile std::sig_atomic_t g_signal = 0;  // the signal received, 0 if none
bool g_installed = false;
struct sigaction g_old_int, g_old_term;

extern "C" void on_signal(int signal_number) {
  if (g_signal != 0) {
    // Second signal: the user insists. Restore the default action and re-raise it.
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
    return;
  }
  g_signal = signal_number;
}

}  // namespace

InterruptGuard::InterruptGuard() {
  if (g_installed) fail("InterruptGuard: only one may exist at a time");
  g_signal = 0;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // blocking reads and writes go on after the handler
  sigaction(SIGINT, &action, &g_old_int);
  sigaction(SIGTERM, &action, &g_old_term);
  g_installed = true;
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
  g_installed = false;
}

bool InterruptGuard::requested() const { return g_signal != 0; }

const char* InterruptGuard::signal_name() const {
  switch (g_signal) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return g_signal == 0 ? "" : "signal";
  }
}

void InterruptGuard::reset() { g_signal = 0; }

void InterruptGuard::simulate(int signal_number) { g_signal = signal_number; }

}  // namespace llmfs
