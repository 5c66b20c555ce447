#!/usr/bin/env bash
# Sets up if needed, builds everything, and runs the whole test suite through CTest.
#
#   scripts/test.sh                 all tests
#   scripts/test.sh -L unit         only the fast unit tests (any ctest arguments pass through)
#   scripts/test.sh --sanitize      the unit, golden and chapter tests built with AddressSanitizer
#                                   and UBSan (LLMFS_SANITIZE, default address,undefined) in
#                                   build-sanitize/; any report fails its test. LibTorch is not
#                                   instrumented; tests/sanitizers/lsan.supp lists the leaks
#                                   inside it that are suppressed, each with its reason.
#
# Golden tests compare against live Python references (tiktoken, HF transformers, PyTorch) from the
# venv that setup.sh made. Data files come from LLMFS_DATA_DIR, else ../shared/data when it exists.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ctest_args=()
if [ "${1:-}" = --sanitize ]; then
  shift
  export LLMFS_SANITIZE="${LLMFS_SANITIZE:-address,undefined}"
  LLMFS_BUILD_DIR="${LLMFS_SANITIZE_BUILD_DIR:-$LLMFS_ROOT/build-sanitize}"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=0:check_initialization_order=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$LLMFS_ROOT/tests/sanitizers/lsan.supp:print_suppressions=0}"
  # Instrumented code runs a few times slower: the usual labels, longer timeouts.
  ctest_args=(-L 'unit|golden|chapter|fuzz' -E 'fuzz.briefly' --timeout 3600)
fi
llmfs_ensure_setup
llmfs_configure
llmfs_build
llmfs_default_data_dir
if [ -z "${LLMFS_DATA_DIR:-}" ]; then
  # No data folder: make sure the data cache holds every file the tests read (downloads once).
  "$LLMFS_BUILD_DIR/bin/ch01" fetch-data >/dev/null || llmfs_die "could not fetch the data files"
fi

cd "$LLMFS_BUILD_DIR"
exec ctest --output-on-failure -j "$LLMFS_JOBS" "${ctest_args[@]}" "$@"
