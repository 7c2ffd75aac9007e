"""Which recalled memories earn their place in the chat's prompt.

Recall always returns its best candidates, however weak they are: a greeting recalls other greetings, and a
follow-up whose subject is already in the prompt fills the budget with what ranks next. Each memory shown
costs its tokens in every later prompt of the session, so the chat keeps only those that are close to the
message:
- a message with no content words beyond greetings, thanks and acknowledgements recalls nothing;
- a follow-up whose best memory the prompt already shows (most of its turns) is covered: nothing is added;
- a memory is kept when its closest text (its retrieval key or one of its turns) has a cosine similarity to
  the message of at least `MIN_SIMILARITY` (MiniLM vectors, as stored in the indexes).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .index import query_words

# Frozen on the LoCoMo dev questions (tests/bench/locomo_qa.py, "gated" conditions): see docs/benchmarks.md.
MIN_SIMILARITY = 0.30

# Words that carry no subject of their own (query_words already leaves out the usual stop words).
# A follow-up made only of these ("tell me more", "what do you think?") is about the conversation in the prompt.
PHATIC = frozenset("""hi hello hey hiya howdy yo morning afternoon evening night good great cool nice fine
ok okay k kk alright right sure yes yeah yep yup no nope nah thanks thank thx ty cheers bye goodbye later
see soon welcome please sorry lol haha hmm hm oh ah wow awesome perfect sounds got understood agreed
appreciate appreciated help helps helped helpful interesting indeed really much lot very well just also too
again tell say think mean know explain elaborate continue go going more else anything something""".split())


def calls_for_memory(text: str) -> bool:
    """Whether a message names anything memory could help with (a content word that is not phatic)."""
    return any(w not in PHATIC for w in query_words(text))


def covered(recall, text: str, shown: set[int], ignore: set[int] = frozenset()) -> bool:
    """Whether the best memory recall finds for `text`, looking at everything but the turns in `ignore` (the
    message itself), is one whose turns the prompt mostly shows already (`shown`: turn ids): a follow-up on
    what the conversation is about."""
    if not shown:
        return False
    for ids in _best_first(recall, text):
        ids = set(ids) - ignore
        if ids:
            return 2 * len(ids & shown) >= len(ids)
    return False


def _best_first(recall, text: str):
    """The turn ids of each memory recall finds for `text`, best first, with nothing left out."""
    if callable(getattr(recall, "rank", None)):          # segment recall: its ranking alone, no packing
        ranked = recall.rank(text, 10)
        segs = recall.segments.get([c.id for c in ranked if c.kind == "segment"])
        for c in ranked:
            if c.kind != "segment":
                yield [c.id]
            elif c.id in segs:
                yield segs[c.id].turn_ids
    else:
        for m in recall.search(text, 10 ** 6, k=5):
            yield m.turn_ids or [m.id]


def closeness(query_vec: np.ndarray, memories: Sequence, segment_vectors=None, turn_vectors=None) -> list[float]:
    """For each memory, the highest cosine similarity between the message and the memory's key or any of its
    turns (higher is closer); 0.0 where no vector is stored. `*_vectors` are the indexes' VectorIndex."""
    seg_ids = [m.id for m in memories if m.kind == "segment"]
    turn_ids = sorted({t for m in memories for t in (m.turn_ids or ([m.id] if m.kind == "turn" else []))})
    keys = segment_vectors.get(seg_ids) if segment_vectors is not None and seg_ids else {}
    turns = turn_vectors.get(turn_ids) if turn_vectors is not None and turn_ids else {}
    q = np.asarray(query_vec, dtype=np.float32)
    out = []
    for m in memories:
        vecs = [turns[t] for t in (m.turn_ids or [m.id]) if t in turns]
        if m.kind == "segment" and m.id in keys:
            vecs.append(keys[m.id])
        out.append(max((_cosine(q, v) for v in vecs), default=0.0))
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    n = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / n if n else 0.0


def vector_indexes(recall):
    """(segment VectorIndex or None, turn VectorIndex or None) of a recall (SegmentRecall or TurnRecall)."""
    bank = getattr(recall, "bank", None)
    segment = getattr(getattr(bank, "index", None), "vectors", None)
    turns = getattr(recall, "turn_index", None) or getattr(recall, "index", None)
    return segment, getattr(turns, "vectors", None)


def earning(recall, text: str, memories: list, min_similarity: float = MIN_SIMILARITY) -> list:
    """The memories (in their order) close enough to the message `text` to be shown with it."""
    if not memories:
        return []
    if not calls_for_memory(text):
        return []
    query_vec = recall.embedder.embed([text])[0]
    sims = closeness(query_vec, memories, *vector_indexes(recall))
    return [m for m, s in zip(memories, sims) if s >= min_similarity]
