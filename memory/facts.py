"""Facts: what a conversation's people said about themselves and others, in their own words, each tied to
the turn it came from.

A small model asked to summarize a chat mixes up who is who (the user's allergy given to the user's
sister), takes the assistant's suggestions for the user's plans, or pastes the transcript back; asked for
facts as JSON with the turn and the person (under a grammar), the 1.5B model copied each user turn whole,
questions included, with "who": "user" for all. So the memory's summaries are not written by the model:
they are *selected* from what people said.

- Sources: only turns of people. The user's chat turns, named speakers of imported conversations and
  what was heard in the room are sources; the assistant's turns never are.
- Candidates: the sentences of those turns (a clause with a subject of its own, after ", and", ", but"
  or ";", is a sentence of its own), minus questions, requests to the assistant, greetings and thanks,
  and sentences too short to stand alone. A request that comes with a fact is cut off and the fact stays
  ("I'm allergic to penicillin, so please keep that in mind." -> "I'm allergic to penicillin."); a
  correction is the fact it states ("Actually my dog is called Rex, not Max." -> "My dog is called Rex,
  not Max."), and the earlier fact of the same person that it takes back is not kept beside it. A
  sentence that opens with a pronoun ("She has ...") stays with the sentence before it, so that "she"
  keeps its name. What listening heard (speaker "Room") is heard in the room, not said by a "Room".
- Stored: one line a fact, the words as said after who said them ("User: I'm allergic to penicillin.",
  "Caroline: I started a new job.", "Heard in the room: ..."), the way recalled conversation lines look in
  the chat prompt. The subject of every fact is the one its speaker gave it: nobody's fact moves to
  someone else.
- Shown to the user (`for_user`, the journal): the user's lines in the second person ("You're allergic
  to penicillin."; "My sister Anna has a dentist appointment" -> "Your sister Anna has a dentist
  appointment"), the user's "you" (the assistant) as "the assistant"; other people's lines after their
  name, as they said them.
- When the facts do not fit their room, the least telling ones are dropped (`keep`): every fact kept is
  one somebody said, with its speaker; nothing is written, moved or invented.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from .store import Turn

USER = "User"
HEARD = "Heard in the room"
ROOM = "Room"          # the speaker of what listening heard (audio.clips.SPEAKER): not a person's name
_ABBREV = "".join(rf"(?<!\b{a}\.)" for a in ("Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "vs", "etc"))
_SPLIT = re.compile(_ABBREV + r"(?<=[.!?])[\"')\]]*\s+|\n+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")

# Words that carry no fact by themselves: a sentence made only of these is small talk.
_STOP = set("""a an the and or but so if then than to of in on at by for with from about as into over
after before up down out off again just also too very really quite pretty i i'm i've i'll i'd me my mine
myself we we're we've our ours us you you're your yours it it's its this that these those there here is
am are was were be been being do does did have has had will would can could should shall may might must
not no yes yeah yep ok okay oh ah well hi hello hey thanks thank please sure great good nice cool
awesome wow lol haha fine alright right sounds sound lovely glad happy sorry bye goodbye see later
what which who how why when where let let's love like idea one thing things lot bit kind agree totally
absolutely definitely exactly true mean means hope guess nope indeed truly super amazing incredible
wonderful fantastic beautiful sweet proud appreciate excited such much more most all any some still even
always ever that's there's here's what's it'll that'll yup gonna wanna""".split())

_GREETING = re.compile(r"^(hi|hello|hey|good (morning|afternoon|evening|night)|thanks|thank you|bye|"
                       r"goodbye|see you|ok|okay|sure|yes|no|yeah|great|cool|nice|wow)\b", re.I)
# Reactions to what the other one said, however long.
_REACTION = re.compile(r"^(congratulations|congrats|good luck|well done|(sorry|glad|happy) to hear)\b", re.I)
# Requests to the assistant, not statements about anyone.
_REQUEST = re.compile(r"^(please|can you|could you|would you|will you|tell me|help me|give me|show me|"
                      r"remind me|suggest|recommend|explain|write|list|find|let me know)\b", re.I)
_PRONOUN_START = re.compile(r"^(she|he|they|it|his|her|their|its|this|that|there)\b", re.I)
_FILLERS = re.compile(r",?\s*\b(as you know|you know|you see|mind you|thank you)\b,?", re.I)

# The user's first person becomes the second person; the user's "you" (the assistant) is named.
_TO_ASSISTANT = {"you": "the assistant", "your": "the assistant's", "yours": "the assistant's",
                 "yourself": "the assistant", "you're": "the assistant is", "you've": "the assistant has",
                 "you'll": "the assistant will", "you'd": "the assistant would"}
_TO_USER = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself", "i'm": "you're",
            "i've": "you've", "i'll": "you'll", "i'd": "you'd", "we": "you", "us": "you", "our": "your",
            "ours": "yours", "ourselves": "yourselves", "we're": "you're", "we've": "you've",
            "we'll": "you'll", "we'd": "you'd"}
_AFTER_I = {"am": "are", "was": "were", "wasn't": "weren't"}
_TOKEN = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?")


@dataclass
class Fact:
    """One statement a person made, as the memory shows it."""

    turn_id: int
    speaker: str            # USER, a speaker's name, or HEARD
    said: str               # the words as said (one sentence, or two when the second needs the first)

    @property
    def line(self) -> str:
        """The fact as stored: "Speaker: words"."""
        return f"{self.speaker}: {self.said}"


def speaker_of(turn: Turn) -> str | None:
    """Who said `turn`: USER, a name, HEARD (room audio with no name), or None for the assistant, whose
    words are never a source of facts."""
    name = (turn.speaker or "").strip()
    if name.lower() == "assistant" or (turn.role == "assistant" and not name):
        return None
    if turn.source == "audio" and name in ("", ROOM):
        return HEARD
    if name and name.lower() != "user":
        return name
    return HEARD if turn.source == "audio" else USER


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SPLIT.split(text.strip()) if s and s.strip()]


# Words a request often starts with before its verb: "Sure, and please suggest ..."
_LEAD = re.compile(r"^(?:(?:sure|ok|okay|yes|yeah|well|so|and|also|oh|alright|right|now|then)\b[,!]?\s*)+",
                   re.I)


def is_statement(sentence: str) -> bool:
    """A sentence that can carry a fact: not a question, request, greeting or bare reaction."""
    s = sentence.strip().strip("\"'“”")
    words = [w.lower().replace("’", "'") for w in _WORD.findall(s)]
    if len(words) < 2 or s.endswith("?"):
        return False
    if _GREETING.match(s) and len(words) <= 4:
        return False
    s = _LEAD.sub("", s)
    if _REQUEST.match(s) or _REACTION.match(s) or re.search(r"\bplease\b", s, re.I):
        return False
    return any(len(w) >= 3 and w not in _STOP for w in words)


# A fact followed by a request to the assistant in the same sentence ("I'm allergic to penicillin, so please
# keep that in mind."): the request is cut off and the fact stays. The request starts at a clause boundary
# (a comma, "so", "and", a dash) with "please", a plea to remember ("keep that in mind"), or a question
# to the assistant ("..., can you suggest a safe antibiotic?"); at least two words must stay.
_BOUNDARY = r"(?:\s*[,;:]\s*(?:(?:so|and|but|then)\s+)?|\s+(?:so|and|but|then)\s+|\s*[-–—]+\s*)"
_PLEA = (r"(?:(?:can|could|would|will)\s+you\s+)?(?:please\b.*|kindly\b.*|"
         r"(?:(?:remember|note|don'?t forget|do not forget)\s+(?:that|this|it)|(?:keep|bear)\s+(?:that|this|it)\s+"
         r"in\s+mind|make\s+a\s+note(?:\s+of\s+(?:that|this|it))?)\s*[.!?]*)$")
_ASKED = r"(?:can|could|would|will)\s+you\b[^?]*\?+$"
_REQUEST_TAIL = re.compile(_BOUNDARY + r"(?:" + _PLEA + r"|" + _ASKED + r")", re.I)
# "Please remember that my dentist is Dr. Brooks." / "Can you note that ...?": the fact is what follows.
_REQUEST_HEAD = re.compile(r"^(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?|please\s+)(?:remember|note|"
                           r"keep\s+in\s+mind|bear\s+in\s+mind|don'?t\s+forget|do\s+not\s+forget|make\s+a\s+"
                           r"note)(?:\s+that\b|\s*[:,])\s*(?P<fact>.+?)\s*[.!?]*$", re.I)


def without_request(sentence: str) -> str:
    """`sentence` without a request to the assistant that comes with its fact: "I'm allergic to
    penicillin, so please keep that in mind." -> "I'm allergic to penicillin."; "Please remember that my
    dentist is Dr. Brooks." -> "My dentist is Dr. Brooks.". A sentence that is only a request ("Please write
    a function ...") is returned as it is (`is_statement` leaves it out)."""
    s = sentence.strip()
    m = _REQUEST_HEAD.match(s)
    if m and len(_WORD.findall(m.group("fact"))) >= 3:
        fact = m.group("fact")
        return fact[0].upper() + fact[1:] + "."
    m = _REQUEST_TAIL.search(s)
    if m and len(_WORD.findall(s[:m.start()])) >= 2:
        return s[:m.start()].rstrip(" ,;:-–—") + "."
    return s


def trim_requests(text: str) -> str:
    """Every sentence of `text` without the request that comes with its fact (see `without_request`)."""
    return " ".join(without_request(s) for s in sentences(text))


# A correction says the fact again after "Actually", "No, actually", "Sorry, I meant": the fact is kept
# without those words (its ", not Max" stays: it says what the fact replaces).
_CORRECTION = re.compile(r"^(?:(?:no|oh|well|sorry|oops|wait|hmm)[,!]\s+)*(?:(?:actually|in fact|correction)\b[,:]?"
                         r"|I\s+meant\b[,:]?)\s+(?=\S)", re.I)
_TAKES_BACK = re.compile(r",\s*not\s+(?:the\s+|a\s+|an\s+|my\s+|our\s+)?(?P<old>[\w'’-]+(?:\s+[A-Z][\w'’-]*)?)"
                         r"\s*[.!]*$")


def without_correction(sentence: str) -> str:
    """A correction as the fact it states: "Actually my dog is called Rex, not Max." -> "My dog is called
    Rex, not Max."."""
    s = _CORRECTION.sub("", sentence.strip(), count=1)
    return s[:1].upper() + s[1:] if s != sentence.strip() else s


def _content(text: str) -> set[str]:
    return {w for w in (x.lower().replace("’", "'") for x in _WORD.findall(text)) if len(w) >= 3 and w not in _STOP}


def taken_back(earlier: str, correction: str) -> bool:
    """Whether `correction` ("My dog is called Rex, not Max.") takes back `earlier` ("I have a golden
    retriever called Max."): the earlier one says what the correction replaces where the correction puts
    the new word ("called Max" for "called Rex"), shares a word with it besides, and is not itself a
    correction. "My friend Max has a dog" is not taken back; nor is "I love dogs and cats" by "I have
    two cats, not dogs"."""
    m = _TAKES_BACK.search(correction)
    if not m or _TAKES_BACK.search(earlier):
        return False
    old, head = m.group("old"), correction[:m.start()]
    words = _TOKEN.findall(head)
    if len(words) < 2 or words[-1].lower() in old.lower().split():
        return False
    said = re.compile(r"(?<![\w'’])" + re.escape(words[-2]) + r"\s+" + re.escape(old) + r"(?![\w'’])", re.I)
    if not said.search(earlier) or re.search(r"\b" + re.escape(words[-1]) + r"\b", earlier):
        return False
    return bool((_content(earlier) & _content(head)) - _content(old))


def taken_back_by_later(said: Sequence[tuple[str, str]]) -> set[int]:
    """Indexes of the (speaker, words) pairs, in time order, that a later correction of the same speaker
    takes back (see `taken_back`): the running memory and the journal do not list them beside it."""
    corrections = [(j, who, words) for j, (who, words) in enumerate(said) if _TAKES_BACK.search(words)]
    return {i for i, (who, words) in enumerate(said)
            for j, by, fix in corrections if j > i and by == who and taken_back(words, fix)}


# ", but my brother Tom is ..." / "; I ...": a clause with a subject of its own is a fact of its own.
_VERB = (r"(?:is|are|was|were|has|have|had|will|would|can|could|does|did|works|lives|likes|loves|wants|"
         r"plans|got|gets|goes|went|moved|started|said|called|bought|needs|thinks|knows)")
_CLAUSE = re.compile(r"(?:,\s*(?:and|but|while|whereas|although|though)|;)\s+(?=(?:I|I'm|I've|I'll|I'd|we|"
                     r"we're|we've)\b|(?:[Mm]y|[Oo]ur|[A-Z][a-z]+)(?:\s+[A-Za-z']+){0,3}?\s+" + _VERB + r"\b)")


# "My sister is a pilot and I work as a nurse": "and"/"but" with no comma starts a clause of its own
# only after a clause that has its own verb ("Tom and I went" stays whole).
_AND_CLAUSE = re.compile(r"\s+(?:and|but)\s+(?=(?:I|I'm|I've|I'll|I'd|we|we're|we've)\s+[a-z]|"
                         r"(?:[Mm]y|[Oo]ur)(?:\s+[A-Za-z']+){1,3}?\s+" + _VERB + r"\b)")
_HAS_VERB = re.compile(r"\b(?:am|is|are|was|were|have|has|had|works?|lives?|likes?|loves?)\b", re.I)


def _split_and(part: str) -> list[str]:
    pieces = _AND_CLAUSE.split(part)
    out = [pieces[0]]
    for p in pieces[1:]:
        if _HAS_VERB.search(out[-1]):
            out.append(p)
        else:
            out[-1] = out[-1] + " and " + p
    return out


def clauses(sentence: str) -> list[str]:
    """A sentence cut where a clause with its own subject begins ("I'm allergic to penicillin, but my
    brother Tom is allergic to peanuts" -> two sentences), so that each fact is about one person."""
    parts = [q.strip() for p in _CLAUSE.split(sentence) for q in _split_and(p) if q.strip()]
    if len(parts) < 2:
        return [sentence]
    out = []
    for i, p in enumerate(parts):
        p = p[0].upper() + p[1:] if i else p
        out.append(p if p[-1] in ".!?" else p + ".")
    return out


def _vocatives(names: set[str]) -> Callable[[str], str]:
    """What strips the names of the people talking from where they are only called ("Hey Caroline, ...",
    "..., Mel!"): a call is not a fact. Names match by their first three letters ("Mel" for Melanie)."""
    stems = sorted({n[:3] for n in names if len(n) >= 3 and n[0].isupper()})
    if not stems:
        return lambda s: s
    name = r"(?:" + "|".join(map(re.escape, stems)) + r")[a-z]*"
    lead = re.compile(r"^(?:(?:hey|hi|hello|oh|wow|yeah|thanks|aw+)\s+)?" + name + r"\s*[,!]\s*", re.I)
    tail = re.compile(r",\s*" + name + r"\s*(?=[.!?]*$)")
    def uncall(s: str) -> str:
        s = tail.sub("", lead.sub("", s))
        return s[:1].upper() + s[1:]
    return uncall


def candidates(turns: Sequence[Turn], max_joined: int = 2) -> list[Fact]:
    """The statements of the people in `turns`, in order; the assistant's turns are skipped."""
    out: list[Fact] = []
    uncall = _vocatives({t.speaker.strip() for t in turns if t.speaker and t.speaker.strip()})
    for t in turns:
        who = speaker_of(t)
        if who is None or not t.text:
            continue
        prev: Fact | None = None
        joined = 0
        for s in [c for s in sentences(_FILLERS.sub("", t.text)) for c in clauses(uncall(s))]:
            s = without_correction(without_request(s))
            if not is_statement(s):
                prev = None
                continue
            if prev is not None and _PRONOUN_START.match(s) and joined < max_joined - 1:
                prev.said = f"{prev.said} {s}"      # "She ..." stays with the name it refers to
                joined += 1
                continue
            prev = Fact(t.id, who, s)
            joined = 0
            # an earlier fact that this one corrects ("..., not Max") is not kept beside it
            out = [f for f in out if f.speaker != who or not taken_back(f.said, s)]
            out.append(prev)
    return out


def to_second_person(sentence: str) -> str:
    """The user's sentence as the memory says it to the user: I/me/my -> you/you/your (we/us/our too),
    "I am" -> "you are", "I was" -> "you were"; the user's "you" is the assistant."""
    tokens = _TOKEN.split(sentence)
    words = _TOKEN.findall(sentence)
    out: list[str] = []
    prev_low = ""
    for w in words:
        low = w.lower().replace("’", "'")
        if low in _TO_ASSISTANT:
            new = _TO_ASSISTANT[low]
        elif w == "US":                              # the country, not "us"
            new = w
        elif low in _TO_USER:
            new = _TO_USER[low]
        elif low in _AFTER_I and prev_low in ("i", "we"):
            new = _AFTER_I[low]
        else:
            new = w
        out.append(new)
        prev_low = low
    text = "".join(t + (out[i] if i < len(out) else "") for i, t in enumerate(tokens))
    for i, ch in enumerate(text):             # the first letter upper-case, as a sentence starts
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1:]
    return text


def for_user(line: str) -> str:
    """A stored line as the user reads it: their own facts in the second person, others' after their
    name; a date in front stays."""
    date, speaker, words = split_line(line)
    text = to_second_person(words) if speaker == USER else (f"{speaker}: {words}" if speaker else words)
    return f"[{date}] {text}" if date else text


# -- choosing what to keep ------------------------------------------------------------------------------
# The 1.5B model cannot choose: asked for the numbers of the facts worth keeping it answered "1, 2, 3, 4, 5,
# 6" for every conversation, and its yes/no rating put "you're allergic to penicillin" among small talk.
# When facts do not fit, these cues decide instead; they only ever drop a fact, never change one.
_DATED = re.compile(r"\b\d+(?:st|nd|rd|th|am|pm)?\b(?!%)|\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|"
                    r"april|may|june|july|august|september|october|november|december|today|tonight|"
                    r"tomorrow|yesterday|weekend|next|last|birthday|anniversary|appointment)\b", re.I)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+")
_FIRST_PERSON = re.compile(r"\b(I|my|I'm|I've|we|our)\b")
_ADDRESS = re.compile(r"\b(you|your|you're|you've|you'll|yourself)\b", re.I)


def split_line(line: str) -> tuple[str, str, str]:
    """A memory line "[date] Speaker: words" as (date, speaker or "", words); missing parts are ""."""
    date, rest = "", line.strip()
    m = re.match(r"^\[([^\]]+)\]\s*", rest)
    if m:
        date, rest = m.group(1), rest[m.end():]
    m = re.match(r"^([A-Z][\w .'-]{0,40}):\s+", rest)
    if m:
        return date, m.group(1), rest[m.end():]
    return date, "", rest


def importance(line: str) -> int:
    """How much a memory line is worth keeping (higher is more): dates and numbers, names, a person
    speaking of themselves; less for words addressed to the other party (compliments, thanks)."""
    _, speaker, words = split_line(line)
    score = 2 * bool(_DATED.search(words))
    score += min(2, len({n for n in _NAME.findall(words) if n != "I"}))
    score += bool(_FIRST_PERSON.search(words))     # the speaker about themselves
    score -= 2 * bool(_ADDRESS.search(words))      # to whoever they talk to (the assistant, a friend)
    return score - words.rstrip().endswith("!")


def keep(lines: Sequence[str], groups: Sequence, max_words: int) -> list[int]:
    """Indexes of the lines to keep within `max_words`, in their order: every group (a session, a day)
    keeps its most important line before any keeps its second, the newest group first."""
    lengths = [len(line.split()) for line in lines]
    if sum(lengths) <= max_words:
        return list(range(len(lines)))
    by_group: dict = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    score = [importance(line) for line in lines]
    for g, members in list(by_group.items()):   # words addressed to someone go first when room is short
        by_group[g] = sorted((i for i in members if score[i] >= 0), key=lambda i: (-score[i], i))
        if not by_group[g]:
            del by_group[g]
    order: list[int] = []
    depth = 0
    while len(order) < sum(map(len, by_group.values())):
        for g in sorted(by_group, reverse=True):
            if depth < len(by_group[g]):
                order.append(by_group[g][depth])
        depth += 1
    kept: list[int] = []
    used = 0
    for i in order:
        if kept and used + lengths[i] > max_words:
            continue
        kept.append(i)
        used += lengths[i]
    return sorted(kept)
