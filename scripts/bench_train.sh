#!/usr/bin/env bash
# CPU training throughput (tokens/s) of `ch05 train` against the book's loop in Python PyTorch,
# same torch build, same machine, same run: GPT_CONFIG_124M with context 256, drop_rate 0.1,
# the-verdict in windows of 256, batch 2, AdamW lr 4e-4, weight decay 0.1.
#
#   scripts/bench_train.sh [--steps 5] [--warmup 1] [--rounds 2] [--threads N] [--no-bf16]
#
# Contestants, alternating within each round so that load from other processes hits all:
#   python book        the book's modules and torch.optim.AdamW (scripts/bench_train.py)
#   python optimized   F.layer_norm, F.gelu(tanh), scaled_dot_product_attention, fused AdamW
#   llmfs book         ch05 train with configs/ch05.yaml (book-exact arithmetic)
#   llmfs fast         ch05 train with configs/ch05_fast.yaml (sdpa attention, native layer
#                      norm and GELU, fused AdamW)
# and in bf16 (left out with --no-bf16):
#   python book bf16 / python optimized bf16   the same under torch.autocast("cpu", bfloat16)
#   llmfs bf16         ch05 train with configs/ch05_bf16.yaml (the fast kernels under autocast,
#                      fp32 master weights and fused AdamW)
# Each times every optimizer step (zero_grad, forward, loss, backward, update) after --warmup
# untimed steps; a contestant's throughput is tokens per step / its fastest timed step over all
# rounds. The machine's limit, measured in the same rounds: torch's matrix-multiply rate,
# (512 x 768) @ (768 x 3072), in fp32 and in bf16; each llmfs row's model FLOPs/s (6 N per token
# plus attention, train/mfu.h, from its timing.json) over the rate of its dtype is its MFU.
# Targets: llmfs fast >= 1.3x python book and >= 1.0x python optimized (the issue "Chapter 5");
# llmfs bf16 >= 1.5x python book bf16 and >= 60% of the bf16 matmul rate (the issue "A bf16 CPU
# fast path"; on a CPU with bf16 units).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

steps=5
warmup=1
rounds=2
threads="$(nproc)"
bf16=1
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --no-bf16) bf16=0; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
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

python_run() {  # variant [--bf16]
  local who="python $1${2:+ bf16}"
  "$LLMFS_PY" "$LLMFS_ROOT/scripts/bench_train.py" --variant "$1" ${2:-} --steps "$steps" \
    --warmup "$warmup" --data "$data_dir/the-verdict.txt" --gpt2 "$data_dir/gpt2" |
    sed "s/^/{\"who\": \"$who\", \"run\": /; s/\$/}/" >>"$results"
}

matmul_rates() {  # torch's (512 x 768) @ (768 x 3072) in fp32 and bf16, best of ~0.5 s each
  "$LLMFS_PY" - <<'PY' >>"$results"
import json, time
import torch
for name, dtype in [("fp32", torch.float32), ("bf16", torch.bfloat16)]:
    a, b = torch.randn(512, 768, dtype=dtype), torch.randn(768, 3072, dtype=dtype)
    a @ b
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < 0.5:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"who": f"matmul {name}", "flops": 2 * 512 * 768 * 3072 / best}))
PY
}

llmfs_run() {  # name config
  local out="$work/$1"
  "$ch05" train --config "$LLMFS_ROOT/configs/$2" --overwrite --log-level warn \
    train.device=cpu train.max_steps=$((warmup + steps)) train.eval_freq=0 \
    train.sample.max_new_tokens=0 train.final_checkpoint=false train.output_dir="$out" >/dev/null
  printf '{"who": "llmfs %s", "run": %s}\n' "$1" "$(cat "$out/timing.json")" >>"$results"
}

for ((r = 1; r <= rounds; r++)); do
  llmfs_say "round $r/$rounds: matmul rates"
  matmul_rates
  llmfs_say "round $r/$rounds: python book"
  python_run book
  llmfs_say "round $r/$rounds: llmfs fast"
  llmfs_run fast ch05_fast.yaml
  llmfs_say "round $r/$rounds: python optimized"
  python_run optimized
  llmfs_say "round $r/$rounds: llmfs book"
  llmfs_run book ch05.yaml
  if [ "$bf16" = 1 ]; then
    llmfs_say "round $r/$rounds: python book bf16"
    python_run book --bf16
    llmfs_say "round $r/$rounds: llmfs bf16"
    llmfs_run bf16 ch05_bf16.yaml
    llmfs_say "round $r/$rounds: python optimized bf16"
    python_run optimized --bf16
  fi
done

"$LLMFS_PY" - "$results" "$warmup" <<'PY'
import json, sys
path, warmup = sys.argv[1], int(sys.argv[2])
best, flops_per_token, peak = {}, {}, {}
for line in open(path):
    r = json.loads(line)
    who = r["who"]
    if who.startswith("matmul"):
        peak[who[7:]] = max(peak.get(who[7:], 0.0), r["flops"])
        continue
    run = r["run"]
    if who.startswith("python"):
        times, tokens = run["step_seconds"], run["tokens_per_step"]
    else:  # llmfs: timing.json has every step; the first `warmup` are not timed
        times = run["step_seconds"][warmup:]
        tokens = run["tokens"] / len(run["step_seconds"])
        flops_per_token[who] = run["flops_per_token"]
    best[who] = max(best.get(who, 0.0), tokens / min(times))
order = ["python book", "python optimized", "llmfs book", "llmfs fast",
         "python book bf16", "python optimized bf16", "llmfs bf16"]
print(f"{'':22} {'tokens/s':>9} {'model TFLOP/s':>13} {'of matmul rate':>14}")
for who in (w for w in order if w in best):
    dtype = "bf16" if who.endswith("bf16") else "fp32"
    fpt = flops_per_token.get("llmfs fast")  # the same model on every row
    rate = best[who] * fpt if fpt else 0.0
    print(f"{who:22} {best[who]:9.1f} {rate / 1e12:13.3f} {100 * rate / peak[dtype]:13.0f}%")
for dtype in ("fp32", "bf16"):
    print(f"torch matmul (512 x 768) @ (768 x 3072), {dtype}: {peak[dtype] / 1e12:.3f} TFLOP/s")
print(f"llmfs fast / python book:      {best['llmfs fast'] / best['python book']:.2f}x  (target >= 1.3)")
print(f"llmfs fast / python optimized: {best['llmfs fast'] / best['python optimized']:.2f}x  (target >= 1.0)")
print(f"llmfs book / python book:      {best['llmfs book'] / best['python book']:.2f}x")
if "llmfs bf16" in best:
    mfu = best["llmfs bf16"] * flops_per_token["llmfs bf16"] / peak["bf16"]
    print(f"llmfs bf16 / python book bf16:      {best['llmfs bf16'] / best['python book bf16']:.2f}x  (target >= 1.5)")
    print(f"llmfs bf16 / python optimized bf16: {best['llmfs bf16'] / best['python optimized bf16']:.2f}x")
    print(f"llmfs bf16 / llmfs fast (fp32):     {best['llmfs bf16'] / best['llmfs fast']:.2f}x")
    print(f"llmfs bf16 model FLOPs/s: {100 * mfu:.0f}% of the bf16 matmul rate  (target >= 60%)")
PY
