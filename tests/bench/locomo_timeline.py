#!/usr/bin/env python3
"""LoCoMo evidence recall of segment recall with and without timeline expansion, at equal word budgets.

    python tests/bench/locomo_timeline.py --data ../shared/data/locomo/locomo_dev.json --json OUT.json \
        [--llm qwen-1.5b --llm-convs 2 --llm-minutes 60]

Reuses the memory that tests/bench/locomo_recall.py builds and caches (.bench-cache/locomo_recall/...:
base.db and fast.db per conversation; run that script first). Links come from two sources:
- `sim`: no model; each segment is linked as SameTopic to its top-3 earlier segments of other sessions with
  key cosine >= the consolidation's threshold (what the graph gives without labels; an ablation).
- `llm-<model>`: the product's consolidation (memory/consolidate.py: one call per session that summarizes
  and labels links) run on a copy of fast.db, resumable (each session is a unit); only conversations whose
  consolidation finished are evaluated with it.

The measure is locomo_recall.py's (the reference rule): for each question of categories 1-4 with evidence,
the packed memories (header line "[date] topic" + text, whitespace words) fit the budget; the score is the
share of evidence turns inside. `segment` packs SegmentRecall.rank's list; `segment+timeline` packs the
same list after timelines.expand_ranked. The JSON has locomo_recall.py's shape ({method: {overall,
by_category, questions}}) with both methods side by side, plus build cost and link-label counts.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# llama.cpp's OpenMP threads spin while they wait; on a busy machine that costs 3-5x (see the report)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from locomo_recall import (BUDGETS, CATS, CachedEmbedder, Evaluator, asked_at, copy_db, ext_ids,  # noqa: E402
                           load_meta, nwords, save_meta)
from memory.bank import RecallParams, SegmentRecall  # noqa: E402
from memory.clock import human_date, utcnow  # noqa: E402
from memory.consolidate import Consolidator, Settings  # noqa: E402
from memory.store import Store  # noqa: E402
from memory.timelines import HOT_PATH_PARAMS, TimelineParams, earlier_candidates, expand_ranked, key_vectors  # noqa: E402

# the variants evaluated besides `segment` (params frozen: the first is the product's default)
VARIANTS = {
    "segment+timeline": TimelineParams(),
    "segment+timeline(top1,+2)": TimelineParams(expand_top=1, max_added=2),
    "segment+timeline(top5,+1)": TimelineParams(expand_top=5, max_added=1),
    "segment+timeline(top3,+3,depth3)": TimelineParams(expand_top=3, max_added=3, max_depth=3),
    "segment+changed-successor (hot path)": HOT_PATH_PARAMS,
    "segment+timeline(gate0.9)": TimelineParams(gate=0.9),
    "segment+timeline(gate0.8,top5)": TimelineParams(expand_top=5, max_added=1, gate=0.8),
    "segment+timeline(propagate0.5)": TimelineParams(max_added=0, always_current=False, propagate=0.5),
    "segment+timeline(propagate1)": TimelineParams(max_added=0, always_current=False, propagate=1.0),
    "segment+timeline(propagate0.5,gate0.9)": TimelineParams(propagate=0.5, gate=0.9),
}


def build_sim_links(store: Store, min_similarity: float, k: int = 3) -> int:
    """SameTopic links to the k most similar earlier segments of other sessions (no model)."""
    ids = [r[0] for r in store.db.execute("SELECT id FROM segments ORDER BY started_at, id")]
    vecs = key_vectors(store, ids)
    rows = []
    starts = dict(store.db.execute("SELECT id, started_at FROM segments").fetchall())
    for sid in ids:
        for e, sim in earlier_candidates(store, sid, k=k, min_similarity=min_similarity, vector=vecs.get(sid)):
            rows.append((e, sid, "SameTopic", starts[e], starts[sid], sim, "sim", utcnow()))
    with store.db.conn:
        store.db.conn.executemany(
            "INSERT OR IGNORE INTO links (earlier_id, later_id, label, earlier_at, later_at, similarity, method,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def ensure_sim(folder: Path, min_similarity: float) -> Path:
    path = folder / "timeline-sim.db"
    meta_path = folder / "timeline.json"
    meta = load_meta(meta_path)
    if not path.exists() or meta.get("sim", {}).get("min_similarity") != min_similarity:
        src = Store(folder / "fast.db")
        store = copy_db(src, path)
        src.db.conn.close()
        n = build_sim_links(store, min_similarity)
        store.close()
        meta["sim"] = {"min_similarity": min_similarity, "links": n}
        save_meta(meta_path, meta)
    return path


def consolidate_llm(folder: Path, emb, model, name: str, deadline: float, log) -> dict:
    """The product's consolidation on a copy of fast.db; resumable (each unit is a transaction)."""
    path = folder / f"timeline-llm-{name}.db"
    meta_path = folder / "timeline.json"
    meta = load_meta(meta_path)
    rec = meta.get(f"llm-{name}", {"seconds": 0.0, "llm_calls": 0, "prompt_tokens": 0,
                                   "completion_tokens": 0, "done": False})
    if rec.get("done"):
        return rec
    if not path.exists():
        src = Store(folder / "fast.db")
        copy_db(src, path).close()
        src.db.conn.close()
    store = Store(path)
    left = deadline - time.time()
    if left > 0:
        rep = Consolidator(store, emb, model, Settings()).run(max_seconds=left, trigger="bench")
        rec["seconds"] += rep.seconds
        rec["llm_calls"] += rep.llm_calls
        rec["prompt_tokens"] += rep.prompt_tokens
        rec["completion_tokens"] += rep.completion_tokens
        rec["done"] = rep.status == "done" and not rep.remaining
        rec["status"] = rep.status
    rec["labels"] = dict(store.db.execute("SELECT label, COUNT(*) FROM links GROUP BY label").fetchall())
    rec["segments"] = store.count("segments")
    rec["pairs"] = store.db.execute("SELECT COALESCE(SUM(candidates), 0) FROM link_log").fetchone()[0]
    store.close()
    meta[f"llm-{name}"] = rec
    save_meta(meta_path, meta)
    log(f"  {folder.name}: consolidation with {name}: {rec['llm_calls']} calls, {rec['seconds']:.0f}s"
        f"{' (done)' if rec['done'] else ''}; labels {rec['labels']}")
    return rec


def evaluate(store: Store, emb, qas, qvecs, ev: Evaluator, suffix: str = "", variants=VARIANTS) -> Counter:
    """`segment` and each timeline variant on the same ranked lists, at every budget; `segment (no time
    anchor)` is segment recall without the list of memories dated in the days a question names."""
    recall = SegmentRecall(store, emb, count_tokens=nwords, incremental=False)
    untimed = SegmentRecall(store, emb, count_tokens=nwords, incremental=False, params=RecallParams(time_weight=0))
    ids = ext_ids(store)
    now = asked_at(store)
    added = Counter()
    for q, qv in zip(qas, qvecs):
        evidence = {e.strip() for e in q["evidence"]}
        ranked, plain = {}, {}
        for b in BUDGETS:
            k = max(20, b // 25)
            if k not in ranked:
                ranked[k] = recall.rank(q["question"], k, query_vec=qv, now=now)
                plain[k] = untimed.rank(q["question"], k, query_vec=qv)
            lists = {"segment (no time anchor)": plain[k], "segment": ranked[k]}
            for name, params in variants.items():
                lists[name] = expand_ranked(store, ranked[k], qv, params)[0]
            for name, cands in lists.items():
                mems = recall.pack(cands, b)
                words = sum(nwords(f"[{human_date(m.started_at)}] {m.topic}".strip()) + nwords(m.text) for m in mems)
                assert words <= b, (words, b)
                got = {ids[t] for m in mems for t in m.turn_ids}
                ev.add(name + suffix, q["category"], b, len(evidence & got) / len(evidence))
                if name not in ("segment", "segment (no time anchor)"):
                    added[(name, b)] += sum(1 for c in cands[:len(mems) + 3] if getattr(c, "via", None))
    return added


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/locomo/locomo_dev.json"))
    ap.add_argument("--json", dest="out")
    ap.add_argument("--cache", default=str(ROOT / ".bench-cache" / "locomo_recall"))
    ap.add_argument("--convs", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated sample ids (e.g. conv-26,conv-30)")
    ap.add_argument("--min-similarity", type=float, default=Settings().min_similarity)
    ap.add_argument("--llm", metavar="MODEL", help="consolidate with this model (qwen-1.5b, qwen-0.5b)")
    ap.add_argument("--llm-convs", type=int, default=0, help="only the first N conversations")
    ap.add_argument("--llm-minutes", type=float, default=60.0, help="stop consolidating after this long (resumable)")
    ap.add_argument("--gpu-layers", default="auto",
                    help="layers offloaded to a GPU: auto (all when llama.cpp was built with one), or a number")
    args = ap.parse_args()
    log = lambda s: print(s, file=sys.stderr, flush=True)

    data_path = Path(args.data)
    digest = hashlib.sha1(data_path.read_bytes()).hexdigest()[:10]
    cache = Path(args.cache) / f"{data_path.stem}-{digest}"
    if not cache.exists():
        sys.exit(f"No cached memory in {cache}: run tests/bench/locomo_recall.py first.")
    from memory.embedder import SentenceTransformerEmbedder

    emb = CachedEmbedder(SentenceTransformerEmbedder(background=False), cache / "embeddings.npz")
    records = json.loads(data_path.read_text())
    if args.convs:
        records = records[: args.convs]
    if args.only:
        records = [r for r in records if str(r["sample_id"]) in args.only.split(",")]

    build: dict = {}
    llm_done: list[str] = []
    if args.llm:
        from assistant.llm import LlamaCppModel
        from assistant.models import resolve_model

        model = LlamaCppModel(resolve_model(args.llm), name=args.llm, n_ctx=4096, gpu_layers=args.gpu_layers, temperature=0)
        deadline = time.time() + args.llm_minutes * 60
        for r in records[: args.llm_convs or None]:
            s = str(r["sample_id"])
            rec = consolidate_llm(cache / s, emb, model, args.llm, deadline, log)
            build.setdefault(s, {})[f"llm-{args.llm}"] = rec
            if rec["done"]:
                llm_done.append(s)

    ev, sub = Evaluator(), Evaluator()
    added_all = Counter()
    labels = Counter()
    t0 = time.perf_counter()
    built = [str(r["sample_id"]) for r in records if (cache / str(r["sample_id"]) / "fast.db").exists()]
    for r in records:
        s = str(r["sample_id"])
        folder = cache / s
        if s not in built:
            log(f"  {s}: no cached memory (locomo_recall.py has not built it); skipped")
            continue
        qas = [q for q in r["qa"] if q.get("category") in CATS and q.get("evidence")]
        qvecs = emb.embed([q["question"] for q in qas])
        store = Store(ensure_sim(folder, args.min_similarity))
        build.setdefault(s, {})["sim"] = load_meta(folder / "timeline.json").get("sim")
        added_all += evaluate(store, emb, qas, qvecs, ev, " [sim links]")
        store.close()
        if s in llm_done:
            store = Store(folder / f"timeline-llm-{args.llm}.db")
            labels.update(dict(store.db.execute("SELECT label, COUNT(*) FROM links GROUP BY label").fetchall()))
            evaluate(store, emb, qas, qvecs, sub, f" [{args.llm} links]")
            store.close()
        log(f"  {s}: evaluated {len(qas)} questions")
        emb.save()
    out = {"recall": ev.table(), "eval_s": time.perf_counter() - t0, "build": build,
           "conversations": built,
           "min_similarity": args.min_similarity,
           "variants": {k: vars(v) for k, v in VARIANTS.items()}}
    if llm_done:
        out[f"recall_llm_links ({', '.join(llm_done)})"] = sub.table()
        out["llm_labels"] = dict(labels)
    for name, table in [("sim links, all conversations", ev.table())] + (
            [(f"{args.llm} links, {', '.join(llm_done)}", sub.table())] if llm_done else []):
        print(f"\n{name}")
        print(f"{'method':<52}" + "".join(f"{b:>8}" for b in BUDGETS) + "   by category at 1000 w (1..4)")
        for method, row in table.items():
            cats = row["by_category"]
            print(f"{method:<52}" + "".join(f"{row['overall'][str(b)]:8.3f}" for b in BUDGETS) + "   "
                  + " ".join(f"{cats[str(c)]['1000']:.3f}" for c in CATS if str(c) in cats))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
