#!/usr/bin/env bash
# CPU instruction-finetuning throughput of `ch07 finetune` against the book's chapter-7 loop in
# Python PyTorch, same torch build, same machine, same run: the GPT-2 124M shape (random weights:
# the speed does not depend on them; the book finetunes 355M), every parameter trainable, the
# book's batches of instruction-data.json (batch 8, shuffled with seed 123, padded per batch),
# AdamW lr 5e-5, weight decay 0.1.
#
#   scripts/bench_instruct.sh [--steps 6] [--warmup 2] [--rounds 2] [--threads N] [--model tiny]
#
# Contestants, alternating within each round:
#   python book   the book's modules and torch.optim.AdamW (scripts/bench_instruct.py)
#   llmfs book    ch07 finetune with the book's arithmetic (configs/ch07.yaml)
#   llmfs fast    the same with configs/ch07/fast.yaml (sdpa attention, native layer norm and
#                 GELU, fused AdamW)
# Both sides train on the same batches in the same order (tests/golden/test_instruct_parity.cpp
# shows the losses agree), so each round compares the time of the same timed steps (after
# --warmup untimed ones); throughput = their tokens / their time, the best round of each.
# Target (issue "Chapter 7"): llmfs fast >= 1.3x python book.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

steps=6
warmup=2
rounds=2
threads="$(nproc)"
model=124M
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) llmfs_die "unknown argument $1 (see --help)" ;;
  esac
done

llmfs_default_data_dir
llmfs_configure
llmfs_build ch07
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
ch07="$LLMFS_BUILD_DIR/bin/ch07"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"

shape=(model.emb_dim=768 model.n_heads=12 model.n_layers=12)
if [ "$model" = tiny ]; then
  shape=(model.context_length=128 model.emb_dim=64 model.n_heads=2 model.n_layers=2
         data.allowed_max_length=128)
fi

python_run() {
  "$LLMFS_PY" "$LLMFS_ROOT/scripts/bench_instruct.py" --model "$model" --steps "$steps" \
    --warmup "$warmup" --threads "$threads" |
    sed 's/^/{"who": "python book", "run": /; s/$/}/' >>"$results"
}

llmfs_run() {  # name config
  local out="$work/$1"
  "$ch07" finetune --config "$LLMFS_ROOT/configs/$2" --overwrite --log-level warn \
    base_model=random "${shape[@]}" train.device=cpu train.max_steps=$((warmup + steps)) \
    train.eval_freq=0 initial_eval=false sample_tokens=0 train.final_checkpoint=false \
    train.output_dir="$out" >/dev/null
  printf '{"who": "llmfs %s", "run": %s}\n' "$1" "$(cat "$out/timing.json")" >>"$results"
}

for ((r = 1; r <= rounds; r++)); do
  llmfs_say "round $r/$rounds: python book"; python_run
  llmfs_say "round $r/$rounds: llmfs fast";  llmfs_run fast ch07/fast.yaml
  llmfs_say "round $r/$rounds: llmfs book";  llmfs_run book ch07.yaml
done

"$LLMFS_PY" - "$results" "$warmup" <<'PY'
import json, sys
path, warmup = sys.argv[1], int(sys.argv[2])
runs = [json.loads(line) for line in open(path)]
tokens = next(r["run"]["step_tokens"] for r in runs if r["who"] == "python book")
best = {}
for r in runs:
    who, run = r["who"], r["run"]
    times = run["step_seconds"] if who.startswith("python") else run["step_seconds"][warmup:]
    if len(times) != len(tokens):
        sys.exit(f"{who}: {len(times)} timed steps, python timed {len(tokens)}")
    best[who] = max(best.get(who, 0.0), sum(tokens) / sum(times))
for who in ["python book", "llmfs book", "llmfs fast"]:
    print(f"{who:12s} {best[who]:8.1f} tokens/s")
print(f"llmfs fast / python book: {best['llmfs fast'] / best['python book']:.2f}x  (target >= 1.3)")
print(f"llmfs book / python book: {best['llmfs book'] / best['python book']:.2f}x")
PY
