#!/usr/bin/env bash
# Installs what llmfs needs on a Debian/Ubuntu machine. Safe to run again: it only adds what is missing.
#
#   scripts/setup.sh            Debian packages (through sudo when not root), then the Python venv
#
# 1. Debian packages: compiler, CMake, ccache and the C++ libraries (yaml-cpp, fmt, spdlog,
#    sentencepiece, Catch2, CLI11, nlohmann-json, cpp-httplib, OpenSSL, ICU), and for the chat and
#    server tests tmux, Chromium and its WebDriver.
# 2. A virtual environment outside the checkout (default ~/.cache/llmfs/venv, so every clone shares
#    it) with the torch wheel pinned in scripts/requirements.txt, whose LibTorch the C++ build links,
#    and the Python references the tests compare against (transformers, tiktoken, safetensors, ...).
#    With Torch_DIR set, CMake links that LibTorch instead; the venv is still made for the tests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- 1. Debian packages ------------------------------------------------------
mapfile -t missing < <(llmfs_missing_packages)
if ! command -v dpkg-query >/dev/null 2>&1; then
  llmfs_say "not a Debian/Ubuntu system: make sure these are installed: ${LLMFS_APT_PACKAGES[*]}"
elif [ ${#missing[@]} -gt 0 ]; then
  if [ "${LLMFS_SKIP_APT:-0}" = 1 ]; then
    llmfs_die "missing Debian packages (LLMFS_SKIP_APT=1, so not installing): ${missing[*]}"
  fi
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || llmfs_die "need root or sudo to install: ${missing[*]}"
    sudo=(sudo)
  fi
  llmfs_say "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq || llmfs_die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || llmfs_die "apt-get install failed for: ${missing[*]}"
else
  llmfs_say "Debian packages: all present"
fi

# --- 2. Python virtual environment --------------------------------------------
if llmfs_venv_ready; then
  llmfs_say "venv: $LLMFS_VENV is up to date"
else
  if [ ! -x "$LLMFS_PY" ]; then
    llmfs_say "creating venv $LLMFS_VENV"
    mkdir -p "$(dirname "$LLMFS_VENV")"
    python3 -m venv "$LLMFS_VENV" || llmfs_die "python3 -m venv failed (is python3-venv installed?)"
  fi
  llmfs_say "installing Python packages from scripts/requirements.txt (torch is large: a few minutes)"
  "$LLMFS_PY" -m pip install -q --upgrade pip >/dev/null || llmfs_die "pip upgrade failed"
  "$LLMFS_PY" -m pip install -q -r "$LLMFS_REQUIREMENTS" ||
    llmfs_die "pip install -r scripts/requirements.txt failed"
  llmfs_requirements_hash >"$LLMFS_VENV/.llmfs-requirements"
fi

torch_version="$("$LLMFS_PY" -c 'import torch; print(torch.__version__)')" ||
  llmfs_die "torch does not import in $LLMFS_VENV"
if [ -n "${Torch_DIR:-}" ]; then
  llmfs_say "LibTorch: Torch_DIR=$Torch_DIR (venv torch $torch_version serves the tests only)"
else
  llmfs_say "LibTorch: torch $torch_version from $LLMFS_VENV"
fi
llmfs_say "setup done"
