#!/usr/bin/env bash
# Runs one chapter executable, setting up and building first when needed.
#
#   scripts/run.sh ch05                      the main job: pretrain on the-verdict, then generate
#   scripts/run.sh ch02 --section 2.6        any chapter, with its own arguments
#   scripts/run.sh ch05 train train.num_epochs=2
#
# The first run installs dependencies (scripts/setup.sh) and builds; later runs rebuild only what
# changed. Data files come from LLMFS_DATA_DIR, ../shared/data when it exists, or are downloaded.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -ge 1 ] || llmfs_die "usage: scripts/run.sh chNN [arguments...]"
chapter="$1"
shift
[[ "$chapter" =~ ^ch0[1-7]$ ]] || llmfs_die "unknown chapter '$chapter' (expected ch01 ... ch07)"

llmfs_ensure_setup
llmfs_configure
llmfs_build "$chapter"
llmfs_default_data_dir

exe="$LLMFS_BUILD_DIR/bin/$chapter"
[ -x "$exe" ] || llmfs_die "$chapter was not built ($exe missing)"
if [ "$chapter" = ch05 ] && [ $# -eq 0 ]; then
  # The main job: train with the default config, then continue the book's prompt. A run already
  # in runs/ch05 (interrupted by Ctrl-C, say) is continued; a finished one is kept as it is.
  if [ -f runs/ch05/checkpoints/latest ]; then
    llmfs_say "runs/ch05 holds a run: continuing it (to start over: $exe train --overwrite)"
    "$exe" train --resume latest
  else
    "$exe" train
  fi
  exec "$exe" generate --prompt "Every effort moves you"
fi
exec "$exe" "$@"
