"""Sleep-time consolidation (LightMem): the expensive memory work, run while the user is away.

Steps, in order: index new turns; segment sessions with new turns (memory.bank); write each session's
summary: the facts its people stated, kept with who said them (memory.facts); label each new segment's
links to earlier memories (timelines); fold new session summaries into the running memory M_t; roll days,
weeks and months up for the journal. Only segmentation (in "llm" mode) and the links ask the model.

Independent prompts (the pairs of one session) go to the model together when it can decode them side by
side (`choose_many`): on a CPU a pass carrying a token of each of several prompts costs little more than a
pass carrying one.

Every unit of work computes outside any transaction (model calls included) and then writes its result and
its "done" mark in one short transaction, so a kill at any moment loses at most the unit in flight and
never duplicates one. `preempt` (a threading.Event) stops a run between units; a file lock next to the
database keeps two processes (the app and the daemon) from working at once. Nothing is hard-deleted here:
a changed fact becomes a Changed link, a rebuilt summary supersedes the old row.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .clock import human_date, utcnow
from .protocols import Embedder, LanguageModel, Preempted, approx_tokens
from .store import Store
from . import summaries as sm
from .timelines import (LinkStore, PairTask, SegmentInfo, clip_words, earlier_candidates, key_vectors,
                        keyed_labels_schema, label_guide, label_many, pair_keys, parse_labels, segment_infos)

STEPS = ("index", "segment", "summary", "link", "running", "day", "week", "month")
STEP_TITLES = {"index": "Indexing new turns", "segment": "Segmenting sessions", "summary": "Summarizing sessions",
               "link": "Linking memories", "running": "Updating the running memory",
               "day": "Day summaries", "week": "Week summaries", "month": "Month summaries"}


@dataclass
class Progress:
    """Reported after each unit (and with done=0 when a step starts)."""

    step: str
    done: int
    total: int
    label: str = ""

    @property
    def title(self) -> str:
        return STEP_TITLES.get(self.step, self.step)


ProgressFn = Callable[[Progress], None]


@dataclass
class Report:
    status: str = "done"            # done | preempted | deadline | busy | error
    units: Counter = field(default_factory=Counter)
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    step_seconds: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    pairs: int = 0
    fallbacks: Counter = field(default_factory=Counter)
    remaining: dict = field(default_factory=dict)
    error: str = ""

    def as_dict(self) -> dict:
        return {"status": self.status, "units": dict(self.units), "llm_calls": self.llm_calls,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "seconds": round(self.seconds, 2), "step_seconds": {k: round(v, 2) for k, v in self.step_seconds.items()},
                "labels": dict(self.labels), "pairs": self.pairs, "fallbacks": dict(self.fallbacks),
                "remaining": self.remaining, "error": self.error}


class CountingModel:
    """Counts calls and tokens of the model it wraps (prompt tokens from the backend when it reports them)."""

    def __init__(self, model: LanguageModel):
        self.model = model
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.seconds = 0.0

    @contextmanager
    def _timed(self) -> Iterator[None]:
        self.calls += 1
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - t0

    def complete(self, messages: list[dict], schema: dict | None = None, max_tokens: int = 512) -> str:
        with self._timed():
            try:
                out = self.model.complete(messages, schema=schema, max_tokens=max_tokens)
            finally:
                st = getattr(self.model, "last_stats", None)
                pt = getattr(st, "prompt_tokens", 0) or 0
                self.prompt_tokens += pt or sum(approx_tokens(m["content"]) + 4 for m in messages)
        ct = getattr(getattr(self.model, "last_stats", None), "completion_tokens", 0) or approx_tokens(out)
        self.completion_tokens += ct
        return out

    def _counted(self, name: str, estimate_completion: bool, many: bool = False):
        """The wrapped model's optional method `name`, counted like a call (`many`: like one call per
        prompt of its first argument); None when it has none."""
        inner = getattr(self.model, name, None)
        if not callable(inner):
            return None

        def counted(*args, **kwargs):
            with self._timed():
                out = inner(*args, **kwargs)
            if many:
                self.calls += len(args[0]) - 1
            st = getattr(self.model, "last_stats", None)
            self.prompt_tokens += getattr(st, "prompt_tokens", 0) or 0
            self.completion_tokens += (getattr(st, "completion_tokens", 0)
                                       or (approx_tokens(out) if estimate_completion else 0))
            return out
        return counted

    @property
    def choose(self):
        """The model's choose() (one evaluated token per decision); None without one."""
        return self._counted("choose", estimate_completion=False)

    @property
    def choose_many(self):
        """The model's choose_many() (independent prompts in shared passes); None without one."""
        return self._counted("choose_many", estimate_completion=False, many=True)

    def __getattr__(self, name):
        return getattr(self.model, name)


@dataclass
class Settings:
    segment_mode: str = "fast"      # "fast" (embedding TextTiling) or "llm" (SeCom, one call a session)
    link_k: int = 2                 # earlier memories compared with each new one (THEANINE: 3; 2 is 1/3
                                    # fewer calls; on LoCoMo conv-26 it found 34 Changed links, 3 found 43)
    min_similarity: float = 0.3     # pairs less similar than this are not labelled (cosine of keys)
    max_pairs: int = 24             # pairs decided per unit (the most similar first; more -> more units)
    pairs_per_call: int = 1         # >1 batches pairs into one call (the 1.5B model collapses on batches)
    summary_batch: int = 12         # sessions summarized in one unit
    rollup_batch: int = 8           # journal periods rolled up in one unit
    fold_batch: int = 10            # session summaries folded into M_t in one unit
    summary_words: int = 100        # a session's facts (the most telling when there are more)
    running_words: int = 200        # M_t, in every prompt: about 270 tokens
    max_session_words: int = 800    # the conversation shown to a batched labelling call


class Consolidator:
    def __init__(self, store: Store, embedder: Embedder, model: LanguageModel | None,
                 settings: Settings | None = None, bank=None):
        self.store = store
        self.embedder = embedder
        self.model = CountingModel(model) if model is not None else None
        self.settings = settings or Settings()
        self._bank = bank
        self._preempt: threading.Event | None = None

    @property
    def bank(self):
        if self._bank is None:
            from .bank import SegmentBank

            self._bank = SegmentBank(self.store, self.embedder)
        return self._bank

    # -- what is left ---------------------------------------------------------------------------
    def pending(self, model_steps: bool | None = None) -> dict[str, int]:
        """Units of work waiting, per step (the later steps' counts grow as earlier steps run). Steps that
        need the model are counted when there is one, or when `model_steps` is True."""
        from .recall import TurnIndex
        from .segments import SegmentStore

        out = {"index": len(TurnIndex(self.store, self.embedder).pending()),
               "segment": len(SegmentStore(self.store).pending_sessions()),
               "summary": len(even_batches(self._summary_sessions(), self.settings.summary_batch)),
               "link": len(self._link_sessions())}
        if not (self.model is not None if model_steps is None else model_steps):
            return out | {"summary": 0, "link": 0}
        n = len(sm.SummaryStore(self.store).unfolded())
        out["running"] = -(-n // self.settings.fold_batch)
        for kind in ("day", "week", "month"):
            out[kind] = len(even_batches(sm.plan_rollups(sm.SummaryStore(self.store), kind), self.settings.rollup_batch))
        return out

    def has_work(self) -> bool:
        """Whether a run with a model would do anything."""
        return any(self.pending(model_steps=True).values())

    # -- the run ----------------------------------------------------------------------------------
    def run(self, *, preempt: threading.Event | None = None, progress: ProgressFn | None = None,
            trigger: str = "manual", max_seconds: float | None = None, steps: Sequence[str] = STEPS,
            ) -> Report:
        """Do every pending unit (or until `preempt` is set / `max_seconds` pass), reporting progress."""
        report = Report()
        t_start = time.perf_counter()
        m0 = (self.model.calls, self.model.prompt_tokens, self.model.completion_tokens) if self.model else (0, 0, 0)
        with run_lock(self.store.path) as got:
            if not got:
                report.status = "busy"
                return report
            run_id = self._begin(trigger)
            try:
                for step in STEPS:
                    if step not in steps or (self.model is None and step not in ("index", "segment")):
                        continue
                    if self._stop(preempt, t_start, max_seconds, report):
                        break
                    t0 = time.perf_counter()
                    self._step(step, report, preempt, progress, t_start, max_seconds)
                    report.step_seconds[step] += time.perf_counter() - t0
                    if report.status != "done":
                        break
            except Exception as e:   # a unit failed: what was done stays done; report and stop
                report.status = "error"
                report.error = f"{type(e).__name__}: {e}"
                raise
            finally:
                report.seconds = time.perf_counter() - t_start
                if self.model is not None:
                    report.llm_calls = self.model.calls - m0[0]
                    report.prompt_tokens = self.model.prompt_tokens - m0[1]
                    report.completion_tokens = self.model.completion_tokens - m0[2]
                try:
                    report.remaining = {k: v for k, v in self.pending().items() if v}
                except Exception:
                    pass
                self._end(run_id, report)
                release = getattr(self.model, "release_parallel", None)
                if callable(release):     # the side-by-side context's KV cache (~350 MB) until next time
                    release()
        return report

    def _stop(self, preempt, t_start, max_seconds, report) -> bool:
        if preempt is not None and preempt.is_set():
            report.status = "preempted"
            return True
        if max_seconds is not None and time.perf_counter() - t_start > max_seconds:
            report.status = "deadline"
            return True
        return False

    def _step(self, step, report, preempt, progress, t_start, max_seconds) -> None:
        units = self._units(step)
        total = len(units)
        if progress:
            progress(Progress(step, 0, total))
        self._preempt = preempt
        for i, (label, unit) in enumerate(units, 1):
            if self._stop(preempt, t_start, max_seconds, report):
                return
            try:
                unit(report)
            except Preempted:     # between two model calls of a long unit: drop it, keep what is done
                report.status = "preempted"
                return
            report.units[step] += 1
            if progress:
                progress(Progress(step, i, total, label))

    def _units(self, step: str) -> list[tuple[str, Callable[[Report], None]]]:
        s = self.settings
        if step == "index":
            from .recall import TurnIndex

            ti = TurnIndex(self.store, self.embedder)
            missing = ti.pending()
            batches = [missing[i:i + ti.batch] for i in range(0, len(missing), ti.batch)]
            return [(f"{len(b)} turns", lambda r, b=b, ti=ti: ti.index_ids(b)) for b in batches]
        if step == "segment":
            pending = self.bank.segments.pending_sessions()
            return [(self._session_label(sid), lambda r, sid=sid: self._segment(sid, r)) for sid in pending]
        if step == "summary":
            batches = even_batches(self._summary_sessions(), s.summary_batch)
            return [(self._sessions_label(b), lambda r, b=b: self.summarize_sessions(b, r)) for b in batches]
        if step == "link":
            return [(self._session_label(sid), lambda r, sid=sid: self.link_session(sid, r))
                    for sid in self._link_sessions()]
        if step == "running":
            n = -(-len(sm.SummaryStore(self.store).unfolded()) // s.fold_batch)
            return [(f"fold {i + 1}", self.fold_running) for i in range(n)]
        if step in ("day", "week", "month"):
            batches = even_batches(sm.plan_rollups(sm.SummaryStore(self.store), step), s.rollup_batch)
            return [(self._periods_label(b), lambda r, b=b: self.roll_up(b, r)) for b in batches]
        raise ValueError(step)

    def _sessions_label(self, ids: list[int]) -> str:
        return self._session_label(ids[0]) if len(ids) == 1 else \
            f"{self._session_label(ids[0])} … ({len(ids)} sessions)"

    @staticmethod
    def _periods_label(plans: list[sm.RollupPlan]) -> str:
        first = sm.period_title(plans[0].kind, plans[0].key)
        return first if len(plans) == 1 else f"{first} … {sm.period_title(plans[-1].kind, plans[-1].key)}"

    def _session_label(self, session_id: int) -> str:
        s = self.store.session(session_id)
        return f"{human_date(s.started_at)} {s.title or ''}".strip() if s else str(session_id)

    # -- index and segment (the segment bank's work) ------------------------------------------------
    def _segment(self, session_id: int, report: Report) -> None:
        from .bank import segment_pending

        mode = self.settings.segment_mode if self.model is not None else "fast"
        r = segment_pending(self.store, self.embedder, mode=mode, model=self.model, bank=self.bank,
                            session_ids=[session_id])
        if r.fallbacks:
            report.fallbacks["segment"] += r.fallbacks

    # -- session summaries, several sessions a unit --------------------------------------------------
    def _summary_sessions(self) -> list[int]:
        """Segmented sessions with a missing or outdated summary, oldest first."""
        pending_seg = set(self.bank.segments.pending_sessions())
        return [i for i in sm.SummaryStore(self.store).sessions_needing_summary() if i not in pending_seg]

    def summarize_sessions(self, session_ids: list[int], report: Report | None = None) -> None:
        """One unit: each session's facts (memory.facts; no model call), then each session written in its
        own transaction."""
        jobs = []
        for sid in session_ids:
            segs = self.bank.segments.for_session(sid, status="final")
            turns = self.store.turns_by_ids([t for g in segs for t in g.turn_ids])
            log = self.store.db.execute("SELECT last_turn_id FROM segmentation_log WHERE session_id = ?",
                                        [sid]).fetchone()
            sess = self.store.session(sid)
            end = max([g.ended_at for g in segs] or [sess.started_at])
            jobs.append((sid, sess, end, log[0] if log else None,
                         *sm.session_text(turns, self.settings.summary_words)))
        summaries = sm.SummaryStore(self.store)
        for sid, sess, end, last_turn, text, sources in jobs:
            with self.store.db.conn:
                summaries.add("session", str(sid), text, sess.started_at, end, sessions=[sid],
                              last_turn_id=last_turn, method="facts", fingerprint=",".join(map(str, sources)),
                              turn_ids=sources)

    # -- links, one session a unit ----------------------------------------------------------------
    def _link_sessions(self) -> list[int]:
        """Segmented sessions with segments whose links are undecided, oldest first."""
        pending_seg = set(self.bank.segments.pending_sessions())
        need = {r[0] for r in self.store.db.execute(
            "SELECT DISTINCT s.session_id FROM segments s LEFT JOIN link_log g ON g.segment_id = s.id "
            "WHERE g.segment_id IS NULL AND s.status = 'final'").fetchall()} - pending_seg
        if not need:
            return []
        marks = ",".join("?" * len(need))
        return [r[0] for r in self.store.db.execute(
            f"SELECT id FROM sessions WHERE id IN ({marks}) ORDER BY started_at, id", list(need)).fetchall()]

    def link_session(self, session_id: int, report: Report | None = None) -> None:
        """One unit: label the new segments' links to earlier memories, then write them."""
        report = report if report is not None else Report()
        s = self.settings
        links = LinkStore(self.store)
        seg_ids = [g.id for g in self.bank.segments.for_session(session_id, status="final")]
        undecided = [i for i in links.undecided(session_id) if i in set(seg_ids)]
        vecs = key_vectors(self.store, undecided)
        pairs: list[tuple[int, int, float]] = []
        per_seg: dict[int, int] = {}
        for sid in undecided:
            cands = earlier_candidates(self.store, sid, k=s.link_k, min_similarity=s.min_similarity,
                                       vector=vecs.get(sid))
            per_seg[sid] = len(cands)
            pairs += [(e, sid, sim) for e, sim in cands]
        pairs.sort(key=lambda p: -p[2])
        groups = [pairs[i:i + s.max_pairs] for i in range(0, len(pairs), s.max_pairs)]
        order = {sid: i for i, sid in enumerate(seg_ids)}
        groups = [sorted(g, key=lambda p: (order.get(p[1], 0), -p[2])) for g in groups]   # pairs of one newer
        infos = segment_infos(self.store, list({*seg_ids, *(e for e, _, _ in pairs)}))     # memory in a row

        new_links = []
        for group in groups:
            labs = self._label(seg_ids, infos, group, report)
            new_links += PairTask(group, infos).links(labs)
            report.labels.update(labs)
            report.pairs += len(group)
        counts = Counter(l.later_id for l in new_links)
        with self.store.db.conn:
            links.add(new_links)
            for sid in undecided:
                links.mark_done(sid, per_seg.get(sid, 0), counts.get(sid, 0), "llm")

    def _conversation_block(self, seg_ids: list[int], infos: dict[int, SegmentInfo]) -> str:
        lines_per = [infos[i].text.splitlines() for i in seg_ids if i in infos]
        n_lines = sum(len(x) for x in lines_per) or 1
        total = sum(len(l.split()) for x in lines_per for l in x)
        per_turn = 60 if total <= self.settings.max_session_words else max(10, self.settings.max_session_words // n_lines)
        out = []
        for n, lines in enumerate(lines_per, 1):
            body = "\n".join("  " + clip_words(l, per_turn) for l in lines)
            out.append(f"Part {n}:\n{body}")
        return "\n".join(out)


    def _label(self, seg_ids, infos, group, report: Report) -> list[str]:
        """Labels for `group`: one prompt per pair, decoded side by side where the model can (default),
        or `pairs_per_call` pairs per JSON answer."""
        if self.settings.pairs_per_call <= 1:
            return label_many(self.model, [(infos[l], infos[e]) for e, l, _ in group],
                              checkpoint=self._check_preempt, on_error=lambda: report.fallbacks.update(["links"]))
        out = []
        for i in range(0, len(group), self.settings.pairs_per_call):
            self._check_preempt()
            out += self._label_batch(seg_ids, infos, group[i:i + self.settings.pairs_per_call], report)
        return out

    def _check_preempt(self) -> None:
        if self._preempt is not None and self._preempt.is_set():
            raise Preempted()

    def _label_batch(self, seg_ids, infos, group, report: Report) -> list[str]:
        """One JSON call labels every pair of `group` (keyed p1..pn, so each label is tied to its pair)."""
        prefix = (f"Conversation:\n{self._conversation_block(seg_ids, infos)}"
                  "\n\nEarlier memories:\n" + PairTask(group, infos).earlier_block())
        parts = {sid: n for n, sid in enumerate([i for i in seg_ids if i in infos], 1)}
        letters = PairTask(group, infos).letters()
        pairs = "\n".join(f"p{i}: memory [{letters[e]}] -> Part {parts[l]}" for i, (e, l, _) in enumerate(group, 1))
        msgs = [{"role": "system", "content": SESSION_SYSTEM},
                {"role": "user", "content": prefix + LABEL_TASK.format(guide=label_guide(), pairs=pairs)}]
        keys = pair_keys(len(group))
        schema = keyed_labels_schema(len(group))
        try:
            data = json.loads(self.model.complete(msgs, schema=schema, max_tokens=8 * len(group) + 16))
            return parse_labels([data.get(k) for k in keys], len(group))
        except Exception:
            report.fallbacks["links"] += 1
            return ["None"] * len(group)

    # -- the running memory and the roll-ups ------------------------------------------------------
    def fold_running(self, report: Report | None = None) -> None:
        summaries = sm.SummaryStore(self.store)
        plan = sm.plan_fold(summaries, self.settings.fold_batch)
        if plan is None:
            return
        text = sm.fold(plan, self.settings.running_words)
        with self.store.db.conn:
            sm.write_fold(self.store, plan, text, "facts", 0)

    def roll_up(self, plans: list[sm.RollupPlan], report: Report | None = None) -> None:
        """One unit: each period's summary (no model call), written in its own transaction."""
        for plan in plans:
            text, method = sm.rollup(plan)
            with self.store.db.conn:
                sm.write_rollup(self.store, plan, text, method, 0)

    # -- run records ------------------------------------------------------------------------------
    def _begin(self, trigger: str) -> int:
        with self.store.db.conn:
            # we hold the lock: a run still marked running was killed
            self.store.db.execute("UPDATE consolidation_runs SET status = 'interrupted' WHERE status = 'running'")
            return self.store.db.execute("INSERT INTO consolidation_runs (trigger, started_at) VALUES (?, ?)",
                                         [trigger, utcnow()]).lastrowid

    def _end(self, run_id: int, report: Report) -> None:
        try:
            with self.store.db.conn:
                self.store.db.execute(
                    "UPDATE consolidation_runs SET ended_at = ?, status = ?, units = ?, llm_calls = ?, "
                    "prompt_tokens = ?, completion_tokens = ?, seconds = ?, detail = ? WHERE id = ?",
                    [utcnow(), report.status, sum(report.units.values()), report.llm_calls, report.prompt_tokens,
                     report.completion_tokens, report.seconds, json.dumps(report.as_dict()), run_id])
        except Exception:
            pass


SESSION_SYSTEM = ("You keep a concise, factual memory of a person's conversations and relate new memories to "
                  "earlier ones. You never invent details.")
LABEL_TASK = ("\n\nFor each pair below, how does the part of this conversation relate to the earlier memory? "
              "Relations:\n{guide}\nPairs:\n{pairs}\nAnswer with JSON: the relation of each pair.")


def even_batches(items: list, most: int) -> list[list]:
    """`items` in order, in as few batches of at most `most` as possible, of nearly equal sizes (side-by-side
    decoding runs as long as its longest answer, so a small last batch would cost nearly a full one)."""
    if not items:
        return []
    n = -(-len(items) // max(1, most))
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


@contextmanager
def run_lock(db_path: Path) -> Iterator[bool]:
    """An exclusive, non-blocking lock on '<db>.consolidate.lock' (released by the OS if we are killed)."""
    import fcntl

    path = Path(str(db_path) + ".consolidate.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def running_elsewhere(db_path: Path) -> bool:
    """Whether a process holds `run_lock` of `db_path` now, asked without creating the lock file."""
    import fcntl

    try:
        fd = os.open(Path(str(db_path) + ".consolidate.lock"), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def last_runs(store: Store, n: int = 5) -> list[dict]:
    rows = store.db.execute("SELECT id, trigger, started_at, ended_at, status, units, llm_calls, seconds "
                            "FROM consolidation_runs ORDER BY id DESC LIMIT ?", [n]).fetchall()
    keys = ("id", "trigger", "started_at", "ended_at", "status", "units", "llm_calls", "seconds")
    return [dict(zip(keys, r)) for r in rows]

