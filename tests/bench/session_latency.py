#!/usr/bin/env python3
"""Time to first token through a scripted 10-turn session on a populated memory: the prompt layout before the
stable-prefix work ("before") and the chat's layout now ("now"), side by side, interleaved turn by turn; "now"
again with a 3-second pause in typing before Enter ("pause": the chat recalls for the draft and evaluates its
prompt 0.6 s into the pause, as the TUI does); "typing": the message typed key by key at --typing-cps
(3.3 characters a second, about 40 words a minute) with drafts taken up at finished words as the TUI does,
then the same pause; and `assistant ask` (a new process each time) on the same memory.

    python tests/bench/session_latency.py --units 10000 --threads 2 --json OUT.json

A layout may name its own recall budget in tokens after a colon (`--layouts now,pause,now:300,pause:300`): the
same session with fewer tokens of memory per turn, to weigh speed against what recall finds.

The memory is the LoCoMo dev split repeated with shifted dates until it holds --units segments (built once by
tests/bench/first_token.py's populate and cached under .bench-cache/), plus a running memory (the facts kept
by consolidation's summary and running steps, which need no model). Each layout gets its own copy of the
database and its own llama.cpp context (its own model instance), so that one does not evict the other's cache.
Greedy decoding; each answer is cut after --answer-tokens tokens (the same in every layout) to keep the run
short; the window's arithmetic still reserves the configured max_answer_tokens.

Time to first token runs from the call (Enter) to the first streamed token: storing the message, recall, and
evaluating what the cache does not hold. On a shared machine the seconds are noisy: the prompt tokens
evaluated and reused per turn (llama.cpp's own prefix matching) are the primary evidence, and the load
average is recorded with every figure.

"before" reproduces the layout the chat used until the stable prefix: recalled memories at the top of the
system message, then the last `recent_turns` turns, then the message (kept here only for this comparison).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
CACHE = ROOT / ".bench-cache"

SCRIPT = [
    "Hi! Good morning.",
    "What did Caroline say about the LGBTQ support group?",
    "When did she go there?",
    "What does Melanie like to paint?",
    "Has she painted anything recently?",
    "Thanks, that helps.",
    "What are Caroline's plans for adoption?",
    "Why does she want to adopt?",
    "Remind me what Melanie does with her kids in the summer.",
    "Great, thank you!",
]
ASK = ["What did Caroline say about the LGBTQ support group?", "What does Melanie like to paint?",
       "What are Caroline's plans for adoption?", "Hi! Good morning.",
       "Remind me what Melanie does with her kids in the summer.", "What is Caroline's job?",
       "Thanks, that helps."]


def _first_token_module():
    spec = importlib.util.spec_from_file_location("first_token", ROOT / "tests/bench/first_token.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


# -- the layout before, reproduced for the comparison --------------------------------------------------
def legacy_assistant():
    from assistant import layout, prompts
    from assistant.core import Assistant, PreparedTurn
    from memory.store import title_from
    from memory.summaries import SummaryStore
    from memory.timelines import recall_with_timelines

    class Before(Assistant):
        def prepare(self, session_id, text):
            if session_id is None:
                session_id = self.new_session(title=title_from(text))
            recent = self.store.turns(session_id, limit=self.config.recent_turns)
            user_turn_id = self.store.add_turn(session_id, "user", text)
            model = self.wait_for_model()
            t0 = time.perf_counter()
            memories, ctx = recall_with_timelines(self.recall, self.store, text, self.config.recall_budget_tokens,
                                                  exclude_turn_ids={t.id for t in recent} | {user_turn_id})
            running = SummaryStore(self.store).running()
            recall_seconds = time.perf_counter() - t0
            system = prompts.system_message(memories, self.config.system_prompt, timelines=ctx,
                                            running=running.text if running else None)
            room = model.n_ctx - self.config.max_answer_tokens - model.count_tokens(system["content"]) - 16
            room -= model.count_tokens(text) + 8
            history: list[dict] = []
            for t in reversed(recent):
                if t.role not in ("user", "assistant") or not t.text:
                    continue
                cost = model.count_tokens(t.text) + 8
                if cost > room:
                    break
                history.insert(0, {"role": t.role, "content": t.text})
                room -= cost
            messages = [system, *layout.alternate(history + [{"role": "user", "content": text}])]
            return PreparedTurn(session_id, user_turn_id, messages, memories, [], recall_seconds, ctx)

    return Before


# -- the memory -------------------------------------------------------------------------------------
def memory_db(units: int, data: Path) -> Path:
    """The cached populated memory with a running memory (built once)."""
    db = CACHE / f"first_token_{units}.db"
    done = CACHE / f"first_token_{units}.running"
    if db.exists() and done.exists():
        return db
    ft = _first_token_module()
    from assistant.wiring import count_recall_units
    from memory.store import Store

    from memory.embedder import SentenceTransformerEmbedder

    CACHE.mkdir(exist_ok=True)
    store = Store(db)
    t0 = time.perf_counter()
    embedder = ft.MemoEmbedder(SentenceTransformerEmbedder(background=False))
    ft.populate(store, data, units, lambda: count_recall_units(store), embedder)
    print(f"memory built in {time.perf_counter() - t0:.0f} s", flush=True)
    add_running_memory(store, embedder.inner)
    store.close()
    done.write_text("done\n")
    return db


def add_running_memory(store, embedder) -> None:
    """Consolidation's summary and running steps (they need no model): the running memory a user has."""
    from memory.consolidate import Consolidator

    class NoModel:
        def complete(self, *a, **kw):
            raise RuntimeError("no model in this build step")

    t0 = time.perf_counter()
    report = Consolidator(store, embedder, NoModel()).run(
        steps=("summary", "running"), trigger="bench")
    print(f"running memory: {report.status} in {time.perf_counter() - t0:.0f} s", flush=True)


# -- one session ------------------------------------------------------------------------------------
class Side:
    """One layout: its own database copy, model instance and Assistant."""

    def __init__(self, name: str, db: Path, model, embedder, config, legacy: bool = False, pause: float = 0.0,
                 kind: str = "", typing_cps: float = 0.0):
        from assistant.core import Assistant
        from memory.bank import SegmentRecall
        from memory.store import Store

        self.name, self.kind, self.pause, self.model = name, kind or name, pause, model
        self.typing_cps = typing_cps
        store = Store(db)
        cls = legacy_assistant() if legacy else Assistant
        self.assistant = cls(store, None, config, model=model)
        self.assistant.recall = SegmentRecall(store, embedder, count_tokens=self.assistant.count_tokens)
        self.session = self.assistant.new_session()
        self.rows: list[dict] = []

    def warm_start(self) -> None:
        """As the chat does once the model is up: the new session's beginning evaluated before any message."""
        if self.kind != "before":
            self.assistant.warm(None)

    def turn(self, i: int, text: str, answer_tokens: int) -> dict:
        a = self.assistant
        drafts: list[threading.Thread] = []

        def take_up(draft: str) -> None:       # as the chat's look-ahead worker does, a newer one preempting
            drafts.append(threading.Thread(target=a.prefetch, args=(self.session, draft)))
            drafts[-1].start()

        if self.typing_cps:
            from ui.widgets.prompt import draft_due
            last = float("-inf")
            for k in range(1, len(text) + 1):
                time.sleep(1 / self.typing_cps)
                if draft_due(text[:k], time.perf_counter() - last):
                    last = time.perf_counter()
                    take_up(text[:k])
        if self.pause:
            time.sleep(0.6)                    # the pause in typing before the draft is taken up
            take_up(text)
            time.sleep(self.pause - 0.6)
        cancel = threading.Event()
        first: list[float] = []
        count = [0]

        def on_token(_piece):
            if not first:
                first.append(time.perf_counter())
            count[0] += 1
            if count[0] >= answer_tokens:
                cancel.set()

        t0 = time.perf_counter()
        ans = a.answer(self.session, text, on_token=on_token, cancel=cancel)
        for d in drafts:
            d.join()
        st = ans.stats
        row = {"layout": self.name, "turn": i + 1, "message": text,
               "ttft_s": round((first[0] if first else time.perf_counter()) - t0, 3),
               "prompt_tokens": st.prompt_tokens, "reused_tokens": st.reused_tokens,
               "evaluated_tokens": st.evaluated_tokens, "memories": len(ans.memories),
               "recall_s": round(ans.recall_seconds, 3), "load": load()}
        self.rows.append(row)
        print(f"turn {i + 1:>2} {self.name:<10} ttft {row['ttft_s']:6.2f} s  evaluated {st.evaluated_tokens:>5} "
              f"reused {st.reused_tokens:>5} of {st.prompt_tokens:>5}  memories {len(ans.memories):>2}  "
              f"load {row['load']}", flush=True)
        return row


def summary(rows: list[dict]) -> dict:
    ttft = sorted(r["ttft_s"] for r in rows)
    ev = [r["evaluated_tokens"] for r in rows]
    # the median of ten turns falls between the two kinds of turns: report the recalling turns apart
    recalling = [r["ttft_s"] for r in rows if r["memories"]]
    return {"turns": len(rows), "ttft_p50_s": round(statistics.median(ttft), 2),
            "recalling_turns": len(recalling),
            "ttft_p50_recalling_s": round(statistics.median(recalling), 2) if recalling else None,
            "ttft_p95_s": round(ttft[min(len(ttft) - 1, round(0.95 * (len(ttft) - 1)))], 2),
            "evaluated_p50": statistics.median(ev), "evaluated_total": sum(ev),
            "reused_total": sum(r["reused_tokens"] for r in rows),
            "prompt_total": sum(r["prompt_tokens"] for r in rows)}


# -- assistant ask ------------------------------------------------------------------------------------
def ask_runs(db: Path, model: str, threads: int, runs: int) -> list[dict]:
    """`assistant ask` from the command to its first token on stdout, a new process each time (the first
    run saves the prompt's beginning beside the database; it is reported apart)."""
    home = Path(tempfile.mkdtemp(prefix="bench-ask-"))
    cfg = home / "config" / "local-assistant"
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text(f"threads = {threads}\nmax_answer_tokens = 512\n")
    env = dict(os.environ, XDG_CONFIG_HOME=str(home / "config"), PYTHONUNBUFFERED="1")
    out = []
    for i in range(runs + 1):
        text = ASK[i % len(ASK)]
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-m", "assistant.cli", "--db", str(db), "--model", model, "ask",
                              text, "--max-tokens", "8", "--stats"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = p.stdout.read(1)
        ttft = time.perf_counter() - t0
        rest, err = p.communicate(timeout=600)
        stats = json.loads(err.decode().strip().splitlines()[-1]) if p.returncode == 0 else {}
        row = {"run": i, "message": text, "command_to_first_token_s": round(ttft, 2), "ok": bool(first),
               "load": load(), **{k: stats.get(k) for k in ("prefix_tokens", "prefix_tokens_evaluated",
                                                           "prompt_tokens", "prompt_tokens_reused",
                                                           "prompt_tokens_evaluated", "recall_seconds")}}
        out.append(row)
        print(f"ask {i}{' (first: saves the beginning)' if i == 0 else ''}: {ttft:.2f} s to the first token, "
              f"prefix evaluated {row['prefix_tokens_evaluated']}/{row['prefix_tokens']}, prompt evaluated "
              f"{row['prompt_tokens_evaluated']} of {row['prompt_tokens']}, load {row['load']}", flush=True)
    shutil.rmtree(home, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/locomo/locomo_dev.json")
    ap.add_argument("--units", type=int, default=10000)
    ap.add_argument("--model", default="qwen-1.5b")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--answer-tokens", type=int, default=64)
    ap.add_argument("--pause", type=float, default=3.0)
    ap.add_argument("--typing-cps", type=float, default=3.3, help="characters a second in the typing layout")
    ap.add_argument("--ask-runs", type=int, default=7)
    ap.add_argument("--layouts", default="before,now,pause")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()

    db = memory_db(args.units, args.data)
    if args.build_only:
        return
    from assistant.config import Config
    from assistant.llm import LlamaCppModel
    from assistant.models import resolve_model
    from assistant.wiring import count_recall_units
    from memory.embedder import SentenceTransformerEmbedder
    from memory.store import Store

    s = Store(db)
    units, turns = count_recall_units(s), s.count("turns")
    s.close()
    print(f"memory: {units} segments, {turns} turns; load {load()}", flush=True)
    path = resolve_model(args.model)
    config = Config(threads=args.threads)
    embedder = SentenceTransformerEmbedder(background=False)
    work = Path(tempfile.mkdtemp(prefix="bench-session-"))
    sides = []
    names = [n for n in args.layouts.split(",") if n]
    for name in names:
        kind, _, budget = name.partition(":")
        side_config = dataclasses.replace(config, recall_budget_tokens=int(budget)) if budget else config
        copy = work / f"{name.replace(':', '-')}.db"
        shutil.copy(db, copy)
        model = LlamaCppModel(path, name=args.model, n_ctx=config.n_ctx, threads=args.threads, gpu_layers=0,
                              temperature=0.0)
        sides.append(Side(name, copy, model, embedder, side_config, legacy=kind == "before",
                          pause=args.pause if kind in ("pause", "typing") else 0.0, kind=kind,
                          typing_cps=args.typing_cps if kind == "typing" else 0.0))
    for side in sides:
        side.warm_start()
    for i, text in enumerate(SCRIPT if sides else []):     # --layouts "": only the `ask` runs
        order = sides[i % len(sides):] + sides[:i % len(sides)]     # interleaved, the first one rotating
        for side in order:
            side.turn(i, text, args.answer_tokens)
    result = {"date": time.strftime("%Y-%m-%d"), "model": args.model, "threads": args.threads,
              "budgets": {s.name: s.assistant.config.recall_budget_tokens for s in sides},
              "units": units, "turns_in_memory": turns, "answer_tokens": args.answer_tokens,
              "rows": [r for s in sides for r in s.rows],
              "summary": {s.name: summary(s.rows) for s in sides}}
    for s in sides:
        s.assistant.store.close()
        del s.model
    if args.ask_runs:
        ask_db = work / "ask.db"
        shutil.copy(db, ask_db)
        rows = ask_runs(ask_db, args.model, args.threads, args.ask_runs)
        later = sorted(r["command_to_first_token_s"] for r in rows[1:])
        result["ask"] = {"rows": rows, "first_run_s": rows[0]["command_to_first_token_s"],
                         "p50_s": round(statistics.median(later), 2) if later else None}
    print(json.dumps(result["summary"], indent=1))
    if "ask" in result:
        print("ask p50:", result["ask"]["p50_s"], "s (first run:", result["ask"]["first_run_s"], "s)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
