# Shared by setup.sh, run.sh, test.sh and the bench scripts: where things live and how to build.
# Source it; it defines functions and variables and runs nothing.
#
# Environment knobs (all optional):
#   LLMFS_VENV        the Python virtual environment (default: ~/.cache/llmfs/venv)
#   LLMFS_BUILD_DIR   the CMake build folder (default: <repo>/build)
#   LLMFS_BUILD_TYPE  CMake build type (default: Release)
#   LLMFS_JOBS        parallel compile jobs (default: 2, the machine the project is sized for)
#   LLMFS_SANITIZE    sanitizers to build with, e.g. address,undefined (scripts/test.sh --sanitize)
#   Torch_DIR         an existing LibTorch (its share/cmake/Torch); the venv's torch is used otherwise
#   LLMFS_SKIP_APT=1  never call apt-get (report missing packages instead)

LLMFS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LLMFS_CACHE="${LLMFS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/llmfs}"  # as llmfs::cache_root()
LLMFS_VENV="${LLMFS_VENV:-$LLMFS_CACHE/venv}"
LLMFS_BUILD_DIR="${LLMFS_BUILD_DIR:-$LLMFS_ROOT/build}"
LLMFS_BUILD_TYPE="${LLMFS_BUILD_TYPE:-Release}"
LLMFS_JOBS="${LLMFS_JOBS:-2}"
LLMFS_PY="$LLMFS_VENV/bin/python"
LLMFS_REQUIREMENTS="$LLMFS_ROOT/scripts/requirements.txt"

# Debian/Ubuntu packages the build and the tests need.
LLMFS_APT_PACKAGES=(
  g++ cmake make pkg-config ccache git ca-certificates python3 python3-venv
  libyaml-cpp-dev libfmt-dev libspdlog-dev libsentencepiece-dev sentencepiece catch2
  libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libssl-dev libicu-dev zlib1g-dev
  libgloo-dev  # the headers of c10d's Gloo backend (multi-process training on CPU)
  curl tmux chromium chromium-driver  # the ch07 chat / serve tests: curl, a terminal, a browser
  clang  # libFuzzer for scripts/fuzz.sh
)

llmfs_say() { printf '[llmfs] %s\n' "$*" >&2; }
llmfs_die() { printf '[llmfs] error: %s\n' "$*" >&2; exit 1; }

# Packages from LLMFS_APT_PACKAGES that are not installed (none printed: all there).
llmfs_missing_packages() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  local p
  for p in "${LLMFS_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$p"
  done
}

llmfs_requirements_hash() { sha256sum "$LLMFS_REQUIREMENTS" | cut -d' ' -f1; }

# True when the venv holds exactly what requirements.txt asks for (recorded by setup.sh).
llmfs_venv_ready() {
  [ -x "$LLMFS_PY" ] && [ "$(cat "$LLMFS_VENV/.llmfs-requirements" 2>/dev/null)" = "$(llmfs_requirements_hash)" ]
}

# Run setup.sh only when something is missing, so run.sh and test.sh stay fast once set up.
llmfs_ensure_setup() {
  if [ -n "$(llmfs_missing_packages)" ] || ! llmfs_venv_ready; then
    "$LLMFS_ROOT/scripts/setup.sh"
  fi
}

# Configure the build folder once (again when the LibTorch location changes); later calls only build.
llmfs_configure() {
  local prefix
  if [ -n "${Torch_DIR:-}" ]; then
    prefix="$Torch_DIR"
  else
    prefix="$("$LLMFS_PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')" ||
      llmfs_die "cannot import torch from $LLMFS_VENV (run scripts/setup.sh)"
  fi
  local stamp="$LLMFS_BUILD_DIR/.llmfs-configured"
  local want="$prefix|$LLMFS_BUILD_TYPE|$LLMFS_PY|${LLMFS_SANITIZE:-}"
  if [ -f "$LLMFS_BUILD_DIR/CMakeCache.txt" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  llmfs_say "configuring $LLMFS_BUILD_DIR ($LLMFS_BUILD_TYPE)"
  local torch_arg=(-DCMAKE_PREFIX_PATH="$prefix")
  [ -n "${Torch_DIR:-}" ] && torch_arg=(-DTorch_DIR="$Torch_DIR")
  cmake -S "$LLMFS_ROOT" -B "$LLMFS_BUILD_DIR" -DCMAKE_BUILD_TYPE="$LLMFS_BUILD_TYPE" \
    "${torch_arg[@]}" -DLLMFS_PYTHON="$LLMFS_PY" -DLLMFS_SANITIZE="${LLMFS_SANITIZE:-}" >&2 ||
    llmfs_die "cmake configure failed"
  printf '%s' "$want" >"$stamp"
}

# Build the given targets (all when none given).
llmfs_build() {
  local targets=()
  local t
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "$LLMFS_BUILD_DIR" -j "$LLMFS_JOBS" "${targets[@]}" >&2 || llmfs_die "build failed"
}

# The shared data folder beside the checkout, when there is one (the project's reference copies).
llmfs_default_data_dir() {
  if [ -z "${LLMFS_DATA_DIR:-}" ] && [ -d "$LLMFS_ROOT/../shared/data" ]; then
    LLMFS_DATA_DIR="$(cd "$LLMFS_ROOT/../shared/data" && pwd)"
    export LLMFS_DATA_DIR
  fi
}
