#!/usr/bin/env bash
# The README's install on a new machine of this kind: a fresh clone, no llama-cpp-python wheel in
# pip's cache (llama.cpp is compiled), a new virtual environment. Prints each step's elapsed time and
# the total. Usage: bash tests/bench/cold_install.sh [WORKDIR]   (WORKDIR is removed afterwards)
set -euo pipefail
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${1:-$(mktemp -d -t assistant-cold.XXXXXX)}"
trap 'rm -rf "$WORK"' EXIT
python3 -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true
git clone -q "$SRC" "$WORK/clone"
cd "$WORK/clone"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); cores: $(nproc)"
START=$(date +%s)
bash packaging/install.sh
echo "cold install: $(( $(date +%s) - START )) s; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
