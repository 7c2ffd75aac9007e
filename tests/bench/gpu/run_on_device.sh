#!/usr/bin/env bash
# Build llama-cpp-python 0.3.36 with CUDA on a GPU machine, make a synthetic Qwen2.5-1.5B Q8_0 GGUF there,
# and measure the app's backend against llama-cpp-python directly, on the GPU and on the CPU alone.
#
# The GPU machine has no internet, so first, on a machine that has it (from the repo root):
#   bash tests/bench/gpu/run_on_device.sh prepare
# puts into the ignored .gpu/ folder the llama-cpp-python sdist trimmed to what a CUDA build needs
# (~7 MB gzipped instead of 77 MB) and the diskcache wheel (a llama-cpp-python dependency missing there).
# Then, on the GPU machine, with .gpu/llama_cpp_python-0.3.36-trim.tar.gz and .gpu/diskcache-*.whl there:
#   bash tests/bench/gpu/run_on_device.sh      # results in $OUT (default .gpu/out)
# It needs nvcc, cmake, ninja and python3 with numpy, jinja2, typing_extensions, pyyaml and
# scikit-build-core there. Every step is skipped when its output is already there (a warm machine).
#
# Environment: RUNS_GPU (10), RUNS_CPU (5), THREADS (16), DEADLINE (seconds for the whole script, 570).
set -uo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$PWD
G=$ROOT/.gpu
OUT=${OUT:-$G/out}
mkdir -p "$OUT" "$G/src" "$G/model"
SDIST=$G/llama_cpp_python-0.3.36-trim.tar.gz
SRC=$G/src/llama_cpp_python-0.3.36
SITE=$G/site
MODEL=$G/model/qwen2.5-1.5b-synthetic-q8_0.gguf
RUNS_GPU=${RUNS_GPU:-10}
RUNS_CPU=${RUNS_CPU:-5}
THREADS=${THREADS:-16}
DEADLINE=${DEADLINE:-570}
export PYTHONUNBUFFERED=1
log() { echo "[$(date +%T) +${SECONDS}s] $*"; }

if [ "${1:-}" = prepare ]; then
  set -e
  mkdir -p "$G"
  tmp=$(mktemp -d)
  python3 -m pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d "$tmp"
  python3 -m pip download --no-deps --only-binary :all: diskcache==5.6.3 -d "$G"
  tar xzf "$tmp"/llama_cpp_python-0.3.36.tar.gz -C "$tmp"
  s=$tmp/llama_cpp_python-0.3.36
  l=$s/vendor/llama.cpp
  rm -rf "$s"/{.git,.github,docs,examples,tests,docker}
  rm -rf "$l"/{.git,.github,docs,media,tests,benches,examples,scripts,conversion}
  for d in "$l"/ggml/src/ggml-*/; do
    case $(basename "$d") in ggml-cpu|ggml-cuda|ggml-blas) ;; *) rm -rf "$d" ;; esac
  done
  for d in "$l"/tools/*/; do [ "$(basename "$d")" = mtmd ] || rm -rf "$d"; done  # mtmd: its CMake is needed
  find "$l/models" -mindepth 1 ! -name ggml-vocab-qwen2.gguf -exec rm -rf {} +   # the real Qwen2 tokenizer
  tar czf "$G/llama_cpp_python-0.3.36-trim.tar.gz" -C "$tmp" llama_cpp_python-0.3.36
  rm -rf "$tmp"
  ls -la "$G"
  exit 0
fi

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  nvidia-smi -L
  /usr/local/cuda/bin/nvcc --version | tail -2
  lscpu | grep -E 'Model name|^CPU\(s\)'
  free -g | head -2
  python3 --version
  echo "image compilers: CC=${CC:-} CXX=${CXX:-} CUDAHOSTCXX=${CUDAHOSTCXX:-}"
  /usr/bin/g++ --version | head -1
} > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"

[ -d "$SRC" ] || tar xzf "$SDIST" -C "$G/src" || exit 1
VOCAB=$SRC/vendor/llama.cpp/models/ggml-vocab-qwen2.gguf
GGUF_PY=$SRC/vendor/llama.cpp/gguf-py

MPID=
if [ ! -s "$MODEL" ]; then
  log "making the synthetic model (in the background)"
  python3 tests/bench/gpu/make_synthetic_gguf.py --vocab-gguf "$VOCAB" --gguf-py "$GGUF_PY" --out "$MODEL.tmp" \
    > "$OUT/model.log" 2>&1 && mv "$MODEL.tmp" "$MODEL" &
  MPID=$!
fi

if [ ! -e "$SITE/llama_cpp/lib/libggml-cuda.so" ]; then
  log "building llama-cpp-python with CUDA"
  t0=$SECONDS
  # The image's default compilers (/opt/gcc wrappers) give a C++ runtime that crashes in llama.cpp at
  # model load: use the system gcc for C, C++ and as CUDA's host compiler.
  CC=/usr/bin/gcc CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++ \
  CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF" \
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    python3 -m pip install --no-build-isolation --no-deps --no-index --no-compile --target "$SITE" \
      --config-settings build-dir="$G/build" "$SRC" "$G"/diskcache-*.whl > "$G/build.log" 2>&1
  rc=$?
  echo "build_rc=$rc build_s=$((SECONDS - t0))" | tee "$OUT/build_time.txt"
  tail -c 200000 "$G/build.log" > "$OUT/build_tail.log"
  [ $rc -eq 0 ] || { log "build failed"; exit 1; }
else
  log "CUDA build already there"
fi
[ -n "$MPID" ] && { wait "$MPID" || { log "model failed"; cat "$OUT/model.log"; exit 1; }; }
cat "$OUT/model.log" 2>/dev/null

export PYTHONPATH=$SITE:$ROOT
python3 -c 'import assistant.llm as m, llama_cpp; print("llama_cpp", llama_cpp.__version__, "gpu offload", llama_cpp.llama_supports_gpu_offload(), "resolve_gpu_layers(auto) =", m.resolve_gpu_layers("auto"))' \
  || { log "import of assistant.llm failed"; exit 1; }

log "GPU: app vs direct, flash attention off and on"
timeout $((DEADLINE - SECONDS - 90)) python3 tests/bench/gpu/speed.py --model "$MODEL" --label gpu --runs "$RUNS_GPU" \
  --threads "$THREADS" --flash-attn off,on --json "$OUT/gpu.json" 2>&1
log "CPU only (GPU hidden), $THREADS threads"
CUDA_VISIBLE_DEVICES= timeout $((DEADLINE - SECONDS)) python3 tests/bench/gpu/speed.py --model "$MODEL" --label cpu \
  --runs "$RUNS_CPU" --threads "$THREADS" --flash-attn off --json "$OUT/cpu.json" 2>&1
log "done"
