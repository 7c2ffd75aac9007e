#!/usr/bin/env bash
# Install what the tests need (system packages, test extras, the small models) and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ASSISTANT_VENV:-.venv}"
bash packaging/install.sh

# espeak-ng and sox make the speech the audio tests listen to; Chromium renders the HTML journal.
if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  echo "==> Installing espeak-ng and sox (test speech)" >&2
  $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q espeak-ng sox >/dev/null
fi
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  echo "==> Installing chromium (the HTML journal's rendering test)" >&2
  { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; } \
    || echo "    could not install chromium: that test will say it was skipped" >&2
fi

# The tests compare the numpy embedder with sentence-transformers, which needs PyTorch: the CPU build first,
# or pip would take a CUDA one of several GB.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==2.13.0"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test,small-models]"
exec "$VENV/bin/python" -m pytest tests -q -ra "$@"
