"""The segment memory bank: building it (segmentation, keys, index) and recalling from it.

Cold path: `segment_pending` segments every session that has new turns (one transaction per session,
recorded in `segmentation_log`, so it resumes after a crash and never duplicates). Each segment gets a
retrieval key (date, topic line, compressed text) in the hybrid index "segment".

Live path: `IncrementalSegmenter` keeps the open chat session segmented as it goes (a new exchange joins
the open segment when similar enough, else opens the next); the final segmentation replaces those.

Hot path: `SegmentRecall.search` (no LLM call) ranks segments by fusing two granularities (the segment's
own key in the segment index, and its best member turns in the turn index), plus, when the query names
days (memory/when.py), the units dated in those days; treats turns that are in no segment yet as
provisional units, and packs the best into the token budget.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Sequence

import numpy as np

from .clock import human_date
from .compress import Compressor, IdfCompressor, NoCompressor, build_key
from .index import RRF_K, HybridIndex, IndexRow
from .protocols import Embedder, LanguageModel, TokenCounter, approx_tokens
from .recall import Memory, TurnIndex
from .segmenter import FastSegmenter, LLMSegmenter, Segmentation, keyword_topic
from .segments import Exchange, Segment, SegmentStore, exchanges, memory_line, render
from .store import Store, Turn
from .when import talk_window

# Frozen on the LoCoMo dev split (tests/bench/locomo_recall.py); see docs in the benchmark report.
# window and cutoff (boundary where depth > mean + 1 std) from TIAGE dev; max_size from LoCoMo dev.
FAST_DEFAULTS = dict(window=2, cutoff=-1.0, min_size=1, max_size=3)


class SegmentBank:
    """Writes segments and keeps their keys in the hybrid index "segment"."""

    def __init__(self, store: Store, embedder: Embedder, compressor: Compressor | None = None):
        """`compressor`: how keys are denoised. Default: none, the key is the whole text (the IDF
        compressor did not improve recall on LoCoMo dev; see tests/bench/locomo_recall.py)."""
        self.store = store
        self.embedder = embedder
        self.segments = SegmentStore(store)
        self.index = HybridIndex(store, "segment")
        self.compressor: Compressor = compressor or NoCompressor()
        self._stats: IdfCompressor | None = None

    def idf(self, word: str) -> float:
        """Inverse document frequency over the turns (for topic keywords), fitted once per bank."""
        if self._stats is None:
            self._stats = IdfCompressor.from_store(self.store)
        return self._stats.idf(word)

    def speakers(self, units: Sequence[Exchange]) -> set[str]:
        return {(t.speaker or "").lower() for u in units for t in u.turns if t.speaker}

    def fast_segmenter(self, **kw) -> FastSegmenter:
        params = {**FAST_DEFAULTS, **kw}
        return FastSegmenter(self.embedder, idf=self.idf, exclude_words=self.speakers, **params)

    # -- keys ---------------------------------------------------------------------------------------
    def key_for(self, started_at: str, topic: str, turns: Sequence[Turn]) -> str:
        return build_key(render(turns), date=human_date(started_at), topic=topic, compressor=self.compressor)

    def _rows(self, ids: Sequence[int]) -> list[IndexRow]:
        segs = self.segments.get(ids)
        turns = {t.id: t for t in self.store.turns_by_ids([t for s in segs.values() for t in s.turn_ids])}
        keyed = [(s, s.key or self.key_for(s.started_at, s.topic, [turns[t] for t in s.turn_ids if t in turns]))
                 for s in segs.values()]
        vecs = self.embedder.embed([k for _, k in keyed]) if keyed else []
        return [IndexRow(s.id, v, k, s.started_at, s.source, s.session_id) for (s, k), v in zip(keyed, vecs)]

    def reindex(self, compressor: Compressor | None = None, progress: Callable[[int], None] | None = None,
                batch: int = 256) -> int:
        """Rebuild every key (e.g. with another compressor) and its index entry."""
        if compressor is not None:
            self.compressor = compressor
        ids = self.segments.all_ids()
        for i in range(0, len(ids), batch):
            chunk = ids[i:i + batch]
            segs = self.segments.get(chunk)
            turns = {t.id: t for t in self.store.turns_by_ids([t for s in segs.values() for t in s.turn_ids])}
            keys = {s.id: self.key_for(s.started_at, s.topic, [turns[t] for t in s.turn_ids]) for s in segs.values()}
            vecs = self.embedder.embed(list(keys.values()))
            with self.store.db.conn:
                for sid, key in keys.items():
                    self.segments.set_key(sid, key)
                self.index.add([IndexRow(s, v, keys[s], segs[s].started_at, segs[s].source, segs[s].session_id)
                                for s, v in zip(keys, vecs)], commit=False)
            if progress:
                progress(min(len(ids), i + batch))
        return len(ids)

    # -- final segmentation of one session ------------------------------------------------------
    def segment_session(self, session_id: int, segmenter) -> Segmentation:
        """Segment a whole session and replace its segments, in one transaction."""
        t0 = time.perf_counter()
        turns = [t for t in self.store.turns(session_id) if t.status != "streaming" and t.role != "system"]
        units = exchanges(turns)
        if not units:
            return Segmentation([], getattr(segmenter, "method", "fast"))
        vecs = self.embedder.embed([u.text for u in units])
        session = self.store.session(session_id)
        when = human_date(session.started_at) if session else ""
        if isinstance(segmenter, LLMSegmenter):
            result = segmenter.segment(units, vecs, when=when)
        else:
            result = segmenter.segment(units, vecs)
        planned = []
        for sp in result.spans:
            members = [t for u in units[sp.start:sp.end + 1] for t in u.turns]
            topic = sp.topic or keyword_topic([u.text for u in units[sp.start:sp.end + 1]], self.idf,
                                              exclude=self.speakers(units))
            started = min(t.created_at for t in members)
            planned.append((members, topic, self.key_for(started, topic, members)))
        key_vecs = self.embedder.embed([k for _, _, k in planned])
        with self.store.write():   # the segments replaced are read under the write lock
            old = [s.id for s in self.segments.for_session(session_id)]
            self.index.remove(old)
            self.segments.delete(old)
            rows = []
            for (members, topic, key), v in zip(planned, key_vecs):
                sid = self.segments.add(session_id, members, topic=topic, method=result.method, key=key)
                rows.append(IndexRow(sid, v, key, min(t.created_at for t in members), members[0].source,
                                     session_id))
            self.index.add(rows, commit=False)
            self.segments.log(session_id, max(t.id for t in turns), result.method, fallback=result.fallback,
                              llm_calls=result.llm_calls, segments=len(planned),
                              seconds=time.perf_counter() - t0)
        return result


def make_segmenter(bank: SegmentBank, mode: str = "llm", model: LanguageModel | None = None, **fast):
    """"llm" (SeCom; needs `model`, falls back to the fast one) or "fast" (embedding TextTiling)."""
    fallback = bank.fast_segmenter(**fast)
    if mode == "fast":
        return fallback
    if mode != "llm":
        raise ValueError(f"unknown segmenter mode {mode!r}; use 'llm' or 'fast'")
    if model is None:
        raise ValueError("the llm segmenter needs a language model")
    return LLMSegmenter(model, fallback)


@dataclass
class PendingReport:
    sessions: int = 0
    segments: int = 0
    fallbacks: int = 0
    llm_calls: int = 0
    seconds: float = 0.0
    methods: dict = field(default_factory=dict)


def segment_pending(store: Store, embedder: Embedder, *, mode: str = "llm", model: LanguageModel | None = None,
                    compressor: Compressor | None = None, limit: int | None = None,
                    progress: Callable[[int, int], None] | None = None, bank: SegmentBank | None = None,
                    session_ids: Sequence[int] | None = None) -> PendingReport:
    """Segment every session with turns that final segmentation has not covered, oldest first.

    Each session is one transaction and is recorded as done: an interrupted run resumes where it stopped.
    `progress(done, total)` is called after each session."""
    bank = bank or SegmentBank(store, embedder, compressor)
    segmenter = make_segmenter(bank, mode, model)
    pending = bank.segments.pending_sessions()
    if session_ids is not None:
        wanted = set(session_ids)
        pending = [s for s in pending if s in wanted]
    if limit:
        pending = pending[:limit]
    report = PendingReport()
    t0 = time.perf_counter()
    for i, sid in enumerate(pending, 1):
        r = bank.segment_session(sid, segmenter)
        report.sessions += 1
        report.segments += len(r.spans)
        report.fallbacks += int(r.fallback)
        report.llm_calls += r.llm_calls
        report.methods[r.method] = report.methods.get(r.method, 0) + 1
        if progress:
            progress(i, len(pending))
    report.seconds = time.perf_counter() - t0
    return report


class IncrementalSegmenter:
    """Keeps live sessions segmented as they grow (cheap: one embedding per new exchange).

    A new exchange joins the session's open segment when its cosine similarity to the open segment's last
    exchanges is at least `threshold` and the segment has fewer than `max_units` exchanges; otherwise
    it opens the next segment. These segments are 'open' until the session is segmented for good."""

    def __init__(self, bank: SegmentBank, threshold: float = 0.35, max_units: int = 3, context: int = 2):
        self.bank = bank
        self.threshold = threshold
        self.max_units = max_units
        self.context = context

    def update(self, session_id: int) -> int:
        """Assign the session's unsegmented exchanges; returns how many were assigned."""
        seg_store, store = self.bank.segments, self.bank.store
        units = exchanges(seg_store.unsegmented_turns(session_id))
        if units and all(t.role == "user" for t in units[-1].turns):
            units = units[:-1]           # the reply is not there yet
        if not units:
            return 0
        vecs = self.bank.embedder.embed([u.text for u in units])
        touched: list[int] = []
        with store.write():
            # Consolidation (another connection) may have segmented these turns since they were read:
            # read again under the write lock and keep only what is still in no segment.
            free = {t.id for t in seg_store.unsegmented_turns(session_id)}
            kept = [(u, v) for u, v in zip(units, vecs) if all(i in free for i in u.turn_ids)]
            if not kept:
                return 0
            units = [u for u, _ in kept]
            opens = seg_store.for_session(session_id, status="open")
            open_seg = opens[-1] if opens else None
            open_turns = store.turns_by_ids(open_seg.turn_ids) if open_seg else []
            open_units = exchanges(open_turns)
            for u, v in kept:
                joined = False
                if open_seg is not None and len(open_units) < self.max_units \
                        and max(open_seg.turn_ids) < u.turns[0].id:
                    ctx = self.bank.embedder.embed(["\n".join(x.text for x in open_units[-self.context:])])[0]
                    if float(ctx @ v) >= self.threshold:
                        seg_store.extend(open_seg.id, u.turns)
                        open_seg.turn_ids.extend(u.turn_ids)
                        open_units.append(u)
                        joined = True
                if not joined:
                    sid = seg_store.add(session_id, u.turns, method="incremental", status="open")
                    open_seg = seg_store.get([sid])[sid]
                    open_units = [u]
                if open_seg.id not in touched:
                    touched.append(open_seg.id)
            for sid in touched:
                s = seg_store.get([sid])[sid]
                members = store.turns_by_ids(s.turn_ids)
                topic = keyword_topic([t.text for t in members], self.bank.idf,
                                      exclude={(t.speaker or "").lower() for t in members})
                seg_store.set_key(sid, self.bank.key_for(s.started_at, topic, members), topic)
            self.bank.index.add(self.bank._rows(touched), commit=False)
        return len(units)

    def live_sessions(self, max_sessions: int = 2, recent: int = 200) -> list[int]:
        """The most recently active chat sessions with unsegmented turns among the last `recent` turns
        (cheap on a large memory: older unsegmented turns wait for `segment_pending`)."""
        db = self.bank.store.db
        top = db.execute("SELECT COALESCE(MAX(id), 0) FROM turns").fetchone()[0]
        # The id bound is a parameter and the grouping is done here: with both in SQL the planner walked
        # the whole turns_session index (every turn of the memory) to group by session.
        rows = db.execute("""
            SELECT t.session_id, t.id FROM turns t LEFT JOIN segment_turns st ON st.turn_id = t.id
            WHERE t.id > ? AND st.turn_id IS NULL
              AND t.source = 'chat' AND t.status != 'streaming' AND t.role != 'system'""",
                          [top - recent]).fetchall()
        latest: dict[int, int] = {}
        for session_id, turn_id in rows:
            latest[session_id] = max(turn_id, latest.get(session_id, 0))
        return sorted(latest, key=lambda s: -latest[s])[:max_sessions]


# -- recall ----------------------------------------------------------------------------------------
def _rrf(hit, dense_weight: float = 1.0) -> float:
    """Reciprocal-rank score of a hit: the sum over the lists (dense, BM25) that found it."""
    return sum((dense_weight if side == "dense" else 1.0) / (RRF_K + r) for side, r in hit.ranks.items())


@dataclass
class DatedHit:
    """A segment or turn dated in the days a query names, with its score in its own index."""

    kind: str
    id: int
    score: float


@dataclass
class Candidate:
    """A unit recall may hand to the model: a segment, or a provisional (not yet segmented) turn."""

    kind: str                      # "segment" or "turn"
    id: int
    score: float = 0.0             # higher is better
    key_score: float = 0.0         # the unit's own key in its index
    turn_scores: dict = field(default_factory=dict)   # member turn id -> its score in the turn index


@dataclass
class RecallParams:
    """Fusion and packing parameters, frozen on the LoCoMo dev split."""

    key_weight: float = 1.0        # the segment's own key (dense + BM25, fused)
    dense_weight: float = 0.5      # weight of the dense list's reciprocal rank against BM25's
    turn_weight: float = 1.0       # its best member turn in the turn index (dense + BM25, fused)
    extra_turn_weight: float = 0.0  # each further member turn found, times its score
    turn_mode: str = "bm25"        # which turn-index lists score member turns (in hybrid mode)
    excerpt: bool = True           # a segment too long for the room left is cut to its matching turns
    focus: int = -1                # >= 0: show only member turns within this distance of a matching turn
    min_similarity: float = 0.2    # dense-only turn hits below this cosine are noise
    min_room: int = 8              # stop packing when fewer tokens than this are left
    time_weight: float = 2.0       # a query naming days: weight of the list of units dated in those days


class SegmentRecall:
    """Segment-level recall for the hot path (no language-model call).

    `search` returns memories best first within `budget_tokens`; every memory's `score` is higher for
    more relevant ones, and carries its dates and the ids of its source turns."""

    def __init__(self, store: Store, embedder: Embedder, count_tokens: TokenCounter = approx_tokens, *,
                 params: RecallParams | None = None, mode: str = "hybrid", incremental: bool = True,
                 compressor: Compressor | None = None):
        self.store = store
        self.embedder = embedder
        self.count_tokens = count_tokens
        self.params = params or RecallParams()
        self.mode = mode
        self.bank = SegmentBank(store, embedder, compressor)
        self.segments = self.bank.segments
        self.turn_index = TurnIndex(store, embedder)
        self.incremental = IncrementalSegmenter(self.bank) if incremental else None

    def warm(self) -> threading.Thread:
        """Load both indexes' in-memory mirrors in a background thread (about 3 s of CPU per million
        units), so that the first search after a start does not wait for them; a search meanwhile waits
        only for what is still loading. A load that fails here is left to the first search."""
        def load() -> None:
            with self.store.background() as go:
                for vectors in (self.bank.index.vectors, self.turn_index.vectors):
                    if not go or self.store.closing:
                        return
                    try:
                        if vectors.coded:
                            vectors.mirror()
                    except Exception:
                        return

        t = threading.Thread(target=load, name="warm-recall", daemon=True)
        t.start()
        return t

    # -- ranking ----------------------------------------------------------------------------------
    def rank(self, query: str, k: int = 40, query_vec: np.ndarray | None = None, *, now: datetime | None = None,
             **filters) -> list[Candidate]:
        """Candidates best first: segments scored by their key and their member turns, and provisional
        turns (in no segment yet) scored by themselves. Every list contributes by rank (RRF). When the
        query names days ("on 24 October", "last week"; read against `now`, default the local time) and
        `time_weight` is on, the units dated in those days form one more list."""
        p = self.params
        qv = self.embedder.embed([query])[0] if query_vec is None else query_vec
        seg_hits = self.bank.index.search(query, qv, k, mode=self.mode, **filters)
        turn_mode = self.mode if self.mode != "hybrid" else p.turn_mode
        turn_hits = self.turn_index.search(query, qv, k * 4, mode=turn_mode, **filters)
        turn_hits = [h for h in turn_hits if h.bm25 is not None or (h.dense or 0) >= p.min_similarity]
        dated = self._dated(query, qv, k, now, filters) if p.time_weight > 0 else []
        seg_of = self.segments.segment_of([h.id for h in turn_hits] + [h.id for h in dated if h.kind == "turn"])
        cands: dict[tuple[str, int], Candidate] = {}
        for h in seg_hits:
            cands[("segment", h.id)] = Candidate("segment", h.id, key_score=_rrf(h, p.dense_weight))
        for h in turn_hits:
            sid, score = seg_of.get(h.id), _rrf(h, p.dense_weight)
            if sid is None:   # provisional: its own text is its key
                cands[("turn", h.id)] = Candidate("turn", h.id, key_score=score, turn_scores={h.id: score})
            else:
                cands.setdefault(("segment", sid), Candidate("segment", sid)).turn_scores[h.id] = score
        for c in cands.values():
            ts = sorted(c.turn_scores.values(), reverse=True)
            c.score = (p.key_weight * c.key_score + p.turn_weight * (ts[0] if ts else 0.0)
                       + p.extra_turn_weight * sum(ts[1:]))
        seen: set[tuple[str, int]] = set()
        for h in dated:   # in the named days, best first: one list more, by rank like the others
            key = ("segment", seg_of[h.id]) if h.kind == "turn" and h.id in seg_of else (h.kind, h.id)
            if key in seen:
                continue
            c = cands.setdefault(key, Candidate(key[0], key[1]))
            c.score += p.time_weight / (RRF_K + len(seen))
            seen.add(key)
        return sorted(cands.values(), key=lambda c: -c.score)

    def _dated(self, query: str, qv: np.ndarray, k: int, now: datetime | None, filters: dict) -> list[DatedHit]:
        """Segments and turns dated in the days the query names, most relevant first (empty when it names
        none). Turns count too, so that a day whose talk is not segmented yet is found."""
        window = talk_window(query, now or datetime.now().astimezone())
        if window is None:
            return []
        since, until = window.iso()
        if filters.get("since"):
            since = max(since, filters["since"])
        if filters.get("until"):
            until = min(until, filters["until"])
        rest = {f: v for f, v in filters.items() if f not in ("since", "until")}
        segs = self.bank.index.search(query, qv, k, mode=self.mode, since=since, until=until, **rest)
        turns = self.turn_index.search(query, qv, k, mode=self.mode, since=since, until=until, **rest)
        merged = [DatedHit("segment", h.id, h.score) for h in segs] + [DatedHit("turn", h.id, h.score) for h in turns]
        return sorted(merged, key=lambda h: -h.score)

    # -- packing ----------------------------------------------------------------------------------
    def pack(self, cands: Sequence[Candidate], budget_tokens: int, *, exclude_turn_ids: set[int] | None = None,
             exclude_session: int | None = None, count: TokenCounter | None = None) -> list[Memory]:
        """Best first into the budget: a unit that fits goes in whole; one that does not is cut to the
        member turns that matched (best first, in conversation order) when `excerpt` is on."""
        count = count or self.count_tokens
        exclude = exclude_turn_ids or set()
        segs = self.segments.get([c.id for c in cands if c.kind == "segment"])
        want = {t for c in cands for t in (segs[c.id].turn_ids if c.kind == "segment" and c.id in segs else [c.id])}
        turns = {t.id: t for t in self.store.turns_by_ids(list(want - exclude))}
        out, used = [], 0
        for c in cands:
            if budget_tokens - used < self.params.min_room:
                break
            if c.kind == "segment":
                s = segs.get(c.id)
                if s is None:
                    continue
                members = [turns[t] for t in s.turn_ids if t in turns]
                topic, started, ended, source = s.topic, s.started_at, s.ended_at, s.source
            else:
                t = turns.get(c.id)
                if t is None:
                    continue
                members, topic, started, ended, source = [t], "", t.created_at, t.created_at, t.source
            if not members or (exclude_session is not None and members[0].session_id == exclude_session):
                continue
            if self.params.focus >= 0 and len(members) > 1:
                pos = [i for i, t in enumerate(members) if t.id in c.turn_scores]
                if pos:
                    members = [t for i, t in enumerate(members)
                               if min(abs(i - j) for j in pos) <= self.params.focus]
            head = count(f"[{human_date(started)}] {topic}".strip()) + 1
            lines = [memory_line(t) for t in members]
            cost = head + count("\n".join(lines))
            if used + cost > budget_tokens:
                if not self.params.excerpt or len(members) == 1:
                    continue
                hit = sorted((t for t in members if t.id in c.turn_scores), key=lambda t: -c.turn_scores[t.id])
                chosen, cost = [], head
                for t in hit:
                    extra = count(memory_line(t)) + 1
                    if used + cost + extra <= budget_tokens:
                        chosen.append(t)
                        cost += extra
                if not chosen:
                    continue
                members = sorted(chosen, key=lambda t: t.id)
                lines = [memory_line(t) for t in members]
            out.append(Memory(kind=c.kind, id=c.id, text="\n".join(lines), score=c.score,
                              started_at=started, ended_at=ended if len(members) > 1 else members[-1].created_at,
                              session_id=members[0].session_id, turn_ids=[t.id for t in members],
                              topic=topic, source=source))
            used += cost
        return out

    def search(self, query: str, budget_tokens: int, *, exclude_turn_ids: set[int] | None = None,
               exclude_session: int | None = None, k: int | None = None, now: datetime | None = None,
               **filters) -> list[Memory]:
        """The most relevant memories for `query`, best first, within `budget_tokens` (higher score =
        more relevant). Filters: since=, until= (ISO times), sources=[...], session_ids=[...]."""
        self.turn_index.index_pending()          # every turn is findable, segmented or not
        if self.incremental is not None:
            for sid in self.incremental.live_sessions():
                self.incremental.update(sid)
        k = k or max(20, budget_tokens // 25)
        return self.pack(self.rank(query, k, now=now, **filters), budget_tokens, exclude_turn_ids=exclude_turn_ids,
                         exclude_session=exclude_session)
