#!/usr/bin/env bash
# Serving speed of `ch07 serve` against a Python reference server, same torch build, same machine,
# same run: a GPT-2 124M-shaped Hugging Face folder with random weights (seed 123; the speed does
# not depend on them), streaming POST /api/generate (Ollama's NDJSON), raw, a fixed 30-token
# prompt, greedy, num_predict --tokens; 1 and 8 concurrent clients, each sending --requests
# requests one after another. ch07 serve generates up to serve.parallel (8) requests together, one
# batched step per token; the reference, a minimal server, one at a time (a FIFO queue). To compare
# one at a time on both sides: scripts/bench_serve.sh -- serve.parallel=1
#
#   scripts/bench_serve.sh [--tokens 64] [--requests 4] [--rounds 1] [--threads 2]
#                          [--impl loop|generate] [--no-build] [--python-only] [-- SERVE_ARGS...]
#
# Contestants, alternating (the order flips with each concurrency and round):
#   llmfs    build/bin/ch07 serve --checkpoint MODEL --port 0 [SERVE_ARGS, e.g. config overrides]
#   python   scripts/bench_serve.py reference-server: transformers' GPT2LMHeadModel, one forward
#            through its KV cache per token (--impl generate: GPT2LMHeadModel.generate with a
#            streamer), torch.inference_mode, http.server.ThreadingHTTPServer
# Both get OMP_NUM_THREADS=MKL_NUM_THREADS=--threads (the reference also torch.set_num_threads)
# and one untimed warm-up request. Measured by the client (scripts/bench_serve.py client):
# tokens/s = all generated tokens (eval_count) / wall time of the whole load; TTFT = time from
# sending a request to its first non-empty NDJSON line, the median over the requests (at 8
# clients it includes the wait in the queue). The best round of each side counts.
# Targets: tokens/s llmfs / python >= 1.0x and TTFT python / llmfs >= 1.0x, at 1 and 8 clients.
# With --python-only (or a ch07 without `serve`) only the reference is measured.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tokens=64
requests=4
rounds=1
threads=2
impl=loop
build=1
llmfs=1
serve_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tokens) tokens="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --impl) impl="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --python-only) llmfs=0; shift ;;
    --) shift; serve_args=("$@"); break ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) llmfs_die "unknown argument $1 (see --help)" ;;
  esac
done
case "$impl" in loop|generate) ;; *) llmfs_die "--impl: loop or generate, got '$impl'" ;; esac

llmfs_default_data_dir
ch07="$LLMFS_BUILD_DIR/bin/ch07"
if [ "$llmfs" = 1 ]; then
  if [ "$build" = 1 ]; then
    llmfs_configure
    llmfs_build ch07
  fi
  if ! "$ch07" serve --help >/dev/null 2>&1; then
    llmfs_say "warning: $ch07 has no serve subcommand: measuring the Python reference only"
    llmfs=0
  fi
fi
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
bench_py="$LLMFS_ROOT/scripts/bench_serve.py"
work="$(mktemp -d)"
server_pids=()
cleanup() {
  local p
  for p in "${server_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${server_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
results="$work/results.jsonl"

llmfs_say "making the random GPT-2 124M model"
"$LLMFS_PY" "$bench_py" make-model "$work/model"

declare -A url
start_server() {  # name command...: starts it, waits for its "Listening on URL" line
  local name="$1"
  shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  local pid=$!
  server_pids+=("$pid")
  local line=""
  for _ in $(seq 600); do  # up to 300 s to load
    line="$(head -n 1 "$work/$name.out")"
    [ -n "$line" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$work/$name.err" >&2
      llmfs_die "$name server exited before listening"
    fi
    sleep 0.5
  done
  url[$name]="$(sed -n 's/^Listening on \(http:[^ ]*\).*/\1/p' <<<"$line")"
  [ -n "${url[$name]}" ] || llmfs_die "$name server: no 'Listening on http://...' line (got '$line')"
  llmfs_say "$name: ${url[$name]}"
}

run_client() {  # name concurrency requests tokens [record]
  local out
  if ! out="$("$LLMFS_PY" "$bench_py" client --url "${url[$1]}" --concurrency "$2" \
      --requests "$3" --tokens "$4")"; then
    llmfs_say "warning: $1 at $2 client(s): failed requests: $out"
    [ -n "$out" ] || { tail -n 20 "$work/$1.err" >&2; llmfs_die "$1: the client failed"; }
  fi
  [ "${5:-}" = record ] && printf '{"who": "%s", "run": %s}\n' "$1" "$out" >>"$results"
  return 0
}

who=(python)
start_server python "$LLMFS_PY" "$bench_py" reference-server --model "$work/model" --port 0 \
  --threads "$threads" --impl "$impl"
if [ "$llmfs" = 1 ]; then
  who=(llmfs python)
  start_server llmfs "$ch07" serve --checkpoint "$work/model" --port 0 "${serve_args[@]}"
fi
for w in "${who[@]}"; do
  llmfs_say "warm-up: $w"
  run_client "$w" 1 1 8
done

flip=0
for ((r = 1; r <= rounds; r++)); do
  for c in 1 8; do
    order=("${who[@]}")
    if [ "${#who[@]}" = 2 ] && [ $((flip % 2)) = 1 ]; then order=(python llmfs); fi
    flip=$((flip + 1))
    for w in "${order[@]}"; do
      llmfs_say "round $r/$rounds: $w, $c client(s) x $requests request(s), $tokens tokens"
      run_client "$w" "$c" "$requests" "$tokens" record
    done
  done
done

"$LLMFS_PY" - "$results" "$threads" "$tokens" "$requests" "$impl" <<'PY'
import json, sys
path, threads, tokens, requests, impl = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
runs = [json.loads(line) for line in open(path)]
best, text = {}, {}
for r in runs:
    key, run = (r["who"], r["run"]["concurrency"]), r["run"]
    b = best.setdefault(key, {"tps": 0.0, "ttft": None, "decode": 0.0, "errors": 0, "tokens": 0})
    b["tps"] = max(b["tps"], run["tokens_per_s"])
    if run["ttft_ms_median"] is not None:
        b["ttft"] = run["ttft_ms_median"] if b["ttft"] is None else min(b["ttft"], run["ttft_ms_median"])
    b["decode"] = max(b["decode"], run["decode_tokens_per_s_median"] or 0.0)
    b["errors"] += run["requests"] - run["ok"]
    b["tokens"] = max(b["tokens"], run["tokens"])
    text.setdefault(r["who"], run["text"])
print(f"GPT-2 124M shape, random weights, CPU, {threads} thread(s), prompt 30 tokens, num_predict "
      f"{tokens}, greedy, {requests} request(s) per client; python reference: {impl}; best round")
print(f"{'server':8} {'clients':>7} {'tokens/s':>9} {'TTFT ms':>9} {'decode tok/s':>12} {'tokens':>7} {'failed':>6}")
for (who, c), b in sorted(best.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    ttft = f"{b['ttft']:9.1f}" if b["ttft"] is not None else f"{'-':>9}"
    print(f"{who:8} {c:7d} {b['tps']:9.2f} {ttft} {b['decode']:12.2f} {b['tokens']:7d} {b['errors']:6d}")
if any(w == "llmfs" for w, _ in best):
    for c in (1, 8):
        l, p = best.get(("llmfs", c)), best.get(("python", c))
        if not (l and p):
            continue
        print(f"tokens/s llmfs / python @{c}: {l['tps'] / p['tps']:.2f}x  (target >= 1.0)")
        if l["ttft"] and p["ttft"]:
            print(f"TTFT python / llmfs @{c}: {p['ttft'] / l['ttft']:.2f}x  (target >= 1.0)")
    same = text.get("llmfs") == text.get("python")
    print(f"same greedy text from both servers: {'yes' if same else 'no (near-ties of a random model may differ)'}")
PY
