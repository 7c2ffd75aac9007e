"""Who spoke, where a speaker named themselves ("Hi all, this is Maria from accounting" -> Maria).

There is one microphone and no diarization: a name is known only from a self-introduction near the
start of a sentence, as speech recognition writes it (a capitalized word).
"""
from __future__ import annotations

import re

_NAME = r"(?P<{}>[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?(?:\s+[A-Z][a-z]+)?)(?![\w'’])"
_INTRO = re.compile(
    r"^(?:(?i:hi|hello|hey|morning|good\s+(?:morning|afternoon|evening)|yes|yeah|ok|okay|so|well|sorry)"
    r"(?:\s+(?i:everyone|everybody|all|team|there|guys|folks))?[,!.]?\s+)?"
    r"(?:(?i:this\s+is|my\s+name\s+is|my\s+name's|i\s+am|i'm|it's)\s+" + _NAME.format("a") + r"|"
    + _NAME.format("b") + r"\s+(?i:here|speaking)\b)")
# Capitalized words that follow "it's" or "I'm" without being a name.
_NOT_NAMES = set("""I OK Okay Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March
April May June July August September October November December English Christmas Easter Today Tomorrow
Yesterday Not Sorry Just Also Here There The This That Back Done Fine Good Great Sure Really Very""".split())
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")


def self_named(text: str) -> str | None:
    """The name a speaker gives themselves at the start of a sentence of `text`, or None."""
    for sentence in _SENTENCE.findall(text):
        m = _INTRO.match(sentence.strip())
        if m:
            name = m.group("a") or m.group("b")
            name = " ".join(w for w in name.split() if w not in _NOT_NAMES)
            if name and name.split()[0] not in _NOT_NAMES:
                return name
    return None
