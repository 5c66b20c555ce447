#!/usr/bin/env bash
# GPT-2 BPE encode throughput, ours against tiktoken's, single thread, in the same run.
#
#   scripts/bench_tokenizer.sh [FILE] [REPEAT]      default: middlemarch.txt, best of 5
#
# Both sides encode the whole file in one call with every special token allowed, read as raw UTF-8
# (the file's \r\n kept); the best of REPEAT runs counts. tiktoken is built offline from the same
# gpt2/encoder.json + vocab.bpe with GPT-2's pattern (RAYON_NUM_THREADS=1: one thread). The ids of
# both sides are compared, so a fast wrong answer cannot pass.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

file="${1:-middlemarch.txt}"
repeat="${2:-5}"

llmfs_configure
llmfs_build bench_tokenizer
llmfs_default_data_dir
[ -n "${LLMFS_DATA_DIR:-}" ] || llmfs_die "set LLMFS_DATA_DIR to the folder with gpt2/ and $file"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

ours="$("$LLMFS_BUILD_DIR/bin/bench_tokenizer" --input "$file" --repeat "$repeat" --ids-out "$work/ours.ids")"

RAYON_NUM_THREADS=1 TIKTOKEN_CACHE_DIR="" "$LLMFS_PY" - "$file" "$repeat" "$work/ours.ids" "$ours" <<'PY'
import json, os, sys, time
import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

name, repeat, ours_ids, ours_json = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
data = os.environ["LLMFS_DATA_DIR"]
path = name if os.path.isfile(name) else os.path.join(data, name)
ranks = data_gym_to_mergeable_bpe_ranks(os.path.join(data, "gpt2", "vocab.bpe"), os.path.join(data, "gpt2", "encoder.json"))
pat = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
enc = tiktoken.Encoding(name="gpt2", pat_str=pat, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})
with open(path, "rb") as f:
    raw = f.read()
text = raw.decode("utf-8")
best = float("inf")
for _ in range(repeat):
    start = time.perf_counter()
    ids = enc.encode(text, allowed_special="all")
    best = min(best, time.perf_counter() - start)

ours = json.loads(ours_json)
with open(ours_ids) as f:
    same = [int(t) for t in f.read().split()] == ids
mb = len(raw) / 1e6
print(f"file: {name} ({len(raw):,} bytes, {len(ids):,} tokens), best of {repeat}, single thread")
print(f"llmfs    : {mb / ours['best_s']:8.2f} MB/s  {ours['tokens'] / ours['best_s'] / 1e6:6.2f} M tokens/s  ({ours['best_s'] * 1e3:.1f} ms)")
print(f"tiktoken : {mb / best:8.2f} MB/s  {len(ids) / best / 1e6:6.2f} M tokens/s  ({best * 1e3:.1f} ms)")
print(f"ratio (llmfs / tiktoken): {best / ours['best_s']:.2f}x   ids identical: {same}")
sys.exit(0 if same else 1)
PY
