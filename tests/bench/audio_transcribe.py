"""Transcription speed (real-time factor) and word error rate of the speech model on this machine,
on espeak-ng sentences (needs espeak-ng; sox optional).

Three paths are timed:
- file: one recording of all sentences with pauses, VAD + word timestamps (`assistant listen --file`);
- live: the same recording cut into utterances by the streaming VAD (as from the microphone), then
  transcribed in batches of ~20 s of speech with words handed back by timestamps (`assistant listen`);
- one-by-one: each live utterance in its own Whisper call (what batching avoids; for comparison).
RTF = processing seconds / audio seconds (lower is faster); the median of --runs interleaved runs.

    python tests/bench/audio_transcribe.py                 # tiny.en, int8, all cores
    python tests/bench/audio_transcribe.py --whisper base --beam 5
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SENTENCES = [
    "The quarterly budget meeting moved to Thursday afternoon.",
    "Hello team, the server migration is finished.",
    "Lunch is at noon in the big room.",
    "Please send the report to Maria before Friday.",
    "The new printer on the second floor is broken again.",
    "We should book the flights to Berlin next week.",
    "Dinner reservations are at seven thirty.",
    "Can someone water the plants while I am away?",
    "The doctor called about your appointment on Monday.",
    "Remember to pick up the children from school at four.",
]


def normalize(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def wer(ref: list[str], hyp: list[str]) -> tuple[int, int]:
    """(edits, reference words): word-level Levenshtein distance."""
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
            prev, d[j] = d[j], cur
    return d[len(hyp)], len(ref)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--whisper", default="tiny.en")
    ap.add_argument("--beam", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    from audio.transcribe import Transcriber
    from audio.vad import VadSettings
    from tests.test_audio_speech import silence, speak

    tmp = Path(tempfile.mkdtemp())
    utterances = [speak(s, tmp) for s in SENTENCES]
    gap = silence(1.5)
    recording = np.concatenate([x for u in utterances for x in (u, gap)])
    audio_s = len(recording) / 16000
    speech_s = sum(len(u) for u in utterances) / 16000

    t = Transcriber(args.whisper, beam_size=args.beam, cpu_threads=args.threads,
                    models_dir=Path(tempfile.gettempdir()) / "assistant-bench-models")
    t0 = time.perf_counter()
    t.load()
    load_s = time.perf_counter() - t0
    t.transcribe(utterances[0])  # warm-up
    opts = VadSettings().faster_whisper_options()

    from audio.ingest import AudioIngestor, _batches
    from audio.vad import Segmenter

    seg = Segmenter()
    t0 = time.perf_counter()
    utts = [u for i in range(0, len(recording), 1600) for u in seg.feed(recording[i:i + 1600])] + seg.flush()
    vad_s = time.perf_counter() - t0
    ingestor = AudioIngestor(store=None, transcriber=t, clips_dir=tmp)
    batched = lambda: [tr.text for b in _batches([(u, None) for u in utts])
                       for tr in ingestor._transcribe_joined([u for u, _ in b])]

    times = {"file": [], "live": [], "one-by-one": []}
    texts = {}
    for _ in range(args.runs):  # interleaved
        for name, fn in (("file", lambda: [t.transcribe(recording, vad=True, vad_parameters=opts,
                                                         word_timestamps=True).text]),
                         ("live", batched),
                         ("one-by-one", lambda: [t.transcribe(u.audio).text for u in utts])):
            t0 = time.perf_counter()
            texts[name] = fn()
            times[name].append(time.perf_counter() - t0)

    print(f"model {args.whisper} ({t.device}, {t.compute_type}, beam {args.beam}, {t.cpu_threads} threads), "
          f"{os.cpu_count()} CPUs; load {load_s:.2f} s")
    print(f"audio: {len(SENTENCES)} espeak-ng sentences, {speech_s:.1f} s of speech, {audio_s:.1f} s with "
          f"pauses; streaming VAD cut {len(utts)} utterances in {vad_s:.2f} s")
    ref = [w for s in SENTENCES for w in normalize(s)]
    for name in times:
        med = statistics.median(times[name])
        e, n = wer(ref, normalize(" ".join(texts[name])))
        print(f"{name:>10}: median {med:.2f} s -> RTF {med / audio_s:.3f} of the recording "
              f"({med / speech_s:.3f} of the speech); WER {e / n:.3f} ({e}/{n})  "
              f"runs: {[round(x, 2) for x in times[name]]}")
    print("live transcripts:")
    for h in texts["live"]:
        print(f"  {h}")


if __name__ == "__main__":
    main()
