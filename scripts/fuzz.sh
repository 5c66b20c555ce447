#!/usr/bin/env bash
# Fuzzes the parsers: builds the libFuzzer harnesses of tests/fuzz/ with clang, AddressSanitizer
# and UBSan (their own project, build folder build-fuzz/), runs each for N seconds and prints one
# table: executions, coverage, corpus size and crashes per target. A crash input is minimised and
# saved as tests/fuzz/regressions/<target>/crash-<hash>; the normal test suite replays every saved
# input (tests fuzz.replay.<target>), so a fixed crash stays fixed.
#
#   scripts/fuzz.sh [TARGET...] [--seconds N]     default: every target, 60 s each
#
# The corpus each run grows is kept in build-fuzz/corpus/<target>/ (seeded from
# tests/fuzz/seeds/<target>/ and, for the tokenizer, pieces of the data files).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seconds=60
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) llmfs_die "unknown option $1 (see --help)" ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || llmfs_die "--seconds: a positive integer, got '$seconds'"

fuzz_dir="$LLMFS_ROOT/tests/fuzz"
all=($(sed -n 's/^set(LLMFS_FUZZ_TARGETS \(.*\))$/\1/p' "$fuzz_dir/targets.cmake"))
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || llmfs_die "unknown target '$t' (targets: ${all[*]})"
done

llmfs_ensure_setup
command -v clang++ >/dev/null || llmfs_die "clang++ not found (scripts/setup.sh installs clang)"
build="${LLMFS_FUZZ_BUILD_DIR:-$LLMFS_ROOT/build-fuzz}"
mkdir -p "$build"
if [ -n "${Torch_DIR:-}" ]; then
  torch_arg=(-DTorch_DIR="$Torch_DIR")
else
  torch_arg=(-DCMAKE_PREFIX_PATH="$("$LLMFS_PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')")
fi
cmake -S "$fuzz_dir" -B "$build" -DCMAKE_CXX_COMPILER=clang++ "${torch_arg[@]}" >"$build/configure.log" 2>&1 ||
  { tail -n 20 "$build/configure.log" >&2; llmfs_die "configuring $build failed (log: $build/configure.log)"; }
cmake --build "$build" -j "$LLMFS_JOBS" >&2 || llmfs_die "building the harnesses failed"
llmfs_default_data_dir
data="${LLMFS_DATA_DIR:-$HOME/.cache/llmfs/data}"

# The tokenizer's seeds: pieces of the texts the project reads (a leading NUL: text mode).
seed_texts() {
  local out="$1" f
  for f in the-verdict.txt instruction-data.json; do
    [ -f "$data/$f" ] || continue
    head -c 20000 "$data/$f" | split -b 400 - "$out/${f%%.*}_"
  done
  for f in "$out"/*_*; do
    [ -f "$f" ] || continue
    { printf '\0'; cat "$f"; } >"$f.seed" && mv "$f.seed" "$f"
  done
}

results="$build/results.tsv"
: >"$results"
failed=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  rm -f "$artifacts"/*
  [ "$t" = bpe ] && [ -z "$(ls -A "$corpus")" ] && seed_texts "$corpus"
  dict=()
  [ -f "$fuzz_dir/$t.dict" ] && dict=(-dict="$fuzz_dir/$t.dict")
  llmfs_say "fuzzing $t for $seconds s"
  log="$build/$t.log"
  set +e
  LLMFS_DATA_DIR="$data" "$build/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 \
    -rss_limit_mb=4096 -timeout=10 "${dict[@]}" -artifact_prefix="$artifacts/" \
    "$corpus" "$fuzz_dir/seeds/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
  ft="$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
  crashes=0
  for crash in "$artifacts"/*; do
    [ -f "$crash" ] || continue
    crashes=$((crashes + 1))
    saved="$fuzz_dir/regressions/$t/$(basename "$crash")"
    mkdir -p "$(dirname "$saved")"
    LLMFS_DATA_DIR="$data" "$build/fuzz_$t" -minimize_crash=1 -max_total_time=60 \
      -exact_artifact_path="$saved" "$crash" >"$build/$t.minimize.log" 2>&1 || true
    [ -f "$saved" ] || cp "$crash" "$saved"
    llmfs_say "$t: crash saved as ${saved#$LLMFS_ROOT/} (log: $log)"
  done
  if [ "$rc" != 0 ] && [ "$crashes" = 0 ]; then
    llmfs_say "$t: the fuzzer exited with $rc and no crash input (log: $log)"
    crashes="?"
  fi
  [ "$crashes" = 0 ] || failed=1
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$seconds" "${execs:-0}" "${rate:-0}" \
    "${cov:-?}" "${ft:-?}" "$(ls "$corpus" | wc -l)" "$crashes" >>"$results"
done

printf '%-17s %8s %12s %8s %9s %9s %7s %8s\n' target seconds executions "exec/s" coverage features corpus crashes
while IFS=$'\t' read -r t s e r c f n k; do
  printf '%-17s %8s %12s %8s %9s %9s %7s %8s\n' "$t" "$s" "$e" "$r" "$c" "$f" "$n" "$k"
done <"$results"
exit "$failed"
