#!/usr/bin/env bash
# The checks that need a GPU, as one prepared script for a lent GPU machine that has its own
# PyTorch and CMake but none of our Debian packages and no network.
#
#   scripts/gpu_check.sh pack    here (a machine with scripts/setup.sh's packages): gather what the
#                                build needs into gpu-pack/ (git-ignored, ~60 MB): the Debian
#                                libraries' headers, shared libraries, CMake and pkg-config files,
#                                pkgconf itself, and the data files the checks read
#   scripts/gpu_check.sh [run]   there, with gpu-pack/ carried along: build with the machine's
#                                torch (build-gpu/), then
#     1. the [.cuda] tests (CUDA kernels and generation on the GPU);
#     2. bench: `ch05 train` on cuda:0 in bf16 at context 1024 (GPT-2 124M, configs/ch05_fast.yaml)
#        against the book's training loop in Python under torch.autocast (scripts/bench_train.py),
#        tokens/s and MFU (model FLOPs/s over the bf16 matrix-multiply rate measured in the same
#        run) for both, and their ratio;
#     3. torchrun with 1 GPU: ch05 train through c10d's NCCL backend (5 steps).
#   Each step prints one line starting with "gpu_check:"; the exit code is non-zero when one failed.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pack="$root/gpu-pack"
mode="${1:-run}"

say() { printf 'gpu_check: %s\n' "$*"; }

if [ "$mode" = pack ]; then
  set -e
  source "$root/scripts/lib.sh"
  llmfs_default_data_dir
  rm -rf "$pack"
  mkdir -p "$pack/root" "$pack/data/gpt2"
  copy() {  # keeps the path under $pack/root
    local f
    for f in "$@"; do mkdir -p "$pack/root$(dirname "$f")" && cp -P "$f" "$pack/root$f"; done
  }
  # Headers, CMake/pkg-config files and libraries of the -dev packages; the runtime libraries
  # they link (libfoo.so.N) from the packages they depend on.
  dev=(libyaml-cpp-dev libfmt-dev libspdlog-dev libsentencepiece-dev libcli11-dev nlohmann-json3-dev
       libcpp-httplib-dev libgloo-dev catch2 libicu-dev libssl-dev zlib1g-dev)
  for p in "${dev[@]}"; do
    dpkg -L "$p" | while read -r f; do
      case "$f" in
        /usr/include/*|/usr/lib/x86_64-linux-gnu/*|/usr/share/pkgconfig/*|/usr/lib/cmake/*|/usr/share/cmake/*)
          [ -f "$f" ] || [ -L "$f" ] && copy "$f" ;;
      esac
    done
  done
  for lib in libyaml-cpp libfmt libspdlog libsentencepiece libcpp-httplib libicuuc libicudata libicui18n \
             libpkgconf libssl libcrypto libz; do
    for f in /usr/lib/x86_64-linux-gnu/"$lib".so.*; do [ -e "$f" ] && copy "$f"; done
  done
  rm -f "$pack"/root/usr/lib/x86_64-linux-gnu/*.a  # static archives are not needed
  find "$pack/root" -xtype l -delete             # links to libraries not packed
  cp "$(readlink -f "$(command -v pkg-config)")" "$pack/pkg-config"
  data="${LLMFS_DATA_DIR:-$HOME/.cache/llmfs/data}"
  cp "$data/the-verdict.txt" "$pack/data/"
  cp "$data/gpt2/encoder.json" "$data/gpt2/vocab.bpe" "$pack/data/gpt2/"
  du -sh "$pack"
  say "packed into $pack (carry gpu-pack with the run)"
  exit 0
fi

[ "$mode" = run ] || { echo "usage: scripts/gpu_check.sh [pack|run]" >&2; exit 2; }
[ -d "$pack/root" ] || { echo "gpu_check: no $pack: run 'scripts/gpu_check.sh pack' here first and carry it" >&2; exit 2; }
failed=0
step() {  # name command...
  local name="$1"
  shift
  if "$@"; then say "$name: passed"; else say "$name: FAILED"; failed=1; fi
}

python="${LLMFS_PYTHON:-python3}"
sysroot="$pack/root"
export PKG_CONFIG="$pack/pkg-config"
export PKG_CONFIG_SYSROOT_DIR="$sysroot"
export PKG_CONFIG_LIBDIR="$sysroot/usr/lib/x86_64-linux-gnu/pkgconfig:$sysroot/usr/share/pkgconfig"
export LD_LIBRARY_PATH="$sysroot/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LLMFS_DATA_DIR="$pack/data" LLMFS_OFFLINE=1
torch_prefix="$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
"$python" -c 'import torch; print("gpu_check: torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu_check: /'

build="$root/build-gpu"
configure() {
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLLMFS_PYTHON="$(command -v "$python")" \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$sysroot/usr;$sysroot/usr/lib/x86_64-linux-gnu/cmake" \
    -DPKG_CONFIG_EXECUTABLE="$PKG_CONFIG" -DCMAKE_INCLUDE_PATH="$sysroot/usr/include" \
    -DCMAKE_LIBRARY_PATH="$sysroot/usr/lib/x86_64-linux-gnu" -DLLMFS_CCACHE=OFF >"$build.configure.log" 2>&1 ||
    { tail -30 "$build.configure.log"; return 1; }
}
compile() {
  cmake --build "$build" -j "$(nproc)" --target ch05 llmfs_unit_tests >"$build.build.log" 2>&1 ||
    { grep -m20 -B2 -A6 'error' "$build.build.log"; return 1; }
}
step configure configure
step build compile
[ "$failed" = 0 ] || { say "the build failed; nothing else ran"; exit 1; }

# 1. The CUDA tests.
step "cuda tests" "$build/tests/llmfs_unit_tests" "[.cuda]"

# 2. Training speed on the GPU, bf16, context 1024, against the book's loop under autocast.
bench() {
  local out="$build/bench_train" steps=20 warmup=3 batch=8
  "$build/bin/ch05" train --config "$root/configs/ch05_fast.yaml" --overwrite --log-level warn \
    model.context_length=1024 train.data.max_length=1024 train.data.stride=128 \
    train.device=cuda train.precision=bf16 train.batch_size=$batch train.max_steps=$((warmup + steps)) \
    train.eval_freq=0 train.sample.max_new_tokens=0 train.final_checkpoint=false \
    train.output_dir="$out" >/dev/null || return 1
  "$python" "$root/scripts/bench_train.py" --variant book --device cuda --bf16 --context 1024 \
    --stride 128 --batch $batch --steps $steps --warmup $warmup \
    --data "$LLMFS_DATA_DIR/the-verdict.txt" --gpt2 "$LLMFS_DATA_DIR/gpt2" >"$out/python.json" || return 1
  "$python" - "$out/timing.json" "$out/python.json" "$warmup" <<'PY'
import json, sys, torch
ours, book, warmup = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
# The machine's bf16 matrix-multiply rate, measured now (8192^3, best of 10).
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
for _ in range(3): a @ b
torch.cuda.synchronize()
best = float("inf")
for _ in range(10):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); a @ b; e.record(); torch.cuda.synchronize()
    best = min(best, s.elapsed_time(e) / 1000)
peak = 2 * 8192 ** 3 / best
# Model FLOPs per token: 6 N (forward + backward of the weights) + 12 L T d (attention).
n_params, layers, ctx, dim = 162_971_136, 12, 1024, 768  # GPT-2 124M, untied head, context 1024
flops_per_token = 6 * n_params + 12 * layers * ctx * dim
steps = ours["step_seconds"][warmup:]
ours_rate = (ours["tokens"] / len(ours["step_seconds"])) / (sum(steps) / len(steps))
book_rate = book["tokens_per_step"] / (sum(book["step_seconds"]) / len(book["step_seconds"]))
for who, rate in [("llmfs ch05 train", ours_rate), ("book loop (autocast)", book_rate)]:
    print(f"gpu_check: {who:22s} {rate:10.0f} tokens/s  MFU {100 * rate * flops_per_token / peak:5.1f}%")
print(f"gpu_check: bf16 matmul rate {peak / 1e12:.0f} TFLOP/s; llmfs / book = {ours_rate / book_rate:.2f}x")
PY
}
step "bench_train bf16 context 1024" bench

# 3. torchrun with one GPU: the NCCL backend.
smoke() {
  "$python" -m torch.distributed.run --standalone --nproc_per_node=1 --no-python "$build/bin/ch05" \
    train --overwrite --log-level info model.n_layers=2 model.emb_dim=64 model.n_heads=4 \
    model.context_length=64 train.data.max_length=64 train.data.stride=64 train.device=cuda \
    train.max_steps=5 train.eval_freq=2 train.sample.max_new_tokens=0 \
    train.output_dir="$build/torchrun_smoke" 2>&1 | tee "$build/torchrun.log" | tail -5
  grep -q "c10d nccl process group" "$build/torchrun.log"
}
step "torchrun 1 GPU (nccl)" smoke
exit "$failed"
