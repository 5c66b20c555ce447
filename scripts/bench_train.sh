#!/usr/bin/env bash
# CPU training throughput (tokens/s) of `ch05 train` against the book's loop in Python PyTorch,
# same torch build, same machine, same run: GPT_CONFIG_124M with context 256, drop_rate 0.1,
# the-verdict in windows of 256, batch 2, AdamW lr 4e-4, weight decay 0.1.
#
#   scripts/bench_train.sh [--steps 5] [--warmup 1] [--rounds 2] [--threads N]
#
# Four contestants, alternating within each round so that load from other processes hits all:
#   python book        the book's modules and torch.optim.AdamW (scripts/bench_train.py)
#   python optimized   F.layer_norm, F.gelu(tanh), scaled_dot_product_attention, fused AdamW
#   llmfs book         ch05 train with configs/ch05.yaml (book-exact arithmetic)
#   llmfs fast         ch05 train with configs/ch05_fast.yaml (sdpa attention, native layer
#                      norm and GELU, fused AdamW)
# Each times every optimizer step (zero_grad, forward, loss, backward, update) after --warmup
# untimed steps; a contestant's throughput is tokens per step / its fastest timed step over all
# rounds. Targets (the issue "Chapter 5"): llmfs fast >= 1.3x python book, >= 1.0x python optimized.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

steps=5
warmup=1
rounds=2
threads="$(nproc)"
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) llmfs_die "unknown argument $1 (see --help)" ;;
  esac
done

llmfs_default_data_dir
llmfs_configure
llmfs_build ch05
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
ch05="$LLMFS_BUILD_DIR/bin/ch05"
data_dir="${LLMFS_DATA_DIR:-$HOME/.cache/llmfs/data}"
[ -f "$data_dir/the-verdict.txt" ] || llmfs_die "the-verdict.txt not found in $data_dir (set LLMFS_DATA_DIR)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"

python_run() {  # variant
  "$LLMFS_PY" "$LLMFS_ROOT/scripts/bench_train.py" --variant "$1" --steps "$steps" \
    --warmup "$warmup" --data "$data_dir/the-verdict.txt" --gpt2 "$data_dir/gpt2" |
    sed "s/^/{\"who\": \"python $1\", \"run\": /; s/\$/}/" >>"$results"
}

llmfs_run() {  # name config
  local out="$work/$1"
  "$ch05" train --config "$LLMFS_ROOT/configs/$2" --overwrite --log-level warn \
    train.device=cpu train.max_steps=$((warmup + steps)) train.eval_freq=0 \
    train.sample.max_new_tokens=0 train.final_checkpoint=false train.output_dir="$out" >/dev/null
  printf '{"who": "llmfs %s", "run": %s}\n' "$1" "$(cat "$out/timing.json")" >>"$results"
}

for ((r = 1; r <= rounds; r++)); do
  llmfs_say "round $r/$rounds: python book"
  python_run book
  llmfs_say "round $r/$rounds: llmfs fast"
  llmfs_run fast ch05_fast.yaml
  llmfs_say "round $r/$rounds: python optimized"
  python_run optimized
  llmfs_say "round $r/$rounds: llmfs book"
  llmfs_run book ch05.yaml
done

"$LLMFS_PY" - "$results" "$warmup" <<'PY'
import json, sys
path, warmup = sys.argv[1], int(sys.argv[2])
best = {}
for line in open(path):
    r = json.loads(line)
    who, run = r["who"], r["run"]
    if who.startswith("python"):
        times, tokens = run["step_seconds"], run["tokens_per_step"]
    else:  # llmfs: timing.json has every step; the first `warmup` are not timed
        times = run["step_seconds"][warmup:]
        tokens = run["tokens"] / len(run["step_seconds"])
    rate = tokens / min(times)
    best[who] = max(best.get(who, 0.0), rate)
for who in ["python book", "python optimized", "llmfs book", "llmfs fast"]:
    print(f"{who:18s} {best[who]:8.1f} tokens/s")
print(f"llmfs fast / python book:      {best['llmfs fast'] / best['python book']:.2f}x  (target >= 1.3)")
print(f"llmfs fast / python optimized: {best['llmfs fast'] / best['python optimized']:.2f}x  (target >= 1.0)")
print(f"llmfs book / python book:      {best['llmfs book'] / best['python book']:.2f}x")
PY
