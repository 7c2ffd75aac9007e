"""Retrieval of what was heard in a time window, ranked by topic when one is named.

The unit is an `AudioMoment`: one transcript turn (source 'audio') and its clip, or, after `stretches`,
several that followed one another (one speaker's words cut on pauses). When audio sessions are
segmented (segment-level memory), a moment can stand for a segment; everything downstream works on
moments, so only `AudioRecall` changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from memory.clock import parse
from memory.protocols import Embedder, TokenCounter, approx_tokens
from memory.store import Store, Turn

from .clips import Clip, ClipStore
from .speakers import self_named
from .windows import Window


RELATIVE_SIM = 0.6


@dataclass
class AudioMoment:
    """Something heard. `score` is higher for more relevant moments (1.0 when no topic was asked)."""

    turn_ids: list[int]
    started_at: str
    ended_at: str
    text: str
    score: float = 1.0
    clips: list[Clip] = field(default_factory=list)
    session_id: int | None = None
    speaker: str | None = None      # a name the speaker gave themselves ("this is Maria")

    def to_dict(self) -> dict:
        return {"turn_ids": self.turn_ids, "started_at": self.started_at, "ended_at": self.ended_at,
                "text": self.text, "score": round(self.score, 4), "speaker": self.speaker,
                "clips": [c.to_dict() for c in self.clips]}


class AudioRecall:
    """What was heard in a window: everything (spread evenly over the window when it does not fit the
    budget), or, for a topic, the best matches of the hybrid turn index (dense + BM25) in the window."""

    def __init__(self, store: Store, embedder: Embedder | None = None,
                 count_tokens: TokenCounter = approx_tokens, index_pending=None):
        self.store = store
        self.embedder = embedder
        self.count_tokens = count_tokens
        self.clips = ClipStore(store)
        self._index_pending = index_pending

    def count(self, window: Window) -> int:
        since, until = window.iso()
        return self.store.db.execute(
            "SELECT COUNT(*) FROM turns WHERE source = 'audio' AND created_at >= ? AND created_at < ?",
            [since, until]).fetchone()[0]

    def turns_in(self, window: Window) -> list[Turn]:
        since, until = window.iso()
        return self.store._turns("source = 'audio' AND created_at >= ? AND created_at < ?", [since, until],
                                 "ORDER BY created_at, id")

    def moments(self, window: Window, topic: str | None = None, *, budget_tokens: int = 1200,
                k: int = 60, min_similarity: float = 0.35) -> list[AudioMoment]:
        """Moments of the window in time order. With a topic: only those that match it, the best first
        in the budget (returned in time order); an empty list when nothing matches."""
        if topic and self.embedder is not None:
            picked = self._by_topic(window, topic, budget_tokens, k, min_similarity)
        else:
            picked = self._spread(window, budget_tokens)
        clips = self.clips.for_turns([t for m in picked for t in m.turn_ids])
        for m in picked:
            m.clips = [clips[t] for t in m.turn_ids if t in clips]
            if m.clips:
                m.ended_at = max(c.ended_at for c in m.clips)
        return sorted(picked, key=lambda m: (m.started_at, m.turn_ids[0]))

    def _by_topic(self, window: Window, topic: str, budget: int, k: int, min_sim: float) -> list[AudioMoment]:
        from memory.index import HybridIndex
        from memory.recall import TurnIndex

        if self._index_pending is not None:
            self._index_pending()
        else:
            TurnIndex(self.store, self.embedder).index_pending()
        since, until = window.iso()
        qv = self.embedder.embed([topic])[0]
        hits = HybridIndex(self.store, "turn").search(topic, qv, k, since=since, until=until, sources=["audio"])
        # A hit that shares no word with the topic must be close in meaning: near the best one and above
        # `min_sim` (MiniLM gives unrelated office talk 0.25-0.3 against "the printer", related 0.4-0.6).
        best = max((h.dense or 0.0 for h in hits), default=0.0)
        hits = [h for h in hits if h.bm25 is not None or (h.dense or 0.0) >= max(min_sim, RELATIVE_SIM * best)]
        turns = {t.id: t for t in self.store.turns_by_ids([h.id for h in hits])}
        out, used = [], 0
        for h in hits:
            t = turns.get(h.id)
            if t is None:
                continue
            cost = self.count_tokens(t.text) + 6
            if used + cost > budget:
                continue
            used += cost
            out.append(_moment(t, h.score))
        return out

    def _spread(self, window: Window, budget: int, buckets: int = 12) -> list[AudioMoment]:
        turns = self.turns_in(window)
        costs = [self.count_tokens(t.text) + 6 for t in turns]
        if sum(costs) <= budget:
            return [_moment(t) for t in turns]
        # Too much to read: take from every part of the window in turn, the longest utterances first.
        span = max((window.end - window.start).total_seconds(), 1.0)
        groups: list[list[int]] = [[] for _ in range(buckets)]
        for i, t in enumerate(turns):
            pos = (datetime.fromisoformat(t.created_at) - window.start).total_seconds() / span
            groups[min(buckets - 1, max(0, int(pos * buckets)))].append(i)
        for g in groups:
            g.sort(key=lambda i: -costs[i])
        chosen, used, progress = [], 0, True
        while progress:
            progress = False
            for g in groups:
                while g:
                    i = g.pop(0)
                    if used + costs[i] <= budget:
                        chosen.append(i)
                        used += costs[i]
                        progress = True
                        break
        return [_moment(turns[i]) for i in sorted(chosen)]


def _moment(t: Turn, score: float = 1.0) -> AudioMoment:
    return AudioMoment([t.id], t.created_at, t.created_at, t.text, score, session_id=t.session_id,
                       speaker=self_named(t.text))


def stretches(moments: list[AudioMoment], *, max_gap_s: float = 60.0, max_words: int = 150) -> list[AudioMoment]:
    """Moments (in time order) joined where they follow one another in one audio session, less than
    `max_gap_s` apart: what one speaker said, cut into clips on pauses. Someone naming themselves starts
    a new stretch, and the stretch is theirs."""
    out: list[AudioMoment] = []
    for m in moments:
        last = out[-1] if out else None
        if (last is not None and m.speaker is None and m.session_id == last.session_id
                and (parse(m.started_at) - parse(last.ended_at)).total_seconds() <= max_gap_s
                and len(last.text.split()) + len(m.text.split()) <= max_words):
            last.turn_ids += m.turn_ids
            last.clips += m.clips
            # A clip that ends without a stop before one that starts a sentence: the pause was its end.
            ends = last.text.rstrip()[-1:] in tuple(".!?,;:…") or not m.text.lstrip()[:1].isupper()
            last.text = f"{last.text.rstrip()}{'' if ends else '.'} {m.text.lstrip()}"
            last.ended_at = max(last.ended_at, m.ended_at)
            last.score = max(last.score, m.score)
        else:
            out.append(AudioMoment(list(m.turn_ids), m.started_at, m.ended_at, m.text, m.score, list(m.clips),
                                   m.session_id, m.speaker))
    return out
