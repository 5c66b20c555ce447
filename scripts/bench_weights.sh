#!/usr/bin/env bash
# Checkpoint loading on the CPU with GPT-2 124M-sized random weights: llmfs against Python in the
# same run, on the same files:
#   read safetensors   llmfs load_safetensors        vs safetensors.torch.load_file
#   read .pth          llmfs load_pth (CRC-checked)  vs torch.load(weights_only=True)
#   build + load       GPTModel + load_weights(HF folder) vs GPT2LMHeadModel.from_pretrained
# The files (an HF folder and the book's .pth layout, ~1.2 GB) are made once in
# $LLMFS_BUILD_DIR/bench/weights. Best of N runs each side; prints the ratios (> 1: llmfs faster).
#
#   scripts/bench_weights.sh [--repeat 3] [--threads N]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repeat=3
threads="$(nproc)"
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) llmfs_die "unknown argument $1 (see --help)" ;;
  esac
done

llmfs_configure
llmfs_build bench_weights
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
dir="$LLMFS_BUILD_DIR/bench/weights"
mkdir -p "$dir"

if [ ! -f "$dir/book.pth" ]; then
  llmfs_say "making GPT-2 124M-sized random checkpoints in $dir"
  "$LLMFS_PY" - "$dir" "$LLMFS_ROOT/tests/reference" <<'PY'
import pathlib, sys, torch
sys.path.insert(0, sys.argv[2])
from fixtures_weights import _book_state_dict
from transformers import GPT2Config, GPT2LMHeadModel
out = pathlib.Path(sys.argv[1])
torch.manual_seed(0)
model = GPT2LMHeadModel(GPT2Config())
model.save_pretrained(out / "hf")
state = {k: v.detach().clone() for k, v in model.state_dict().items()}
torch.save(_book_state_dict(state, model.config), out / "book.tmp.pth")
(out / "book.tmp.pth").rename(out / "book.pth")
PY
fi

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
llmfs_say "llmfs"
"$LLMFS_BUILD_DIR/bin/bench_weights" --repeat "$repeat" --read "$dir/hf/model.safetensors" \
  --read "$dir/book.pth" --load "$dir/hf" >>"$results"
llmfs_say "Python"
"$LLMFS_PY" - "$dir" "$repeat" "$threads" >>"$results" <<'PY'
import json, sys, time, torch
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import logging
logging.set_verbosity_error()
d, repeat = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(int(sys.argv[3]))
def best(f):
    times = []
    for _ in range(repeat):
        start = time.perf_counter(); f(); times.append(time.perf_counter() - start)
    return min(times)
st, pth, hf = f"{d}/hf/model.safetensors", f"{d}/book.pth", f"{d}/hf"
config = GPT2Config.from_pretrained(hf)
existing = GPT2LMHeadModel(config)
def build_and_load():
    GPT2LMHeadModel(config).load_state_dict(load_file(st), strict=False)
rows = [("read:safetensors", lambda: load_file(st)),
        ("read:pth", lambda: torch.load(pth, weights_only=True)),
        ("build", lambda: GPT2LMHeadModel(config)),
        ("load", lambda: existing.load_state_dict(load_file(st), strict=False)),
        ("build+load", build_and_load),
        ("from_pretrained", lambda: GPT2LMHeadModel.from_pretrained(hf))]
for what, f in rows:
    print(json.dumps({"what": what, "best_s": best(f), "python": True}))
PY

"$LLMFS_PY" - "$results" "$threads" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
ours = {r["what"]: r["best_s"] for r in rows if not r.get("python")}
theirs = {r["what"]: r["best_s"] for r in rows if r.get("python")}
print(f"GPT-2 124M-sized checkpoints, CPU, {sys.argv[2]} thread(s), best of N runs; ratio > 1: llmfs faster")
print(f"{'':44} {'llmfs s':>8} {'Python s':>9} {'ratio':>7}  Python reference")
for what, label, ref, ref_label in [
        ("read:safetensors", "read model.safetensors (mapped, lazy)", "read:safetensors", "safetensors load_file"),
        ("read:pth", "read book.pth (mapped, CRC-checked)", "read:pth", "torch.load(weights_only)"),
        ("build", "build the model (random init)", "build", "GPT2LMHeadModel(config)"),
        ("load", "load HF folder into a built model", "load", "load_state_dict(load_file)"),
        ("build+load", "build + load HF folder", "build+load", "GPT2LMHeadModel + load_state_dict"),
        ("build+load", "build + load HF folder", "from_pretrained", "from_pretrained (no init, lazy)")]:
    print(f"{label:44} {ours[what]:8.3f} {theirs[ref]:9.3f} {theirs[ref] / ours[what]:6.2f}x  {ref_label}")
PY
