#!/usr/bin/env bash
# Build llama.cpp's own server (llama-server) and llama-bench from the llama.cpp vendored in the
# llama-cpp-python sdist the app installs (0.3.36), with the options packaging/install.sh gives the
# in-process build on a GPU machine: CUDA for the GPU's architecture (packaging/cuda-arch.sh), native CPU
# code without AMX. No web UI (its assets come from the network).
#
#   bash tests/bench/gpu/build_server.sh LLAMA_CPP_SRC BUILD_DIR [JOBS]
set -euo pipefail
cd "$(dirname "$0")/../../.."
SRC=$1
B=$2
JOBS=${3:-$(nproc)}
ARCH=$(bash packaging/cuda-arch.sh)
NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
export CC=/usr/bin/gcc CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++   # the image's /opt/gcc wrappers crash (GPU.md)
t0=$SECONDS
cmake -S "$SRC" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" \
  -DGGML_NATIVE=ON -DCMAKE_C_FLAGS="$NOAMX" -DCMAKE_CXX_FLAGS="$NOAMX" \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
cmake --build "$B" --target llama-server llama-bench -j "$JOBS"
echo "server_build_s=$((SECONDS - t0)) arch=$ARCH"
ls -la "$B/bin"
