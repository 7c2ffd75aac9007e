"""CPU used while listening to silence: blocks fed at real-time pace through the capture callback
(the one the sounddevice stream calls), with the streaming VAD running in the listener's worker thread.

Process CPU time (all threads) / wall time, in % of one core; the Whisper model and the embedder are
not loaded (nothing is transcribed when nothing is said). Two kinds of silence: digital zeros, and a
quiet room (white noise at about -60 dBFS, which the VAD still has to score).

    python tests/bench/audio_idle_cpu.py --seconds 20
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def run(kind: str, seconds: float, block_ms: int) -> tuple[float, int, int]:
    from audio.capture import Listener

    block = 16000 * block_ms // 1000
    rng = np.random.default_rng(0)
    got = []
    listener = Listener(lambda u, t: got.append(u))
    listener.start(open_stream=False)
    n = int(seconds * 1000 / block_ms)
    blocks = [np.zeros((block, 1), np.float32) if kind == "zeros"
              else (rng.standard_normal((block, 1)) * 0.001).astype(np.float32) for _ in range(50)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        listener.callback(blocks[i % 50], block, None, None)
        # real-time pace: sleep until the next block would arrive from the sound card
        delay = wall0 + (i + 1) * block_ms / 1000 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    listener.wait_idle()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    listener.stop()
    return 100 * cpu / wall, len(got), n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--block-ms", type=int, default=100, help="block size the stream delivers (default 100 ms)")
    args = ap.parse_args()
    from audio.vad import StreamingVAD

    StreamingVAD()  # load the ONNX model before measuring
    print(f"{os.cpu_count()} CPUs; {args.seconds:.0f} s of silence per run, {args.block_ms} ms blocks at real-time pace")
    for kind in ("zeros", "noise -60 dBFS"):
        pct, utts, blocks = run(kind.split()[0], args.seconds, args.block_ms)
        print(f"{kind:>15}: {pct:.2f}% of one core ({blocks} blocks, {utts} utterances)")


if __name__ == "__main__":
    main()
