#!/usr/bin/env bash
# CPU finetuning throughput of `ch06 train` against the book's chapter-6 loop in Python PyTorch,
# same torch build, same machine, same run: GPT-2 124M shape (random weights: the speed does not
# depend on them), batch 8 of 120 tokens, the book's strategy (last block, final norm and head
# trainable), AdamW lr 5e-5, weight decay 0.1; and the same for appendix E's LoRA (r 16, a 16).
#
#   scripts/bench_classify.sh [--steps 8] [--warmup 2] [--rounds 2] [--threads N] [--model tiny]
#
# Contestants, alternating within each round so that load from other processes hits all:
#   python book / python lora   the book's modules and torch.optim.AdamW (scripts/bench_classify.py)
#   llmfs book / llmfs lora     ch06 train with the book's arithmetic (configs/ch06.yaml), which
#                               computes the last block's query, feed-forward and the head only at
#                               the position the head reads (classifier.pooled_only)
#   llmfs fast / llmfs lora-fast  the same with configs/ch06/book_fast.yaml's kernels (sdpa
#                               attention, native layer norm and GELU, fused AdamW)
# Each times every optimizer step (zero_grad, forward, loss, backward, update) after --warmup
# untimed steps; throughput = tokens per step / the fastest timed step over all rounds.
# Target (issue "Chapter 6"): llmfs fast >= 1.3x python book.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

steps=8
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
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) llmfs_die "unknown argument $1 (see --help)" ;;
  esac
done

llmfs_default_data_dir
llmfs_configure
llmfs_build ch06
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
ch06="$LLMFS_BUILD_DIR/bin/ch06"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"

shape=()
if [ "$model" = tiny ]; then
  shape=(model.context_length=128 model.emb_dim=64 model.n_heads=2 model.n_layers=2)
fi

python_run() {  # strategy
  "$LLMFS_PY" "$LLMFS_ROOT/scripts/bench_classify.py" --model "$model" --strategy "$1" \
    --steps "$steps" --warmup "$warmup" --threads "$threads" --json |
    sed "s/^/{\"who\": \"python $1\", \"run\": /; s/\$/}/" >>"$results"
}

llmfs_run() {  # name config
  local out="$work/$1"
  "$ch06" train --config "$LLMFS_ROOT/configs/$2" --overwrite --log-level warn base_model=random \
    "${shape[@]}" train.device=cpu train.max_steps=$((warmup + steps)) train.eval_freq=0 \
    initial_eval_batches=0 final_eval=false train.final_checkpoint=false \
    train.output_dir="$out" >/dev/null
  printf '{"who": "llmfs %s", "run": %s}\n' "$1" "$(cat "$out/timing.json")" >>"$results"
}

for ((r = 1; r <= rounds; r++)); do
  llmfs_say "round $r/$rounds: python book";  python_run book
  llmfs_say "round $r/$rounds: llmfs fast";   llmfs_run fast ch06/book_fast.yaml
  llmfs_say "round $r/$rounds: llmfs book";   llmfs_run book ch06.yaml
  llmfs_say "round $r/$rounds: python lora";  python_run lora
  llmfs_say "round $r/$rounds: llmfs lora";   llmfs_run lora ch06/lora_r16_a16.yaml
done

"$LLMFS_PY" - "$results" "$warmup" <<'PY'
import json, sys
path, warmup = sys.argv[1], int(sys.argv[2])
best = {}
for line in open(path):
    r = json.loads(line)
    who, run = r["who"], r["run"]
    if who.startswith("python"):
        times = run["step_seconds"]
        tokens = run["batch_size"] * run["length"]
    else:  # llmfs: timing.json counts examples (the book's "examples seen"); 120 tokens each
        times = run["step_seconds"][warmup:]
        tokens = run["tokens"] / len(run["step_seconds"]) * 120
    best[who] = max(best.get(who, 0.0), tokens / min(times))
for who in ["python book", "llmfs book", "llmfs fast", "python lora", "llmfs lora"]:
    print(f"{who:12s} {best[who]:8.1f} tokens/s")
print(f"llmfs fast / python book: {best['llmfs fast'] / best['python book']:.2f}x  (target >= 1.3)")
print(f"llmfs book / python book: {best['llmfs book'] / best['python book']:.2f}x")
print(f"llmfs lora / python lora: {best['llmfs lora'] / best['python lora']:.2f}x")
PY
