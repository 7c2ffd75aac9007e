#!/usr/bin/env python3
"""End-to-end answers on LoCoMo: the default model answers a fixed, seeded sample of dev questions under
several memory conditions, scored with LoCoMo's own token F1.

    python tests/bench/locomo_qa.py --data ../shared/data/locomo/locomo_dev.json --sample 150 --json OUT.json \
        [--model qwen-1.5b] [--conditions none,full,turns,pipeline] [--minutes 60] [--convs conv-26,conv-30]

Conditions (the same question prompt in each; what differs is the system message):
- none:     no memory.
- full:     the conversation itself (dated sessions, newest kept) cut to what fits the model's context.
- turns:    turn-level hybrid recall (TurnRecall) at the app's recall budget.
- pipeline: the product's hot path: segment recall expanded into timelines at the same budget, history
            marks, the chains and the running memory M_t (assistant.prompts.system_message).
- pipeline+refine: as pipeline, plus THEANINE's refinement of the timelines for the question (one more call).
- pipeline-notime: as pipeline, without the list of memories dated in the days a question names
            (RecallParams.time_weight = 0); it differs from pipeline only on questions that name days, which
            `--named-days` selects.
- fast:     segment recall (the product's, at the app's budget) over the fast segments of
            tests/bench/locomo_recall.py's fast.db (no model in the build: no links, no running memory), memories
            in the system message as in `pipeline`.
- fast-chat: the same memories in the chat's layout (assistant/layout.py): the chat's system message, the
            memories attached to the question's message between <memories> tags.
- fast-gated: as fast-chat, keeping only the memories that earn their place (memory/relevance.py). A
            question whose memories the gate leaves as they are has fast-chat's prompt, so its answer is
            fast-chat's (copied, marked same_as) and only the questions the gate changes are answered again:
            the F1 difference between the two is exact for the sample.

Memory comes from the caches of the recall benchmarks: base.db (turn index) from tests/bench/locomo_recall.py
and timeline-llm-<model>.db (consolidated: segments, links, summaries) from tests/bench/locomo_timeline.py
--llm <model>. A question whose conversation has no consolidated memory yet is skipped for the pipeline
conditions (reported). Answers are cached per (model, condition, question) in .bench-cache/locomo_qa/, so a
run can stop any time and the next continues. Questions are grouped by conversation and condition so that
consecutive prompts share their prefix (llama.cpp reuses the KV cache of a common prefix: the whole
conversation in `full`).

Recall needs no model call, so the prompts can be built on one machine and answered on another (a GPU that
has no room for the memory and the embedder): `--export-prompts FILE` writes every (condition, question)
prompt as JSON lines and answers nothing; `--prompts FILE` answers from such a file instead of recalling
(the memory and the embedder are then not needed). `--fresh` empties the model's cache before every answer,
so that an answer depends on its prompt alone and not on what the prompt before it left in the cache (on a
GPU a reused prefix sums in another order and can tip a near tie).

Scoring follows LoCoMo's evaluation (snap-research/LoCoMo, task_eval/evaluation.py): answers normalized
(lowercase, no punctuation, no articles or "and"), Porter-stemmed token F1; category 1 (multi-hop) splits
prediction and gold on commas and averages the best match per gold part; category 3 keeps the gold before
the first ';'; category 5 (adversarial) is asked as a choice between "Not mentioned in the conversation" and
the adversarial answer and scores 1 when the answer says not mentioned / no information available.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import string
import sys
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# llama.cpp's OpenMP threads spin while they wait; on a busy machine that costs 3-5x (see the report)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

CONDITIONS = ("none", "full", "turns", "pipeline", "pipeline+refine", "pipeline-notime", "fast", "fast-chat",
              "fast-gated")
CAT_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}


# -- LoCoMo's scoring -------------------------------------------------------------------------------------
def normalize_answer(s: str) -> str:
    s = str(s).replace(",", "")
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the|and)\b", " ", s)
    return " ".join(s.split())


_stemmer = None


def _stem(w: str) -> str:
    global _stemmer
    if _stemmer is None:
        from nltk.stem import PorterStemmer

        _stemmer = PorterStemmer()
    return _stemmer.stem(w)


def f1_score(prediction: str, truth: str) -> float:
    p = [_stem(w) for w in normalize_answer(prediction).split()]
    g = [_stem(w) for w in normalize_answer(truth).split()]
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def f1_multi(prediction: str, truth: str) -> float:
    preds = [x.strip() for x in str(prediction).split(",")]
    golds = [x.strip() for x in str(truth).split(",")]
    return sum(max(f1_score(p, g) for p in preds) for g in golds) / len(golds)


def score(q: dict, prediction: str) -> float:
    cat = q["category"]
    if cat == 5:
        out = prediction.lower()
        return 1.0 if ("no information available" in out or "not mentioned" in out) else 0.0
    answer = str(q["answer"])
    if cat == 3:
        answer = answer.split(";")[0].strip()
    return f1_multi(prediction, answer) if cat == 1 else f1_score(prediction, answer)


# -- prompts ----------------------------------------------------------------------------------------------
def question_text(q: dict, rng_seed: str) -> str:
    """LoCoMo's QA instruction, per category."""
    text = q["question"]
    if q["category"] == 2:
        text += " Use the dates of the conversations to answer with an approximate date."
    if q["category"] == 5:
        options = ["Not mentioned in the conversation", str(q.get("adversarial_answer") or q.get("answer", ""))]
        random.Random(rng_seed).shuffle(options)
        text += f" Select the correct answer: (a) {options[0]} (b) {options[1]}."
    return (text + "\nAnswer with a short phrase, using exact words from the conversations whenever "
            "possible. Short answer:")


def conversation_block(store, budget_tokens: int, count) -> str:
    """Dated sessions, newest kept, whole sessions first then the tail of the oldest that still fits."""
    from memory.clock import human_date
    from memory.segments import turn_line

    blocks = []
    used = 0
    for s in sorted(store.sessions(), key=lambda s: s.started_at, reverse=True):
        lines = [turn_line(t) for t in store.turns(s.id)]
        head = f"[{human_date(s.started_at)}]"
        cost = count(head + "\n" + "\n".join(lines)) + 2
        if used + cost <= budget_tokens:
            blocks.insert(0, head + "\n" + "\n".join(lines))
            used += cost
            continue
        kept = []
        for line in reversed(lines):
            c = count(line) + 1
            if used + count(head) + c > budget_tokens:
                break
            kept.insert(0, line)
            used += c
        if kept:
            blocks.insert(0, head + " (end of the conversation only)\n" + "\n".join(kept))
        break
    return "\n\n".join(blocks)


class Conditions:
    """Builds the system message for each condition over one conversation's memory."""

    def __init__(self, sample: str, folders: dict, model, emb, budget: int, model_name: str):
        from memory.store import Store

        self.model, self.emb, self.budget = model, emb, budget
        self.base = Store(folders["base"])
        self.full_cache = None
        self.pipe = Store(folders["pipeline"]) if folders.get("pipeline") else None
        self.fast = Store(folders["fast"]) if folders.get("fast") else None
        self.fast_recall = None
        last = max(s.started_at for s in self.base.sessions())
        from memory.clock import parse

        self.now = parse(last) + timedelta(days=1)
        self.turns = None
        self.segments = {}

    def prompt(self, condition: str, q: dict, stats: dict) -> list[dict] | None:
        """The messages for one question under one condition (None: no memory for it here)."""
        user = question_text(q, q["qid"])
        if not condition.startswith("fast"):
            system = self.system(condition, q["question"], stats)
            return None if system is None else [system, {"role": "user", "content": user}]
        from assistant import prompts
        from memory import relevance
        from memory.bank import SegmentRecall
        from memory.timelines import context_for, recall_with_timelines

        if self.fast is None:
            return None
        if self.fast_recall is None:
            self.fast_recall = SegmentRecall(self.fast, self.emb, count_tokens=self.model.count_tokens,
                                             incremental=False)
        t0 = time.perf_counter()
        mems, ctx = recall_with_timelines(self.fast_recall, self.fast, q["question"], self.budget, now=self.now)
        stats["recall_s"] = time.perf_counter() - t0
        stats["memories"] = len(mems)
        if condition == "fast":
            return [prompts.system_message(mems, now=self.now, timelines=ctx), {"role": "user", "content": user}]
        if condition == "fast-gated":
            kept = relevance.earning(self.fast_recall, q["question"], mems)
            stats["gated_out"] = len(mems) - len(kept)
            if len(kept) == len(mems):
                stats["same_as"] = "fast-chat"
            mems, ctx = kept, context_for(self.fast, kept)
        items = prompts.attachments(mems, ctx)
        return [prompts.chat_system_message(now=self.now), {"role": "user", "content": prompts.with_memories(user, items)}]

    def system(self, condition: str, question: str, stats: dict) -> dict | None:
        from assistant import prompts
        from memory.recall import TurnRecall
        from memory.summaries import SummaryStore
        from memory.timelines import recall_with_timelines, refine

        if condition == "none":
            return prompts.system_message([], now=self.now)
        if condition == "full":
            if self.full_cache is None:
                head = prompts.system_message([], now=self.now)["content"]
                room = self.model.n_ctx - 160 - self.model.count_tokens(head) - 120
                self.full_cache = {"role": "system", "content": head + "\n\nEarlier conversations (oldest first):\n\n"
                                   + conversation_block(self.base, room, self.model.count_tokens)}
            return self.full_cache
        if condition == "turns":
            if self.turns is None:
                self.turns = TurnRecall(self.base, self.emb, count_tokens=self.model.count_tokens)
            t0 = time.perf_counter()
            mems = self.turns.search(question, self.budget)
            stats["recall_s"] = time.perf_counter() - t0
            return prompts.system_message(mems, now=self.now)
        if condition.startswith("pipeline"):
            if self.pipe is None:
                return None
            from memory.bank import RecallParams, SegmentRecall

            timed = condition != "pipeline-notime"
            if timed not in self.segments:
                self.segments[timed] = SegmentRecall(
                    self.pipe, self.emb, count_tokens=self.model.count_tokens, incremental=False,
                    params=None if timed else RecallParams(time_weight=0))
            t0 = time.perf_counter()
            mems, ctx = recall_with_timelines(self.segments[timed], self.pipe, question, self.budget, now=self.now)
            running = SummaryStore(self.pipe).running()
            stats["recall_s"] = time.perf_counter() - t0
            stats["chains"] = len(ctx.timelines)
            stats["history_marks"] = sum(1 for m in mems if m.kind == "segment" and ctx.is_history(m.id))
            refined = ""
            if condition == "pipeline+refine" and ctx.timelines:
                t0 = time.perf_counter()
                refined = refine(self.model, question, ctx.render())
                stats["refine_s"] = time.perf_counter() - t0
                stats["refine_prompt_tokens"] = self.model.last_stats.prompt_tokens
                stats["refine_completion_tokens"] = self.model.last_stats.completion_tokens
            return prompts.system_message(mems, now=self.now, timelines=ctx,
                                          running=running.text if running else None, refined=refined)
        raise ValueError(condition)

    def close(self):
        self.base.close()
        for store in (self.pipe, self.fast):
            if store:
                store.close()


def sample_questions(records, n: int, seed: int) -> list[dict]:
    allq = [dict(q, sample=str(r["sample_id"]), qid=f"{r['sample_id']}:{i}")
            for r in records for i, q in enumerate(r["qa"])]
    picked = random.Random(seed).sample(allq, min(n, len(allq)))
    return picked


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/locomo/locomo_dev.json"))
    ap.add_argument("--sample", type=int, default=150)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--json", dest="out")
    ap.add_argument("--model", default="qwen-1.5b")
    ap.add_argument("--conditions", default="none,full,turns,pipeline")
    ap.add_argument("--convs", default="", help="comma-separated sample ids to restrict the sample to")
    ap.add_argument("--named-days", action="store_true",
                    help="only the sampled questions that name days (\"on 24 October 2023\", \"in July 2022\")")
    ap.add_argument("--minutes", type=float, default=0, help="stop answering after this long (resumable)")
    ap.add_argument("--budget", type=int, default=0, help="recall budget in tokens (default: the app's)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions of the seeded sample")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--cache", default=str(ROOT / ".bench-cache"))
    ap.add_argument("--gpu-layers", default="auto",
                    help="layers offloaded to a GPU: auto (all when llama.cpp was built with one), or a number")
    ap.add_argument("--export-prompts", type=Path, metavar="FILE",
                    help="write the prompts of every (condition, question) as JSON lines and answer nothing")
    ap.add_argument("--prompts", type=Path, metavar="FILE",
                    help="answer the prompts of an --export-prompts file instead of recalling")
    ap.add_argument("--fresh", action="store_true",
                    help="empty the model's cache before every answer (no prefix carried from the prompt before)")
    args = ap.parse_args()
    log = lambda s: print(s, file=sys.stderr, flush=True)

    from assistant.config import Config

    cfg = Config()
    budget = args.budget or cfg.recall_budget_tokens
    conditions = [c for c in args.conditions.split(",") if c]
    for c in conditions:
        if c not in CONDITIONS:
            sys.exit(f"unknown condition {c}; use {', '.join(CONDITIONS)}")
    data_path = Path(args.data)
    digest = hashlib.sha1(data_path.read_bytes()).hexdigest()[:10]
    mem_cache = Path(args.cache) / "locomo_recall" / f"{data_path.stem}-{digest}"
    out_cache = Path(args.cache) / "locomo_qa" / (args.model + (f"-budget{budget}" if budget != cfg.recall_budget_tokens
                                                                else ""))
    out_cache.mkdir(parents=True, exist_ok=True)
    records = json.loads(data_path.read_text())
    questions = sample_questions(records, args.sample, args.seed)
    if args.limit:
        questions = questions[:args.limit]
    if args.convs:
        keep = set(args.convs.split(","))
        questions = [q for q in questions if q["sample"] in keep]
    if args.named_days:
        from datetime import datetime, timezone

        from memory.when import named_days

        # the year does not matter for which questions name days, only for which days
        questions = [q for q in questions if named_days(q["question"], datetime.now(timezone.utc))]

    def cached(cond, q):
        return out_cache / cond / (q["qid"].replace(":", "_") + ".json")

    todo = [(c, q) for q in questions for c in conditions if args.export_prompts or not cached(c, q).exists()]
    deadline = time.time() + args.minutes * 60 if args.minutes else None
    given = None
    if args.prompts:
        given = {}
        for line in args.prompts.read_text().splitlines():
            row = json.loads(line)
            given[(row["condition"], row["qid"])] = row
        missing = [1 for c, q in todo if (c, q["qid"]) not in given]
        if missing:
            log(f"{len(missing)} of {len(todo)} prompts are not in {args.prompts}; they are skipped")
    exported = open(args.export_prompts, "w") if args.export_prompts else None
    if todo:
        from assistant.llm import LlamaCppModel
        from assistant.models import resolve_model
        from memory.embedder import SentenceTransformerEmbedder

        model = LlamaCppModel(resolve_model(args.model), name=args.model, n_ctx=cfg.n_ctx, threads=args.threads,
                              gpu_layers=args.gpu_layers, temperature=0.0)
        emb = SentenceTransformerEmbedder(background=False) if given is None else None
        by_conv = defaultdict(list)
        for c, q in todo:
            by_conv[q["sample"]].append((c, q))
        done = 0
        for sample, items in by_conv.items():
            folder = mem_cache / sample
            pipe = folder / f"timeline-llm-{args.model}.db"
            meta = json.loads((folder / "timeline.json").read_text()) if (folder / "timeline.json").exists() else {}
            folders = {"base": folder / "base.db",
                       "pipeline": pipe if meta.get(f"llm-{args.model}", {}).get("done") else None,
                       "fast": folder / "fast.db" if (folder / "fast.db").exists() else None}
            if given is None and not folders["base"].exists():
                log(f"{sample}: no cached memory (run tests/bench/locomo_recall.py); skipped")
                continue
            cond = Conditions(sample, folders, model, emb, budget, args.model) if given is None else None
            # same condition consecutively: prompts share their prefix (the whole conversation in `full`)
            items.sort(key=lambda x: (conditions.index(x[0]), x[1]["qid"]))
            for c, q in items:
                if deadline and time.time() > deadline:
                    log("time is up; run again to continue")
                    if cond:
                        cond.close()
                    return report(questions, conditions, out_cache, args, log)
                stats: dict = {}
                if given is None:
                    messages = cond.prompt(c, q, stats)
                else:
                    row = given.get((c, q["qid"]))
                    messages, stats = (row["messages"], dict(row["stats"])) if row else (None, {})
                if messages is None:
                    continue
                if exported:
                    exported.write(json.dumps({"condition": c, "qid": q["qid"], "messages": messages,
                                               "stats": stats}) + "\n")
                    done += 1
                    continue
                same = stats.get("same_as")
                if same and cached(same, q).exists():     # the very prompt another condition answered
                    rec = {**json.loads(cached(same, q).read_text()), **stats}
                    cached(c, q).parent.mkdir(parents=True, exist_ok=True)
                    cached(c, q).write_text(json.dumps(rec, indent=1))
                    continue
                if args.fresh:
                    with model._call("side"):    # the context complete() answers on
                        model.llm.reset()
                t0 = time.perf_counter()
                answer = model.complete(messages, max_tokens=48)
                rec = {"qid": q["qid"], "category": q["category"], "question": q["question"],
                       "gold": q.get("answer", q.get("adversarial_answer")), "prediction": answer.strip(),
                       "prompt_tokens": model.last_stats.prompt_tokens,
                       "completion_tokens": model.last_stats.completion_tokens,
                       "seconds": time.perf_counter() - t0, **stats}
                rec["f1"] = score(q, rec["prediction"])
                path = cached(c, q)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(rec, indent=1))
                done += 1
                log(f"[{done}/{len(todo)}] {c:<15} {q['qid']:<12} cat {q['category']} f1 {rec['f1']:.2f} "
                    f"{rec['prompt_tokens']:>5} tok {rec['seconds']:5.1f}s  {rec['prediction'][:60]!r}")
            if cond:
                cond.close()
    if exported:
        exported.close()
        log(f"{done} prompts written to {args.export_prompts}")
        return None
    return report(questions, conditions, out_cache, args, log)


def report(questions, conditions, out_cache: Path, args, log):
    results = {}
    answered_all = None
    recs = {}
    for c in conditions:
        recs[c] = {}
        for q in questions:
            p = out_cache / c / (q["qid"].replace(":", "_") + ".json")
            if p.exists():
                recs[c][q["qid"]] = json.loads(p.read_text())
        ids = set(recs[c])
        answered_all = ids if answered_all is None else answered_all & ids
    answered_all = answered_all or set()

    def summarize(rs):
        by = defaultdict(list)
        for r in rs:
            by[r["category"]].append(r["f1"])
        n = len(rs)
        return {"n": n, "f1": sum(r["f1"] for r in rs) / n if n else None,
                "f1_cat1_4": (lambda xs: sum(xs) / len(xs) if xs else None)([r["f1"] for r in rs if r["category"] != 5]),
                "by_category": {f"{k} {CAT_NAMES[k]}": {"n": len(v), "f1": sum(v) / len(v)} for k, v in sorted(by.items())},
                "prompt_tokens_mean": sum(r["prompt_tokens"] for r in rs) / n if n else None,
                "seconds_mean": sum(r["seconds"] for r in rs) / n if n else None}

    for c in conditions:
        results[c] = {"answered": summarize(list(recs[c].values())),
                      "common": summarize([recs[c][i] for i in sorted(answered_all)])}
        extra = [r for r in recs[c].values() if "refine_s" in r]
        if extra:
            results[c]["refine"] = {"n": len(extra), "seconds_mean": sum(r["refine_s"] for r in extra) / len(extra),
                                    "prompt_tokens_mean": sum(r["refine_prompt_tokens"] for r in extra) / len(extra)}
    out = {"model": args.model, "sample": args.sample, "seed": args.seed, "questions": len(questions),
           "answered_by_every_condition": len(answered_all),
           "conversations": sorted({q["sample"] for q in questions}),
           "categories_in_sample": dict(Counter(q["category"] for q in questions)), "results": results}
    print(f"\n{len(answered_all)} of {len(questions)} questions answered under every condition "
          f"({', '.join(conditions)}):")
    print(f"{'condition':<17}{'F1 all':>8}{'F1 1-4':>8}{'prompt tok':>12}{'s/answer':>10}   F1 by category 1..5")
    for c in conditions:
        r = results[c]["common"]
        if not r["n"]:
            continue
        cats = " ".join(f"{r['by_category'][k]['f1']:.2f}" if k in r["by_category"] else "  - "
                        for k in (f"{i} {CAT_NAMES[i]}" for i in range(1, 6)))
        print(f"{c:<17}{r['f1']:8.3f}{(r['f1_cat1_4'] or 0):8.3f}{r['prompt_tokens_mean']:12.0f}"
              f"{r['seconds_mean']:10.1f}   {cats}")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
