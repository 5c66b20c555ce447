#!/usr/bin/env bash
# Downloads OpenAI's GPT-2 weights as Hugging Face publishes them (model.safetensors and
# config.json of openai-community/gpt2, -medium, -large, -xl) into ~/.cache/llmfs/gpt2/<SIZE>/
# and prints that folder, which `ch04 generate --weights` and the chapters' load_weights accept.
#
#   scripts/download_gpt2.sh 124M          # 124M | 355M | 774M | 1558M
#
# Verification: the hashes are not pinned in this script; each file is checked against the hash
# the Hub states in the response headers of the same request: for LFS files (model.safetensors)
# X-Linked-Etag is the file's SHA-256, for plain git files (config.json) the ETag is the git blob
# SHA-1. A file already in the cache is reused without a download when it still matches the hash
# recorded beside it (<file>.sha256 / <file>.gitsha1) after its verified download, so a second run
# works offline. Downloads go to a temporary name and are renamed into place once verified.
#
# Environment: LLMFS_HF_ENDPOINT (default https://huggingface.co; a mirror), LLMFS_CACHE_DIR
# (default: $XDG_CACHE_HOME/llmfs or ~/.cache/llmfs; the C++ side reads the same).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  echo "usage: $(basename "$0") SIZE   (SIZE: 124M, 355M, 774M or 1558M)" >&2
  exit 2
}

[ $# -eq 1 ] || usage
case "$1" in
  124M) repo=gpt2 ;;
  355M) repo=gpt2-medium ;;
  774M) repo=gpt2-large ;;
  1558M) repo=gpt2-xl ;;
  -h | --help) usage ;;
  *) echo "error: unknown GPT-2 size '$1'" >&2; usage ;;
esac
size="$1"
command -v curl >/dev/null || llmfs_die "curl is not installed"
endpoint="${LLMFS_HF_ENDPOINT:-https://huggingface.co}"
dest="$LLMFS_CACHE/gpt2/$size"
mkdir -p "$dest"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
# git's object id of a file: SHA-1 of "blob <size>\0" followed by the bytes.
gitsha1_of() { { printf 'blob %d\0' "$(stat -c %s "$1")"; cat "$1"; } | sha1sum | cut -d' ' -f1; }

# A cached file is fine when it matches the hash recorded after its verified download.
cached_ok() {
  local file="$1" kind
  [ -f "$file" ] || return 1
  for kind in sha256 gitsha1; do
    if [ -f "$file.$kind" ]; then
      [ "$("${kind}_of" "$file")" = "$(cat "$file.$kind")" ] && return 0
      return 1
    fi
  done
  return 1
}

fetch() {
  local name="$1"
  local url="$endpoint/openai-community/$repo/resolve/main/$name"
  local file="$dest/$name"
  if cached_ok "$file"; then
    llmfs_say "$name: cached and verified"
    return 0
  fi
  # The headers of the first response (no redirect followed) carry the hash.
  local headers
  headers="$(curl -sS -I --max-redirs 0 --retry 3 "$url" | tr -d '\r')" ||
    llmfs_die "$name: cannot reach $url"
  local status
  status="$(printf '%s\n' "$headers" | head -n1 | cut -d' ' -f2)"
  case "$status" in
    200 | 301 | 302 | 303 | 307 | 308) ;;
    *) llmfs_die "$name: $url answered HTTP $status" ;;
  esac
  header() { { printf '%s\n' "$headers" | grep -i "^$1:" || true; } | head -n1 | cut -d: -f2- | tr -d ' "' | sed 's|^W/||'; }
  local expected kind
  expected="$(header x-linked-etag)"
  if [ -n "$expected" ]; then
    kind=sha256
  else
    expected="$(header etag)"
    case "${#expected}" in
      64) kind=sha256 ;;
      40) kind=gitsha1 ;;
      *) llmfs_die "$name: the response names no SHA-256 or git hash to verify against" ;;
    esac
  fi
  llmfs_say "$name: downloading ($kind $expected)"
  local tmp="$file.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  local progress=(-sS)
  [ -t 2 ] && progress=(--progress-bar)
  curl -fL --retry 3 "${progress[@]}" -o "$tmp" "$url" || llmfs_die "$name: download from $url failed"
  local actual
  actual="$("${kind}_of" "$tmp")"
  if [ "$actual" != "$expected" ]; then
    rm -f "$tmp"
    llmfs_die "$name: $kind $actual does not match the expected $expected (download corrupted; try again)"
  fi
  rm -f "$file.sha256" "$file.gitsha1"
  mv -f "$tmp" "$file"
  trap - EXIT
  printf '%s\n' "$actual" >"$file.$kind"
  llmfs_say "$name: verified"
}

fetch config.json
fetch model.safetensors
printf '%s\n' "$dest"
