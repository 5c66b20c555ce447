#!/usr/bin/env bash
# CPU preference-tuning (DPO) throughput of `ch07 dpo` against the DPO loop of the book's bonus
# notebook (ch07/04) in Python PyTorch, same torch build, same machine, same run: the GPT-2 124M
# shape (random weights: the speed does not depend on them), the policy fully trainable and a
# frozen copy as the reference, the notebook's batches of instruction-data-with-preference.json
# (batch 8, shuffled with seed 123, chosen and rejected padded per batch, prompt masked), beta
# 0.1, AdamW lr 5e-6, weight decay 0.01.
#
#   scripts/bench_dpo.sh [--steps 6] [--warmup 2] [--rounds 2] [--threads N] [--model tiny]
#
# Contestants, alternating within each round:
#   python dpo    the book's modules, the notebook's DPO loss and torch.optim.AdamW
#                 (scripts/bench_dpo.py)
#   llmfs dpo     ch07 dpo with the book's arithmetic (configs/ch07/dpo.yaml)
#   llmfs fast    the same with sdpa attention, native layer norm and GELU, fused AdamW
# Each step is four forward passes (policy and reference, chosen and rejected) and one backward
# through the policy's two. Both sides train on the same batches in the same order, so each round
# compares the time of the same timed steps (after --warmup untimed ones); throughput = their
# tokens (chosen + rejected) / their time, the best round of each.
# Target: llmfs fast >= 1.3x python dpo.
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
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
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
  "$LLMFS_PY" "$LLMFS_ROOT/scripts/bench_dpo.py" --model "$model" --steps "$steps" \
    --warmup "$warmup" --threads "$threads" |
    sed 's/^/{"who": "python dpo", "run": /; s/$/}/' >>"$results"
}

llmfs_run() {  # name [overrides...]
  local name="$1"
  shift
  local out="$work/$name"
  "$ch07" dpo --config "$LLMFS_ROOT/configs/ch07/dpo.yaml" --overwrite --log-level warn \
    policy=random "${shape[@]}" train.device=cpu train.max_steps=$((warmup + steps)) \
    train.eval_freq=0 sample_tokens=0 compare_entries=0 train.final_checkpoint=false \
    train.output_dir="$out" "$@" >/dev/null
  printf '{"who": "llmfs %s", "run": %s}\n' "$name" "$(cat "$out/timing.json")" >>"$results"
}

fast=(model.attention=sdpa model.native_kernels=true train.fused_adamw=true)
for ((r = 1; r <= rounds; r++)); do
  llmfs_say "round $r/$rounds: python dpo"; python_run
  llmfs_say "round $r/$rounds: llmfs fast"; llmfs_run fast "${fast[@]}"
  llmfs_say "round $r/$rounds: llmfs dpo";  llmfs_run dpo
done

"$LLMFS_PY" - "$results" "$warmup" <<'PY'
import json, sys
path, warmup = sys.argv[1], int(sys.argv[2])
runs = [json.loads(line) for line in open(path)]
tokens = next(r["run"]["step_tokens"] for r in runs if r["who"] == "python dpo")
best = {}
for r in runs:
    who, run = r["who"], r["run"]
    times = run["step_seconds"] if who.startswith("python") else run["step_seconds"][warmup:]
    if len(times) != len(tokens):
        sys.exit(f"{who}: {len(times)} timed steps, python timed {len(tokens)}")
    best[who] = max(best.get(who, 0.0), sum(tokens) / sum(times))
for who in ["python dpo", "llmfs dpo", "llmfs fast"]:
    print(f"{who:12s} {best[who]:8.1f} tokens/s")
print(f"llmfs fast / python dpo: {best['llmfs fast'] / best['python dpo']:.2f}x  (target >= 1.3)")
print(f"llmfs dpo / python dpo: {best['llmfs dpo'] / best['python dpo']:.2f}x")
PY
