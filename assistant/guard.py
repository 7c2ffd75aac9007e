"""What an answer may hold: never a copy of the prompt's memory block nor invented turns of dialogue.

The default model, shown memories as "User: ... / Assistant: ..." lines between <memories> tags, sometimes
answered by copying the block and going on with made-up lines ("User: My brother Tom works as a nurse ...
Assistant: I started learning the cello last week ..."); stored, those words came back as memories. An
answer therefore ends where such a copy begins: at "<memories" or "</memories" anywhere, and at a line that
opens with a speaker label of the memory block, unless that line is inside a fenced code block (a prompt
template in code may well say "User: {question}"). The engines are given the tags as stop strings
(`STOP_STRINGS`), so that generation stops there; `Guard` applies the whole rule to whatever an engine
streams, holding back the few characters that could still begin a stop, so that what is shown is exactly
what is stored, and closes the engine's stream at a stop.

An answer that begins with the note a message without memories carries (NO_MEMORIES, "no new
memories for this message": the default model sometimes answered with just that) is such a copy too.

An answer that only repeats the user's message ("My dog is called Biscuit." to "My dog is called Biscuit.":
the default model does that to many plain statements) is no answer either: `Guard(echo=message)` holds an
answer back while it still reads as the message's beginning, and drops it when it ends that way.

An answer that would be empty because it began with such a copy is asked again once with its first token
kept off what began it (`avoid`), and if that is empty too, `FALLBACK` is the answer.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator

# The note a message without memories carries in the prompt (assistant/prompts.py renders it): kept here, as
# what an answer must not begin with, so that prompts imports the guard and not the other way round.
NO_MEMORIES = "no new memories for this message"

# The speaker labels of the memory block and of the chat's own turns ("Assistant (" covers the label of the
# assistant's own earlier replies, prompts.OWN_LABEL, and its variants).
LABELS = ("User:", "Assistant:", "Assistant (")
TAGS = ("<memories", "</memories")
# Stop strings for an engine: the tags only; a label stops an answer only outside code, which a literal stop
# string cannot tell, so the Guard stops the stream there itself.
STOP_STRINGS = list(TAGS)

_TAG = re.compile("|".join(re.escape(t) for t in TAGS))
_LABEL = re.compile(r"(?:^|\n)[ \t]*(?:" + "|".join(re.escape(l) for l in LABELS) + ")")
_FENCE = re.compile(r"(?:^|\n)[ \t]*(?:```|~~~)")

_NOTE = re.compile(r"\s*" + re.escape(NO_MEMORIES), re.IGNORECASE)   # only where the answer begins

FALLBACK = "Sorry, I could not put an answer together for that; please ask me again in other words."


def cut(text: str) -> tuple[int, int | None]:
    """(how much of `text` may be shown now, where the answer ends or None). The answer ends before the
    first stop; without one, what could still begin a stop at the end of `text` is held back."""
    if _NOTE.match(text):
        return 0, 0
    stops = [m.start() for m in (_TAG.search(text), _first_label_outside_code(text)) if m is not None]
    if stops:
        return min(stops), min(stops)
    if NO_MEMORIES.startswith(text.lstrip().lower()):    # "No new mem..." may become the note
        return 0, None
    hold = len(text)
    for tag in TAGS:                               # "<mem" at the end may become "<memories"
        for k in range(min(len(tag) - 1, len(text)), 0, -1):
            if text.endswith(tag[:k]):
                hold = min(hold, len(text) - k)
                break
    line_start = text.rfind("\n") + 1               # the last line may become a speaker label
    line = text[line_start:].lstrip(" \t")
    if any(label.startswith(line) for label in LABELS) and not _in_code(text, line_start):
        hold = min(hold, max(0, line_start - 1))
    return hold, None


def _in_code(text: str, at: int) -> bool:
    """Whether position `at` is inside a fenced code block (after an odd number of fence lines)."""
    return len(_FENCE.findall(text, 0, at)) % 2 == 1


def _first_label_outside_code(text: str) -> re.Match | None:
    for m in _LABEL.finditer(text):
        if not _in_code(text, m.start()):
            return m
    return None


# The model naming its own turn where its answer begins ("Assistant (you): I understand."): the label is
# dropped and the answer kept. Anywhere else a label still ends the answer.
_OWN_START = re.compile(r"\s*Assistant(?:[ \t]*\([^)\n]{0,40}\))?[ \t]*:[ \t]*")
_OWN_LONGEST = 60       # an opening this long that is no label yet is taken as the answer's beginning


def _own_label(text: str) -> int | None:
    """How much of `text` (an answer's beginning) is its own label to drop: 0 for none, None while it may
    still become one."""
    m = _OWN_START.match(text)
    if m is not None:
        return m.end() if m.end() < len(text) else None    # the spaces after it may still come
    head = text.lstrip()
    if "\n" not in head and len(head) < _OWN_LONGEST and (
            "Assistant".startswith(head) or re.fullmatch(r"Assistant[ \t]*(\([^)\n]*\)?)?[ \t]*", head)):
        return None
    return 0


def _plain(text: str) -> str:
    """Words only, lower-case: how an echo of the user's message is recognised."""
    return " ".join(re.findall(r"\w+", text.lower()))


ECHO_SHARE = 0.5    # an answer that ends as the first half (or more) of the user's message only repeats it


class Guard:
    """Filters a stream of answer pieces by `cut`: yields what may be shown, and stops at a stop. With
    `echo` (the user's message), an answer that only repeats it is dropped (see the module's description)."""

    def __init__(self, echo: str = ""):
        self.raw = ""             # everything the engine gave
        self.skip: int | None = None   # the own label at its beginning, dropped (None: not decided yet)
        self.shown = 0            # how much of the answer (`text`) was yielded
        self.stopped_at: int | None = None
        self.echo = _plain(echo)  # '' once the answer says something else
        self.echoed = False       # the answer only repeated the message (and was dropped)

    def _echoing(self) -> bool:
        """Whether the answer so far still reads as the beginning of the user's message."""
        if self.echo and not self.echo.startswith(_plain(self.text)):
            self.echo = ""
        return bool(self.echo)

    @property
    def text(self) -> str:
        """The answer: what the engine gave, without an own label at its beginning."""
        return self.raw[self.skip or 0:]

    def filter(self, pieces: Iterable[str]) -> Iterator[str]:
        for piece in pieces:
            self.raw += piece
            if self.skip is None:
                self.skip = _own_label(self.raw)
                if self.skip is None:
                    continue
            show, stop = cut(self.text)
            if stop is None and self.shown == 0 and self._echoing():
                continue                   # nothing shown while it may only repeat the message
            if show > self.shown:
                yield self.text[self.shown:show]
                self.shown = show
            if stop is not None:
                self.stopped_at = stop
                close = getattr(pieces, "close", None)
                if close is not None:      # the engine stops now (and lets go of the model)
                    close()
                return
        # the end: what was held back is shown, unless it is only the beginning of a tag ("<mem")
        if self.skip is None:            # it ended while it was, or might have become, a label
            m = _OWN_START.match(self.raw)
            self.skip = m.end() if m is not None else 0
            show, stop = cut(self.text)
            if stop is not None:
                self.stopped_at = stop
                return
        if self.shown == 0 and self._echoing() and len(_plain(self.text)) >= ECHO_SHARE * len(self.echo):
            self.stopped_at, self.echoed = 0, True   # it only repeated the message: no answer (asked again)
            return
        rest = self.text[self.shown:]
        if rest and not any(tag.startswith(rest.strip()) for tag in TAGS if rest.strip()):
            yield rest
            self.shown = len(self.text)

    @property
    def copied(self) -> str:
        """What the answer began with when it was cut before anything was shown ('' otherwise)."""
        if self.stopped_at is None or self.text[:self.stopped_at].strip():
            return ""
        return self.text[self.stopped_at:].lstrip()


def avoid(copied: str) -> list[str]:
    """The starts an answer that began with `copied` must not begin with again."""
    starts = [s for s in (*TAGS, *LABELS) if copied.startswith(s)]
    return starts or ([copied.split()[0]] if copied.split() else [])
