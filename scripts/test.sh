#!/usr/bin/env bash
# Sets up if needed, builds everything, and runs the whole test suite through CTest.
#
#   scripts/test.sh                 all tests
#   scripts/test.sh -L unit         only the fast unit tests (any ctest arguments pass through)
#
# Golden tests compare against live Python references (tiktoken, HF transformers, PyTorch) from the
# venv that setup.sh made. Data files come from LLMFS_DATA_DIR, else ../shared/data when it exists.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

llmfs_ensure_setup
llmfs_configure
llmfs_build
llmfs_default_data_dir
if [ -z "${LLMFS_DATA_DIR:-}" ]; then
  # No data folder: make sure the data cache holds every file the tests read (downloads once).
  "$LLMFS_BUILD_DIR/bin/ch01" fetch-data >/dev/null || llmfs_die "could not fetch the data files"
fi

cd "$LLMFS_BUILD_DIR"
exec ctest --output-on-failure -j "$LLMFS_JOBS" "$@"
