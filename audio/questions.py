"""Questions about what was heard: is a message one ("what did I miss?", "anything happen while I was
at lunch?", "catch me up"), which window does it mean, and what is it about.

A message is such a question when it holds
- a question about the user's own absence ("what did I miss", "did I miss anything", "catch me up")
  with nothing after it but a time, a place, an absence or a topic ("... in the last hour",
  "... in the meeting", "... about the budget"): "did I miss a step in this recipe?" and "what did I
  miss in this code?" are not;
- a question about talk in the room ("did anyone say anything?", "who came by?"); or
- a question about events or talk ("what happened", "anything new", "what was said") together with an
  absence, a return, a place or a time ("while I was out", "I'm back", "at lunch", "this morning"):
  "what happened to the Roman empire?" is not. Such a question may also be about something the user
  told the assistant, so it is only a "maybe" (see `classify`).
"I miss my dog" is none of these.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Sequence

from .windows import Window, away_window, explicit_spans, parse_window

# Longer messages are not "what did I miss" questions even when a phrase matches (a pasted text that
# says "I missed the bus"): they go to ordinary recall.
MAX_QUESTION_WORDS = 40

_PLACE_WORDS = (r"(?:lunch|lunchtime|dinner|breakfast|coffee|(?:coffee\s+|lunch\s+)?break|meeting|standup|"
                r"stand-up|call|appointment|office|room|kitchen|class|lecture|seminar|talk|presentation|"
                r"workshop|all-hands|work|school|desk|gym|doctor'?s|dentist'?s|shops?|store)")
# The user was not there: "while I was away / out / at lunch / in the meeting", "since I left".
_AWAY = re.compile(
    r"\b(?:while|when|whilst|as)\s+i\s+(?:was|were|had\s+been|'d\s+been)\s+"
    r"(?:away|gone|out|outside|off|afk|asleep|sleeping|napping|offline|busy|not\s+(?:here|there|around|in)"
    r"|(?:at|in|on|having|getting|grabbing|taking|out\s+(?:at|for|to|on))\s+[^.!?,;]{1,30})"
    r"|\b(?:while|when|whilst)\s+i\s+(?:went|stepped|popped|nipped|ran|headed|slipped)\s+"
    r"(?:out|away|off|outside|over|down|to|for)\b[^.!?,;]{0,25}"
    r"|\bsince\s+i\s+(?:left|went\s+out|stepped\s+(?:out|away)|popped\s+out|got\s+up"
    r"|(?:was|'ve\s+been|have\s+been)\s+(?:away|gone|out|last\s+here))\b"
    r"|\bin\s+my\s+absence\b|\bwhile\s+(?:i\s+was\s+)?away\b", re.I)
# The user says they are back: "I'm back", "just got back", "back from lunch".
_BACK = re.compile(
    r"\b(?:i'?m|i\s+am|we'?re)\s+(?:back|home)\b|\b(?:just\s+)?(?:got|came|come|gotten)\s+back\b"
    r"|\bi'?ve\s+returned\b|\bi\s+returned\b|\bback\s+(?:now|again|from\s+[^.!?,;]{1,25})", re.I)
# Where the user was: "at lunch", "in the meeting", "since lunch", "during the call".
_PLACE = re.compile(
    r"\b(?:at|in|during|over|on|since|after|from)\s+(?:the\s+|my\s+|our\s+|a\s+|that\s+|this\s+(?:morning's\s+)?"
    r"|today's\s+)?(?:team\s+|weekly\s+|daily\s+|morning\s+|big\s+)?" + _PLACE_WORDS + r"\b", re.I)

# Asking what the user missed; may only be followed by a time, a place, an absence or a topic.
_SELF = re.compile(
    r"\bwhat(?:'ve|\s+have|\s+did)\s+i\s+(?:(?:have|'ve)\s+)?(?:miss|missed)\b"
    r"|\b(?:did|have|'ve)\s+i\s+(?:miss|missed)\s+(?:anything|something|much|a\s+lot|any\s+news)\b"
    r"|\b(?:anything|something|much)\s+(?:that\s+)?i(?:'ve|\s+have|\s+might\s+have|\s+may\s+have)?\s+missed\b"
    r"|\bwhat\s+i(?:'ve|\s+have)?\s+missed\b"
    r"|\bcatch\s+me\s+up\b|\bfill\s+me\s+in\b|\b(?:bring|get|keep|put)\s+me\s+up\s+to\s+(?:speed|date)\b"
    r"|\bgive\s+me\s+(?:a|the)\s+(?:recap|rundown|summary|update)\b", re.I)
# The end of a short question about visitors or callers ("did anyone call?", "... for me while I was out").
_END = (r"(?=\s*(?:[?.!,;]|$|(?:me|us|for\s+me|by|here|while|when|whilst|since|today|this|earlier|in\s+the|"
        r"at\s+the|during)\b))")
# Asking about talk or visitors in the room: clear on its own.
_ROOM = re.compile(
    r"\b(?:did|has|have)\s+(?:anyone|anybody|someone|somebody|people)\s+(?:(?:say|said)\s+(?:anything|something|"
    r"much|a\s+word)|mention(?:ed)?|talk(?:ed)?\s+about|ask(?:ed)?\s+(?:for|about|after)\s+me|"
    r"(?:come|came|stop|stopped|drop|dropped|pop|popped)\s+(?:by|in|round|over)|"
    r"(?:call(?:ed)?|ring|rang|visit(?:ed)?|knock(?:ed)?|phone[d]?)" + _END + r"|look(?:ed)?\s+for\s+me|"
    r"(?:leave|left)\s+(?:a|any)\s+(?:message|note)|been\s+(?:here|by|asking|looking)|announce(?:d)?)\b"
    r"|\bwas\s+(?:anyone|anybody|someone|somebody)\s+(?:here|by|around|asking|looking)\b"
    r"|\bwho\s+(?:(?:came|stopped|dropped|popped)\s+(?:by|in|round|over)|was\s+here|(?:called|rang|phoned|"
    r"visited)" + _END + r")"
    r"|\bwhat\s+did\s+you\s+(?:hear|overhear|pick\s+up)\b|\bdid\s+you\s+(?:hear|overhear|pick\s+up)\s+anything\b"
    r"|\bwhat\s+did\s+(?:people|everyone|everybody|anyone|anybody|the\s+others|folks)\s+"
    r"(?:say|talk|discuss|mention|decide)\b"
    r"|\bwhat\s+(?:were|was)\s+(?:people|everyone|everybody|folks)\s+(?:saying|talking|discussing)\b", re.I)
# Asking about events or talk: about the room only with an absence, a return, a place or a time.
_EVENT = re.compile(
    r"\bwhat(?:'s|\s+has|\s+have)?\s+(?:happened|happening|went\s+on|was\s+going\s+on|been\s+(?:going\s+on|"
    r"happening)|going\s+on|new)\b(?!\s+(?:to|with)\b)"
    r"|\bwhat\s+is\s+(?:going\s+on|happening|new)\b"
    r"|\b(?:did\s+)?anything\s+(?:happen|happened|new|interesting|important|exciting|going\s+on|said|worth|"
    r"i\s+should\s+know|to\s+report)\b"
    r"|\bany(?:thing)?\s+(?:news|updates?|visitors?|gossip)\b"
    r"|\b(?:what|anything|something)\s+(?:(?:was|got|has\s+been|have\s+been|were|did\s+they)\s+)?"
    r"(?:said|say|discussed|talked\s+about|mentioned|decided|announced)\b"
    r"|\bwhat\s+(?:were|was)\s+(?:they|people)\s+(?:saying|talking|discussing)\b"
    r"|\bwhat\s+did\s+(?:they|we)\s+(?:say|talk|discuss|mention|decide)\b"
    r"|\bwho\s+(?:spoke|talked|was\s+talking|said|came)\b", re.I)

# Words that may follow a question about what the user missed without changing its sense.
_ALLOWED = set("""anything something much a lot any important interesting new else here there in so far just now
then today lately recently earlier meanwhile guys everyone everybody folks please all really again yet exactly
at on what happened was were said going that you can could tell me us let know i if and or the around while
since back hey hi hello ok okay well oh sorry""".split())
_ABOUT = re.compile(r"\b(?:about|regarding|concerning|re|on\s+the\s+(?:subject|topic)\s+of|related\s+to)\s", re.I)
_TOPIC = re.compile(
    r"\b(?:about|regarding|concerning|re|on\s+the\s+(?:subject|topic)\s+of|related\s+to|"
    r"mention(?:ed|ing)?|discuss(?:ed|ing)?|br(?:ing|ought)\s+up|talk(?:ed|ing)?\s+about)\s+(?P<topic>[^.!?;]+)",
    re.I)
_TOPIC_ON = re.compile(r"\b(?:up|in|me|anything|news|updates?)\s+on\s+(?P<topic>[^.!?;]+)", re.I)
# Sentences; a dot between digits ("since 3.30") does not end one.
_SENTENCES = re.compile(r"(?:[^.!?;\n]|\.(?=\d))+[.!?;\n]*")


def _context_spans(text: str) -> list[tuple[int, int]]:
    """Where `text` says when or where: an absence, a return, a place or a time."""
    return [m.span() for rx in (_AWAY, _BACK, _PLACE) for m in rx.finditer(text)] + explicit_spans(text)


def _blank(text: str, spans) -> str:
    chars = list(text)
    for a, b in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars)


def _only_context_after(sentence: str, end: int, has_context: bool) -> bool:
    """After a question about what the user missed: only a time, place, absence, topic or filler words.
    "on X" is a topic only beside a time or place ("catch me up on the budget talk this morning"):
    alone, "catch me up on the plot of Dune" is ordinary chat."""
    rest = sentence[end:]
    rest = _blank(rest, _context_spans(rest))
    m = _ABOUT.search(rest)
    if m:
        rest = rest[:m.start()]
    elif has_context and (m := re.search(r"\bon\s", rest)):
        rest = rest[:m.start()]
    words = re.findall(r"[a-z0-9][\w'-]*", rest.lower())
    return all(w in _ALLOWED for w in words)


def classify(text: str) -> str | None:
    """"sure" for a question about what the user missed, about talk in the room or about events while
    the user was away ("what did I miss?", "did anyone say anything?", "what was said while I was
    gone?"); "maybe" for one about events with only a time or place ("what happened at lunch?": it
    may be about something the user told); None for anything else."""
    if len(text.split()) > MAX_QUESTION_WORDS:
        return None
    has_context = bool(_context_spans(text))
    absent = bool(_AWAY.search(text) or _BACK.search(text))
    maybe = False
    for sentence in _SENTENCES.findall(text):
        if _ROOM.search(sentence):
            return "sure"
        if any(_only_context_after(sentence, m.end(), has_context) for m in _SELF.finditer(sentence)):
            return "sure"
        if has_context and _EVENT.search(sentence):
            if absent:          # "what was said while I was gone?", "I'm back, anything new?"
                return "sure"
            maybe = True
    return "maybe" if maybe else None


def is_missed_question(text: str) -> bool:
    """Is this a question about what was heard while the user was not listening?"""
    return classify(text) is not None


def detect_window(text: str, now: datetime, activity: Sequence[datetime] = (), *,
                  min_gap: timedelta = timedelta(minutes=10)) -> Window | None:
    """The window of a "what did I miss" question, or None when `text` is not one.

    "While I was away", "I'm back" and questions that name no time mean the time since the user left
    (their last activity before the latest gap in `activity`, to now); otherwise the named time."""
    if not is_missed_question(text):
        return None
    if not (_AWAY.search(text) or _BACK.search(text)):
        w = parse_window(text, now)
        if w is not None:
            return w
    return away_window(activity, now, min_gap=min_gap)


# -- topic --------------------------------------------------------------------------------------------
_FILLER = _ALLOWED | set("""a an the anyone anybody someone somebody people they them he she it this those these
of for from to by with up be been is are am do does did done has have had get got hear heard say saying talk
talked talking who when where why how whether catch fill speed date miss missed missing my your our their
that's it's i'm i've mention mentioned discuss discussed decided matters stuff things thing""".split())


def extract_topic(text: str) -> str | None:
    """What the question is about ("the budget" in "what did I miss about the budget?"), or None.
    Only what follows "about", "regarding", "mention", "catch me up on" and the like is a topic."""
    for sentence in _SENTENCES.findall(text):
        m = _TOPIC.search(sentence) or _TOPIC_ON.search(sentence)
        if not m:
            continue
        start, end = m.span("topic")
        cuts = [a for a, _ in _context_spans(sentence) if start <= a < end]
        cuts += [start + x.start() for x in re.finditer(r"\s(?:while|when|since|during|before|after)\s",
                                                          sentence[start:end])]
        topic = sentence[start:min(cuts, default=end)]
        topic = re.sub(r"(?:[\s,?.!:;]|\b(?:from|in|at|on|during|of|for|to|and)\b)+$", "", topic).strip()
        if any(w.lower() not in _FILLER for w in re.findall(r"[A-Za-z0-9][\w'-]*", topic)):
            return topic
    return None
