#!/usr/bin/env bash
# Data-parallel training on the CPU: tokens/s of `ch05 train` with 1 and with 2 processes
# (torchrun, c10d Gloo), the share of the step time spent averaging gradients, and PyTorch's own
# DistributedDataParallel on the same model and batch in the same run (torchrun, Gloo,
# scripts/bench_ddp.py). The model: GPT_CONFIG_124M, context 256, configs/ch05_fast.yaml's fast
# path (sdpa attention, native layer norm and GELU, fused AdamW) and its Python twin; `--batch`
# windows of the-verdict per process and step.
#
#   scripts/bench_ddp.sh [--steps 4] [--warmup 1] [--rounds 2] [--batch 2]
#
# The processes share the machine's cores: 1 process uses all of them, 2 processes half each
# (OMP_NUM_THREADS), so the 2-process rows show what splitting a machine costs or gains, and the
# comparison with PyTorch DDP is like for like. A contestant's throughput is the global tokens
# per step / its fastest timed step over all rounds. Target (issue 13): llmfs / PyTorch DDP >= 1.0x.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

steps=4
warmup=1
rounds=2
batch=2
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) llmfs_die "unknown argument $1 (see --help)" ;;
  esac
done

llmfs_default_data_dir
llmfs_configure
llmfs_build ch05
cores="$(nproc)"
half=$((cores > 1 ? cores / 2 : 1))
ch05="$LLMFS_BUILD_DIR/bin/ch05"
torchrun="$(dirname "$LLMFS_PY")/torchrun"
data_dir="${LLMFS_DATA_DIR:-$HOME/.cache/llmfs/data}"
[ -f "$data_dir/the-verdict.txt" ] || llmfs_die "the-verdict.txt not found in $data_dir (set LLMFS_DATA_DIR)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"

llmfs_args() {  # output folder
  printf '%s\n' train --config "$LLMFS_ROOT/configs/ch05_fast.yaml" --overwrite --log-level warn \
    train.device=cpu train.batch_size="$batch" train.max_steps=$((warmup + steps)) \
    train.eval_freq=0 train.sample.max_new_tokens=0 train.final_checkpoint=false \
    train.output_dir="$1"
}

llmfs_run() {  # processes
  local out="$work/llmfs_$1"
  mapfile -t args < <(llmfs_args "$out")
  if [ "$1" = 1 ]; then
    OMP_NUM_THREADS="$cores" "$ch05" "${args[@]}" >/dev/null
  else
    OMP_NUM_THREADS="$half" "$torchrun" --standalone --nproc_per_node="$1" --no-python \
      "$ch05" "${args[@]}" >/dev/null 2>"$work/torchrun.err" ||
      { cat "$work/torchrun.err" >&2; llmfs_die "torchrun ch05 failed"; }
  fi
  printf '{"who": "llmfs %s", "run": %s}\n' "$1" "$(cat "$out/timing.json")" >>"$results"
}

python_run() {  # processes
  local threads="$cores"
  [ "$1" = 1 ] || threads="$half"
  OMP_NUM_THREADS="$threads" "$torchrun" --standalone --nproc_per_node="$1" \
    "$LLMFS_ROOT/scripts/bench_ddp.py" --steps "$steps" --warmup "$warmup" --batch "$batch" \
    --data "$data_dir/the-verdict.txt" --gpt2 "$data_dir/gpt2" 2>"$work/python.err" |
    sed "s/^/{\"who\": \"pytorch $1\", \"run\": /; s/\$/}/" >>"$results" ||
    { cat "$work/python.err" >&2; llmfs_die "torchrun bench_ddp.py failed"; }
}

for ((r = 1; r <= rounds; r++)); do
  for who in "llmfs 2" "pytorch 2" "llmfs 1" "pytorch 1"; do
    llmfs_say "round $r/$rounds: $who process(es)"
    set -- $who
    if [ "$1" = llmfs ]; then llmfs_run "$2"; else python_run "$2"; fi
  done
done

"$LLMFS_PY" - "$results" "$warmup" "$cores" <<'PY'
import json, sys
path, warmup, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
best, share = {}, {}
for line in open(path):
    r = json.loads(line)
    who, run = r["who"], r["run"]
    if who.startswith("pytorch"):
        times, tokens = run["step_seconds"], run["tokens_per_step"]
    else:  # timing.json: every step, all ranks' tokens; the first `warmup` steps are not timed
        times = run["step_seconds"][warmup:]
        tokens = run["tokens"] / len(run["step_seconds"])
        total = sum(run["step_seconds"])
        if run.get("world_size", 1) > 1 and total > 0:
            share[who] = run["gradient_sync_seconds"] / total
    rate = tokens / min(times)
    if rate > best.get(who, 0.0):
        best[who] = rate
half = max(cores // 2, 1)
print(f"CPU cores: {cores}; 1 process: {cores} threads, 2 processes: {half} threads each (Gloo)")
for who in ["llmfs 1", "llmfs 2", "pytorch 1", "pytorch 2"]:
    print(f"{who + ' process(es)':22s} {best[who]:8.1f} tokens/s")
print(f"llmfs 2 / llmfs 1 processes:      {best['llmfs 2'] / best['llmfs 1']:.2f}x")
print(f"gradient all-reduce share of the llmfs 2-process step time: {100 * share.get('llmfs 2', 0):.1f}%")
print(f"llmfs 2 / PyTorch DDP 2 processes: {best['llmfs 2'] / best['pytorch 2']:.2f}x  (target >= 1.0)")
print(f"llmfs 1 / PyTorch 1 process:       {best['llmfs 1'] / best['pytorch 1']:.2f}x")
PY
