#!/usr/bin/env bash
# Prints the CUDA architecture of the first NVIDIA GPU the driver can see (e.g. 90), or exits 1.
# The CUDA toolkit alone (nvcc) is not a GPU: machines often have it without one.
set -uo pipefail
command -v nvidia-smi >/dev/null 2>&1 || exit 1
command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ] || exit 1
nvidia-smi -L 2>/dev/null | grep -q '^GPU [0-9]' || exit 1
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
[[ "$cap" =~ ^[0-9]+$ ]] || exit 1
echo "$cap"
