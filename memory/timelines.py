"""Timelines (THEANINE, Ong et al. 2025): memories linked to earlier related memories by labelled relations,
expanded at answer time into dated chains.

- Linking (cold path): each new segment is compared with its `k` most similar earlier segments (cosine of
  their retrieval keys); a language model labels each pair with one relation of `LABELS` or "None", several
  pairs per call; every label but None is stored as a dated link "earlier -(label)-> later".
- Expansion (hot path, no model call): the best hits are grown through their links, backwards and
  forwards, into timelines in time order; the timeline most relevant to the question is kept for each hit.
  `expand_ranked` turns ranked segment hits into a ranked list with timeline members inserted after their
  anchor, ready for the same budget packing (equal budget); `TimelineContext` says which chains and which
  outdated ("Changed") memories to render.
- A memory a later one Changed stays (it is history: it explains how things developed) but is always
  rendered as such, never as the current fact.
- Refinement (THEANINE's last step, optional, one model call): `refine` rewrites the timelines for the
  question.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from .clock import human_date, utcnow
from .protocols import LanguageModel, Preempted
from .store import Store

LABELS = ("Changed", "Cause", "Reason", "HinderedBy", "React", "Want", "SameTopic")
CHOICES = LABELS + ("None",)
MEANING = {   # None and SameTopic first: small models drift toward the first options they are shown
    "None": "not related",
    "SameTopic": "both are about the same specific topic or event, with none of the relations below",
    "Changed": "the newer one updates, corrects or contradicts the earlier one (the earlier is no longer true)",
    "Cause": "the earlier event caused the newer one",
    "Reason": "the earlier one is the reason or motive for the newer one",
    "HinderedBy": "what the newer one is about was hindered or blocked by the earlier one",
    "React": "the newer one is an emotional reaction to the earlier one",
    "Want": "the newer one is a wish, plan or intention that follows from the earlier one",
}


@dataclass
class Link:
    """A stored relation, read "earlier -(label)-> later"."""

    earlier_id: int
    later_id: int
    label: str
    earlier_at: str
    later_at: str
    similarity: float | None = None
    method: str = "llm"
    id: int | None = None


@dataclass
class SegmentInfo:
    """What timelines need about a segment: its dates, topic and the text the model reads."""

    id: int
    session_id: int
    started_at: str
    ended_at: str
    topic: str
    text: str
    turn_ids: list[int] = field(default_factory=list)


def clip_words(text: str, n: int) -> str:
    ws = text.split()
    return text if len(ws) <= n else " ".join(ws[:n]) + " …"


class LinkStore:
    """Reads and writes links. Writers do not commit: the caller holds the transaction."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    def add(self, links: Iterable[Link]) -> int:
        n = 0
        for l in links:
            if l.label not in LABELS or l.earlier_id == l.later_id:
                continue
            cur = self.db.execute(
                "INSERT OR IGNORE INTO links (earlier_id, later_id, label, earlier_at, later_at, similarity,"
                " method, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [l.earlier_id, l.later_id, l.label, l.earlier_at, l.later_at, l.similarity, l.method, utcnow()])
            n += cur.rowcount
        return n

    def mark_done(self, segment_id: int, candidates: int, links: int, method: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO link_log (segment_id, candidates, links, method, done_at) "
                        "VALUES (?, ?, ?, ?, ?)", [segment_id, candidates, links, method, utcnow()])

    def undecided(self, session_id: int | None = None) -> list[int]:
        """Final segments whose links to earlier memories are not decided yet, oldest first."""
        where, params = "", []
        if session_id is not None:
            where, params = " AND s.session_id = ?", [session_id]
        return [r[0] for r in self.db.execute(
            "SELECT s.id FROM segments s LEFT JOIN link_log g ON g.segment_id = s.id "
            f"WHERE g.segment_id IS NULL AND s.status = 'final'{where} ORDER BY s.started_at, s.id",
            params).fetchall()]

    def _rows(self, where: str, params) -> list[Link]:
        return [Link(e, l, lab, ea, la, sim, m, i) for i, e, l, lab, ea, la, sim, m in self.db.execute(
            "SELECT id, earlier_id, later_id, label, earlier_at, later_at, similarity, method FROM links "
            f"WHERE {where}", list(params)).fetchall()]

    def touching(self, ids: Sequence[int]) -> list[Link]:
        """Every link with either end in `ids`."""
        out = []
        for chunk in _chunks(list(ids), 400):
            marks = ",".join("?" * len(chunk))
            out += self._rows(f"earlier_id IN ({marks}) OR later_id IN ({marks})", chunk + chunk)
        return out

    def changed_by(self, ids: Sequence[int]) -> dict[int, Link]:
        """For each of `ids` that a later memory Changed: the latest such link (the memory is history)."""
        out: dict[int, Link] = {}
        for chunk in _chunks(list(ids), 400):
            marks = ",".join("?" * len(chunk))
            for l in self._rows(f"label = 'Changed' AND earlier_id IN ({marks}) ORDER BY later_at", chunk):
                out[l.earlier_id] = l
        return out

    def label_counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT label, COUNT(*) FROM links GROUP BY label ORDER BY 2 DESC").fetchall())


def _chunks(xs: list, n: int):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


# -- reading segments ------------------------------------------------------------------------------
def segment_infos(store: Store, ids: Sequence[int]) -> dict[int, SegmentInfo]:
    """Segments by id with their text rebuilt from the member turns ("Speaker: text" lines)."""
    from .segments import SegmentStore, render

    segs = SegmentStore(store).get(list(ids))
    turns = {t.id: t for t in store.turns_by_ids([t for s in segs.values() for t in s.turn_ids])}
    return {s.id: SegmentInfo(s.id, s.session_id, s.started_at, s.ended_at, s.topic,
                              render([turns[t] for t in s.turn_ids if t in turns]), list(s.turn_ids))
            for s in segs.values()}


def key_vectors(store: Store, ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The stored key vectors of segments (cosine space, unit length)."""
    out = {}
    for chunk in _chunks(list(ids), 400):
        marks = ",".join("?" * len(chunk))
        for i, blob in store.db.execute(
                f"SELECT id, embedding FROM vectors_segment WHERE id IN ({marks})", chunk).fetchall():
            out[i] = np.frombuffer(blob, dtype=np.float32)
    return out


# -- candidates for linking ------------------------------------------------------------------------
def earlier_candidates(store: Store, segment_id: int, *, k: int = 3, min_similarity: float = 0.3,
                       same_session: bool = False, vector: np.ndarray | None = None) -> list[tuple[int, float]]:
    """The `k` earlier segments most similar to `segment_id` (cosine of keys, higher = more similar),
    best first. Earlier = started before it; by default only other sessions'."""
    row = store.db.execute("SELECT session_id, started_at FROM segments WHERE id = ?", [segment_id]).fetchone()
    if row is None:
        return []
    session_id, started = row
    if vector is None:
        vector = key_vectors(store, [segment_id]).get(segment_id)
        if vector is None:
            return []
    from .vectors import VectorIndex

    hits = VectorIndex(store, "segment").search(vector, k * 6 + 8, until=started)
    if not hits:
        return []
    ids = [i for i, _ in hits if i != segment_id]
    marks = ",".join("?" * len(ids))
    meta = {i: (s, st) for i, s, st in store.db.execute(
        f"SELECT id, session_id, status FROM segments WHERE id IN ({marks})", ids).fetchall()} if ids else {}
    out = []
    for i, sim in hits:
        m = meta.get(i)
        if m is None or m[1] != "final" or (not same_session and m[0] == session_id) or sim < min_similarity:
            continue
        out.append((i, float(sim)))
        if len(out) == k:
            break
    return out


# -- labelling prompt --------------------------------------------------------------------------------
def label_guide() -> str:
    return "\n".join(f"- {k}: {v}" for k, v in MEANING.items())


@dataclass
class PairTask:
    """Pairs to label in one call. `earlier` and `later` map letters / part numbers to segments."""

    pairs: list[tuple[int, int, float]]          # (earlier_id, later_id, similarity)
    infos: dict[int, SegmentInfo]

    def earlier_ids(self) -> list[int]:
        seen = dict.fromkeys(e for e, _, _ in self.pairs)
        return sorted(seen, key=lambda i: (self.infos[i].started_at, i))

    def later_ids(self) -> list[int]:
        seen = dict.fromkeys(l for _, l, _ in self.pairs)
        return sorted(seen, key=lambda i: (self.infos[i].started_at, i))

    def letters(self) -> dict[int, str]:
        return {sid: _letter(i) for i, sid in enumerate(self.earlier_ids())}

    def parts(self) -> dict[int, int]:
        return {sid: i + 1 for i, sid in enumerate(self.later_ids())}

    def earlier_block(self, max_words: int = 45) -> str:
        lines = []
        for sid, letter in self.letters().items():
            s = self.infos[sid]
            topic = f" {s.topic}:" if s.topic else ""
            lines.append(f"[{letter}] ({human_date(s.started_at)}){topic} "
                         f"{clip_words(' / '.join(s.text.splitlines()), max_words)}")
        return "\n".join(lines)

    def later_block(self, max_words_per_turn: int = 50) -> str:
        out = []
        for sid, n in self.parts().items():
            s = self.infos[sid]
            body = "\n".join("  " + clip_words(l, max_words_per_turn) for l in s.text.splitlines())
            out.append(f"Part {n} ({human_date(s.started_at)}):\n{body}")
        return "\n".join(out)

    def links(self, labels: Sequence[str], method: str = "llm") -> list[Link]:
        out = []
        for (e, l, sim), lab in zip(self.pairs, labels):
            if lab in LABELS:
                out.append(Link(e, l, lab, self.infos[e].started_at, self.infos[l].started_at, sim, method))
        return out


def _letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


LABEL_SYSTEM = "You relate memories of a person's conversations in time."

LABEL_INSTRUCTIONS = """Earlier memories:
{earlier}

Newer conversation:
{later}

For each pair below, how does the part of the newer conversation relate to the earlier memory? Relations:
{guide}
Pairs:
{pairs}
Answer with JSON: the relation of each pair."""


def pair_keys(n: int) -> list[str]:
    return [f"p{i}" for i in range(1, n + 1)]


def keyed_labels_schema(n: int) -> dict:
    """{"p1": label, ..., "pn": label}: each label written next to its pair's key (small models keep the
    pairs apart this way; a bare list drifts into reciting the label set)."""
    keys = pair_keys(n)
    return {"type": "object", "properties": {k: {"type": "string", "enum": list(CHOICES_ORDERED)} for k in keys},
            "required": keys}


CHOICES_ORDERED = tuple(MEANING)


def label_messages(task: PairTask) -> list[dict]:
    letters, parts = task.letters(), task.parts()
    pairs = "\n".join(f"p{i}: memory [{letters[e]}] -> Part {parts[l]}" for i, (e, l, _) in enumerate(task.pairs, 1))
    text = LABEL_INSTRUCTIONS.format(earlier=task.earlier_block(), later=task.later_block(), guide=label_guide(),
                                     pairs=pairs)
    return [{"role": "system", "content": LABEL_SYSTEM}, {"role": "user", "content": text}]


def parse_labels(values, n: int) -> list[str]:
    """Exactly n labels; anything unknown counts as None. Raises on a wrong length."""
    if not isinstance(values, list) or len(values) != n:
        raise ValueError(f"expected a list of {n} labels, got {values!r}")
    out = []
    for v in values:
        v = str(v).strip()
        match = next((c for c in CHOICES if c.lower() == v.lower().replace(" ", "")), "None")
        out.append(match)
    return out


PAIR_INSTRUCTIONS = """How does a newer memory from a person's conversations relate to an earlier one? Relations:
{guide}
Answer with JSON.

"""


def pair_messages(newer: SegmentInfo, earlier: SegmentInfo, newer_words: int = 32,
                  earlier_words: int = 24) -> list[dict]:
    """One pair. The instructions, then the newer memory, then the earlier one, last: consecutive pairs of
    the same newer memory share everything up to the earlier text, which llama.cpp does not recompute, so
    a pair costs about the earlier text's tokens (the earlier text is the shorter one for that reason)."""
    def body(s: SegmentInfo, words: int) -> str:
        return clip_words(" / ".join(s.text.splitlines()), words)

    text = (PAIR_INSTRUCTIONS.format(guide=label_guide())
            + f"Newer ({human_date(newer.started_at)}): {body(newer, newer_words)}\n"
            + f"Earlier ({human_date(earlier.started_at)}): {body(earlier, earlier_words)}")
    return [{"role": "system", "content": LABEL_SYSTEM}, {"role": "user", "content": text}]


# {"relation": label}. Measured on 18 LoCoMo pairs with the 1.5B model: a bare string label collapses to
# "Changed" (15-16 of 18), the keyed object gives varied labels (13 SameTopic, 2 None, 2 Cause, 1 Changed).
PAIR_SCHEMA = {"type": "object", "properties": {"relation": {"type": "string", "enum": list(MEANING)}},
               "required": ["relation"]}


# What a JSON answer starts with: a model with choose() is asked only for the label's first token there.
PAIR_PREFIX = '{"relation": "'


def label_pair(model: LanguageModel, newer: SegmentInfo, earlier: SegmentInfo) -> str:
    """The relation earlier -(label)-> newer, or "None" (one short call; may raise).

    With a model that has `choose` (llama.cpp), the label is the one the JSON answer would start with,
    read from one evaluated token; otherwise the constrained JSON answer itself."""
    messages = pair_messages(newer, earlier)
    choose = getattr(model, "choose", None)
    if callable(choose):
        picked = choose(messages, list(MEANING), prefix=PAIR_PREFIX)
        if picked is not None:
            return picked
    data = json.loads(model.complete(messages, schema=PAIR_SCHEMA, max_tokens=16))
    return parse_labels([data.get("relation") if isinstance(data, dict) else None], 1)[0]


def label_many(model: LanguageModel, pairs: Sequence[tuple[SegmentInfo, SegmentInfo]], *,
               checkpoint: Callable[[], None] | None = None, on_error: Callable[[], None] | None = None,
               ) -> list[str]:
    """label_pair() for each (newer, earlier) pair; with a model that has `choose_many`, every pair is
    still its own prompt but all are evaluated in shared passes (a pair costs its earlier text's tokens).
    A pair whose call fails is "None" (on_error is told). `checkpoint` may raise to abandon the work."""
    picked: list[str | None] = [None] * len(pairs)
    many = getattr(model, "choose_many", None)
    if callable(many) and len(pairs) > 1:
        try:
            picked = many([pair_messages(n, e) for n, e in pairs], list(MEANING), prefix=PAIR_PREFIX,
                          checkpoint=checkpoint)
        except Preempted:
            raise
        except Exception:
            pass            # each pair alone below
    out = []
    for (newer, earlier), label in zip(pairs, picked):
        if label is None:
            if checkpoint is not None:
                checkpoint()
            try:
                label = label_pair(model, newer, earlier)
            except Exception:
                if on_error is not None:
                    on_error()
                label = "None"
        out.append(label)
    return out


def label_pairs(model: LanguageModel, task: PairTask, max_tokens: int | None = None) -> list[str]:
    """One call labels every pair of `task`; returns the labels in pair order (may raise). Measured with
    the 1.5B default model, a batch collapses to one label for every pair; use it with stronger models."""
    n = len(task.pairs)
    raw = model.complete(label_messages(task), schema=keyed_labels_schema(n), max_tokens=max_tokens or 16 + 8 * n)
    data = json.loads(raw)
    return parse_labels([data.get(k) for k in pair_keys(n)], n)


# -- the graph at answer time ------------------------------------------------------------------------
@dataclass
class Timeline:
    """Segments in time order; labels[i] is the relation members[i] -(labels[i])-> members[i+1]."""

    anchor: int
    members: list[int]
    labels: list[str]
    score: float = 0.0

    def hops(self, sid: int) -> int:
        return abs(self.members.index(sid) - self.members.index(self.anchor))


class TimelineGraph:
    """Walks stored links around anchors. Backwards follows links to earlier memories, forwards to later
    ones; `branch` bounds how many links of one node are followed (the most similar first)."""

    def __init__(self, store: Store, max_depth: int = 2, branch: int = 3, max_paths: int = 24):
        self.store = store
        self.links = LinkStore(store)
        self.max_depth = max_depth
        self.branch = branch
        self.max_paths = max_paths

    def _adjacent(self, ids: Sequence[int]) -> tuple[dict[int, list[Link]], dict[int, list[Link]]]:
        back: dict[int, list[Link]] = {}
        fwd: dict[int, list[Link]] = {}
        for l in self.links.touching(ids):
            back.setdefault(l.later_id, []).append(l)
            fwd.setdefault(l.earlier_id, []).append(l)
        key = lambda l: (l.label != "Changed", -(l.similarity or 0.0))   # Changed first: it decides currency
        for d in (back, fwd):
            for v in d.values():
                v.sort(key=key)
        return back, fwd

    def paths(self, anchor: int) -> tuple[list[list[tuple[int, str]]], list[list[tuple[int, str]]]]:
        """Backward and forward paths from `anchor`: lists of (segment, label of the link walked)."""
        back_paths: list[list[tuple[int, str]]] = [[]]
        fwd_paths: list[list[tuple[int, str]]] = [[]]
        frontier_b = [[]]
        frontier_f = [[]]
        for _ in range(self.max_depth):
            ends = {(p[-1][0] if p else anchor) for p in frontier_b + frontier_f}
            back, fwd = self._adjacent(list(ends))
            nb, nf = [], []
            for p in frontier_b:
                node = p[-1][0] if p else anchor
                seen = {anchor, *(x for x, _ in p)}
                for l in back.get(node, [])[:self.branch]:
                    if l.later_id == node and l.earlier_id not in seen:
                        nb.append(p + [(l.earlier_id, l.label)])
            for p in frontier_f:
                node = p[-1][0] if p else anchor
                seen = {anchor, *(x for x, _ in p)}
                for l in fwd.get(node, [])[:self.branch]:
                    if l.earlier_id == node and l.later_id not in seen:
                        nf.append(p + [(l.later_id, l.label)])
            frontier_b, frontier_f = nb[:self.max_paths], nf[:self.max_paths]
            back_paths += frontier_b
            fwd_paths += frontier_f
            if not frontier_b and not frontier_f:
                break
        # keep only maximal paths (a prefix of a longer path adds nothing)
        return _maximal(back_paths), _maximal(fwd_paths)

    def timelines(self, anchor: int) -> list[Timeline]:
        """Every timeline through `anchor`: a backward path, the anchor, a forward path, in time order."""
        backs, fwds = self.paths(anchor)
        out = []
        for b in backs:
            for f in fwds:
                members = [x for x, _ in reversed(b)] + [anchor] + [x for x, _ in f]
                labels = [lab for _, lab in reversed(b)] + [lab for _, lab in f]
                out.append(Timeline(anchor, members, labels))
                if len(out) >= self.max_paths:
                    return out
        return out

    def best(self, anchor: int, query_vec: np.ndarray | None, vectors: dict[int, np.ndarray] | None = None,
             boost: dict[int, float] | None = None) -> Timeline:
        """The timeline through `anchor` most relevant to the query: the highest mean cosine between the
        query and its other members' keys (plus `boost` for members that are themselves hits)."""
        tls = self.timelines(anchor)
        if len(tls) == 1 or query_vec is None:
            tls[0].score = 0.0
            return max(tls, key=lambda t: len(t.members))
        ids = {m for t in tls for m in t.members}
        vecs = vectors if vectors is not None else key_vectors(self.store, list(ids))
        boost = boost or {}
        for t in tls:
            others = [m for m in t.members if m != anchor]
            if not others:
                t.score = 0.0
                continue
            sims = [float(vecs[m] @ query_vec) if m in vecs else 0.0 for m in others]
            t.score = float(np.mean(sims)) + sum(boost.get(m, 0.0) for m in others) / len(others)
        return max(tls, key=lambda t: (t.score, len(t.members)))


def _maximal(paths: list[list]) -> list[list]:
    keys = [tuple(p) for p in paths]
    out = []
    for p, k in zip(paths, keys):
        if not any(len(q) > len(k) and q[:len(k)] == k for q in keys):
            out.append(p)
    return out or [[]]


# -- expansion at equal budget -------------------------------------------------------------------------
@dataclass
class TimelineParams:
    """How far hits grow into timelines. Frozen on the LoCoMo dev split (tests/bench/locomo_timeline.py)."""

    expand_top: int = 3          # how many of the best hits are expanded
    max_added: int = 2           # timeline members inserted after each expanded hit
    max_depth: int = 2           # links walked in each direction
    decay: float = 0.5           # an inserted member's score = anchor's score x decay^hops
    always_current: bool = True  # a hit that a later memory Changed always brings that later memory
    gate: float = 0.0            # >0: insert only members whose key cosine to the query is >= gate x the hit's
    propagate: float = 0.0       # >0: a ranked hit gains this x the best score of a ranked hit it is linked to


@dataclass
class ExpandedCandidate:
    """A ranked unit for packing (duck-compatible with memory.bank.Candidate)."""

    kind: str
    id: int
    score: float = 0.0
    key_score: float = 0.0
    turn_scores: dict = field(default_factory=dict)
    via: int | None = None       # the hit whose timeline brought it


def expand_ranked(store: Store, ranked: Sequence, query_vec: np.ndarray | None = None,
                  params: TimelineParams | None = None, graph: TimelineGraph | None = None,
                  ) -> tuple[list, dict[int, Timeline]]:
    """Ranked hits (objects with .kind, .id, .score; best first) -> the same list with timeline members
    inserted right after the hit whose timeline brought them (a member ranked lower moves up; one ranked
    higher stays where it is). Returns (expanded list, {anchor id: its best timeline}). Packing the
    result into the budget gives the timeline method at equal budget."""
    p = params or TimelineParams()
    graph = graph or TimelineGraph(store, max_depth=p.max_depth)
    ranked = list(ranked)
    if p.propagate > 0:
        ranked = propagate_scores(store, ranked, p.propagate)
    seg_hits = [c for c in ranked if c.kind == "segment"][:p.expand_top]
    boost = {c.id: 0.1 for c in ranked[:10] if c.kind == "segment"}
    timelines: dict[int, Timeline] = {}
    inserts: dict[int, list[ExpandedCandidate]] = {}
    changed = LinkStore(store).changed_by([c.id for c in seg_hits]) if p.always_current else {}
    for c in seg_hits:
        tl = graph.best(c.id, query_vec, boost=boost)
        timelines[c.id] = tl
        others = sorted((m for m in tl.members if m != c.id), key=lambda m: (tl.hops(m), -tl.members.index(m)))
        if p.gate > 0 and query_vec is not None and others:
            vecs = key_vectors(store, [c.id, *others])
            floor = p.gate * float(vecs[c.id] @ query_vec) if c.id in vecs else 0.0
            others = [m for m in others if m in vecs and float(vecs[m] @ query_vec) >= floor]
        picked = others[:p.max_added]
        cur = changed.get(c.id)
        if cur is not None and cur.later_id not in picked:
            picked = [cur.later_id] + picked[:max(0, p.max_added - 1)]
        hops = {m: (tl.hops(m) if m in tl.members else 1) for m in picked}
        inserts[c.id] = [ExpandedCandidate("segment", m, c.score * p.decay ** max(1, hops[m]), via=c.id)
                         for m in picked]
    out: list = []
    placed: set[tuple[str, int]] = set()
    for c in ranked:
        key = (c.kind, c.id)
        if key not in placed:
            out.append(c)
            placed.add(key)
        for e in inserts.get(c.id, []) if c.kind == "segment" else []:
            if ("segment", e.id) not in placed:
                out.append(e)
                placed.add(("segment", e.id))
    return out, timelines


def propagate_scores(store: Store, ranked: Sequence, weight: float) -> list:
    """Re-rank: each segment gains `weight` x the best score among the ranked segments it is linked to (either
    direction), so memories that belong to one timeline support each other. Only links among the ranked
    hits count; nothing new enters the list."""
    segs = {c.id: c for c in ranked if c.kind == "segment"}
    support: dict[int, float] = {}
    for l in LinkStore(store).touching(list(segs)):
        a, b = segs.get(l.earlier_id), segs.get(l.later_id)
        if a is None or b is None or l.label == "None":
            continue
        support[a.id] = max(support.get(a.id, 0.0), b.score)
        support[b.id] = max(support.get(b.id, 0.0), a.score)
    bonus = {id(c): weight * support.get(c.id, 0.0) if c.kind == "segment" else 0.0 for c in ranked}
    return sorted(ranked, key=lambda c: -(c.score + bonus[id(c)]))


# -- what to render ------------------------------------------------------------------------------------
@dataclass
class TimelineContext:
    """The chains to show with the recalled memories, and which memories are history (changed later)."""

    timelines: list[Timeline] = field(default_factory=list)
    infos: dict[int, SegmentInfo] = field(default_factory=dict)
    changed: dict[int, Link] = field(default_factory=dict)    # earlier segment id -> the link that changed it

    def is_history(self, segment_id: int) -> bool:
        return segment_id in self.changed

    def render(self, max_words: int = 18) -> str:
        return "\n".join(render_chain(t, self.infos, self.changed, max_words) for t in self.timelines)


def render_chain(tl: Timeline, infos: dict[int, SegmentInfo], changed: dict[int, Link] | None = None,
                 max_words: int = 18) -> str:
    """'[8 May 2023] topic: words … -(Changed)-> [20 Jun 2023] topic: words …'; a member that a later
    memory Changed is marked '(since changed)'."""
    changed = changed or {}
    parts = []
    for i, m in enumerate(tl.members):
        s = infos.get(m)
        if s is None:
            continue
        mark = " (since changed)" if m in changed else ""
        body = s.topic + ": " if s.topic else ""
        body += clip_words(" / ".join(s.text.splitlines()), max_words) if max_words else ""
        piece = f"[{human_date(s.started_at)}]{mark} {body}".rstrip(": ")
        if parts:
            parts.append(f" -({tl.labels[i - 1]})-> ")
        parts.append(piece)
    return "".join(parts)


def context_for(store: Store, memories: Sequence, timelines: dict[int, Timeline] | None = None,
                max_chains: int = 3) -> TimelineContext:
    """Chains to render for the recalled `memories` (cheap: a few indexed queries, no model call).

    Each chain is restricted to members that are among the memories (their text is already in the
    prompt), and only chains of two or more are shown. Without `timelines`, each segment memory's own
    links among the recalled memories are used."""
    seg_ids = [m.id for m in memories if getattr(m, "kind", "") == "segment"]
    ctx = TimelineContext()
    if not seg_ids:
        return ctx
    links = LinkStore(store)
    ctx.changed = links.changed_by(seg_ids)
    present = set(seg_ids)
    chains: list[Timeline] = []
    if timelines:
        for anchor, tl in timelines.items():
            if anchor not in present:
                continue
            keep = [i for i, m in enumerate(tl.members) if m in present]
            if len(keep) < 2:
                continue
            members = [tl.members[i] for i in keep]
            labels = [_span_label(tl, keep[j], keep[j + 1]) for j in range(len(keep) - 1)]
            chains.append(Timeline(anchor, members, labels, tl.score))
    else:
        among = [l for l in links.touching(seg_ids) if l.earlier_id in present and l.later_id in present]
        chains = _chains_from_links(among)
    # drop chains contained in another one; keep the longest first
    chains.sort(key=lambda t: -len(t.members))
    kept: list[Timeline] = []
    for t in chains:
        if not any(set(t.members) <= set(k.members) for k in kept):
            kept.append(t)
    ctx.timelines = kept[:max_chains]
    wanted = ({m for t in ctx.timelines for m in t.members} | set(ctx.changed)
              | {l.later_id for l in ctx.changed.values()})
    ctx.infos = segment_infos(store, list(wanted))
    return ctx


def _span_label(tl: Timeline, i: int, j: int) -> str:
    """The label between members i < j of a timeline once the members between them are dropped."""
    labs = tl.labels[i:j]
    return labs[0] if len(labs) == 1 else ("Changed" if "Changed" in labs else "…")


def _chains_from_links(links: list[Link]) -> list[Timeline]:
    """Maximal simple chains through a small set of links (each node followed by its latest link)."""
    nxt: dict[int, Link] = {}
    has_prev: set[int] = set()
    for l in sorted(links, key=lambda l: (l.later_at, l.later_id)):
        if l.earlier_id not in nxt or l.label == "Changed":
            nxt[l.earlier_id] = l
        has_prev.add(l.later_id)
    out = []
    for start in nxt:
        if start in has_prev and any(x.later_id == start and x.earlier_id in nxt for x in links):
            continue
        members, labels, node = [start], [], start
        while node in nxt and nxt[node].later_id not in members:
            labels.append(nxt[node].label)
            node = nxt[node].later_id
            members.append(node)
        out.append(Timeline(start, members, labels))
    return out


# -- recall with timelines -----------------------------------------------------------------------------
class TimelineRecall:
    """Segment recall whose best hits grow into timelines, packed at the same budget (no model call).

    Wraps a recall that can `rank` and `pack` (memory.bank.SegmentRecall). `search` keeps the recall
    protocol (memories best first; higher score = more relevant); `last_timelines` holds the chains of
    the last search for rendering."""

    def __init__(self, base, params: TimelineParams | None = None):
        self.base = base
        self.store = base.store
        self.params = params or TimelineParams()
        self.last_timelines: dict[int, Timeline] = {}

    def search(self, query: str, budget_tokens: int, *, exclude_turn_ids: set[int] | None = None,
               exclude_session: int | None = None, k: int | None = None, **filters):
        b = self.base
        b.turn_index.index_pending()
        if getattr(b, "incremental", None) is not None:
            for sid in b.incremental.live_sessions():
                b.incremental.update(sid)
        qv = b.embedder.embed([query])[0]
        k = k or max(20, budget_tokens // 25)
        ranked = b.rank(query, k, query_vec=qv, **filters)
        expanded, self.last_timelines = expand_ranked(self.store, ranked, qv, self.params)
        return b.pack(expanded, budget_tokens, exclude_turn_ids=exclude_turn_ids, exclude_session=exclude_session)


# What the hot path uses. On LoCoMo (tests/bench/locomo_timeline.py) growing hits into their timelines at
# equal budget lowered evidence recall at 250-1000 words (it gives up lower-ranked hits for neighbours);
# so by default only a hit that a later memory Changed brings that later memory (the current fact), and
# the chains shown are those among the memories recall chose.
HOT_PATH_PARAMS = TimelineParams(expand_top=3, max_added=0, always_current=True)


def recall_with_timelines(recall, store: Store, query: str, budget_tokens: int,
                          params: TimelineParams | None = None, keep: Callable[[list], list] | None = None, **kw):
    """(memories, TimelineContext) for the hot path, whatever recall it is given: a segment recall is
    expanded into timelines at the same budget; any other recall is used as it is. `keep` may leave out
    memories before the chains among them are drawn."""
    if hasattr(recall, "rank") and hasattr(recall, "pack") and hasattr(recall, "turn_index"):
        tr = TimelineRecall(recall, params or HOT_PATH_PARAMS)
        memories = tr.search(query, budget_tokens, **kw)
        timelines = tr.last_timelines
    else:
        memories = recall.search(query, budget_tokens, **kw)
        timelines = getattr(recall, "last_timelines", None)
    if keep is not None:
        memories = keep(memories)
    return memories, context_for(store, memories, timelines)


# -- refinement (THEANINE's last step; optional, one model call) ---------------------------------------
REFINE_SYSTEM = "You prepare notes for answering a question from a person's past conversations."
REFINE_INSTRUCTIONS = """Question: {question}

Timelines of related memories (oldest first; "-(Label)->" is how a later memory relates to an earlier one;
"(since changed)" marks something that was later changed and is no longer current):
{timelines}

Write at most {words} words of dated notes that help answer the question: keep the dates, the order of
events and what changed; leave out what does not matter for the question."""


def refine(model: LanguageModel, question: str, rendered: str, words: int = 80, max_tokens: int = 160) -> str:
    """The timelines rewritten for the question (one model call); '' when there is nothing to refine."""
    if not rendered.strip():
        return ""
    msgs = [{"role": "system", "content": REFINE_SYSTEM},
            {"role": "user", "content": REFINE_INSTRUCTIONS.format(question=question, timelines=rendered,
                                                                    words=words)}]
    return model.complete(msgs, max_tokens=max_tokens).strip()


def timeline_around(store: Store, segment_id: int, max_depth: int = 3) -> list[Timeline]:
    """Every timeline through a memory (for `assistant memory timeline ID`)."""
    return TimelineGraph(store, max_depth=max_depth, branch=5).timelines(segment_id)

