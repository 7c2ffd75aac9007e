"""Chat commands, a route (assistant/routes.py): `/remember TEXT` pins a fact; `/forget ...` shows what would go
and forgets it after the user answers "yes"; `/help` lists them. Neither the command nor its answer is stored
as a turn: a conversation that says "/forget Daniel" must not keep "Daniel".

    /forget PHRASE            every turn that holds the phrase
    /forget memory ID         one memory (as `assistant memory search` lists them)
    /forget session ID        a whole session
    /remember TEXT            a fact kept in every prompt (`assistant memory pins` lists them)
    /help (/?, /commands)     the list of commands

A message that begins with a request to forget in words ("Please forget that my friend Sam has cats.", "can
you forget about Sam?") is taken as `/forget` when something matches; when nothing does, it is chat ("Forget
it, let's talk about dinner"). A message that begins with "/" and a word that is no command ("/forgt cello")
is answered with the list of commands, and neither stored nor sent to the model: a typo must not bring back
what was forgotten. "/usr/bin is full" (a path) is chat.
"""
from __future__ import annotations

import difflib
import re
import threading
from typing import Iterator

from memory.edits import remember
from memory.errors import MemoryError_
from memory.forget import ForgetPlan, forget, plan_forget
from memory.segmenter import STOPWORDS

from .core import PreparedTurn

YES = {"yes", "y", "yes please", "go ahead", "do it"}
NO = {"no", "n", "cancel", "stop", "don't", "no thanks"}
HELP_FORGET = ("Say what to forget: /forget followed by words (every turn that holds them), "
               "/forget memory ID or /forget session ID.")
HELP = ("Chat commands (neither they nor their answers are kept in the conversation):\n\n"
        "- `/forget WORDS`: forget every turn that holds the words; it asks first (\"forget ...\" in words "
        "works too)\n"
        "- `/forget memory ID`: forget one memory (F3 or `assistant memory search` shows them)\n"
        "- `/forget session ID`: forget a whole conversation\n"
        "- `/remember FACT`: keep a fact in mind in every chat\n"
        "- `/help`: this list\n\n"
        "F1 shows the keys.")
COMMANDS = "Commands: /forget, /remember, /help."
HELP_NAMES = {"help", "commands", "?"}
SUGGESTED = ("forget", "remember", "help")


# the general words after "forget" that name nothing to forget: "things", "something I said"
GENERAL = r"things|stuff|anything|(?:something|what) I (?:say|said|tell you|told you)|something"
# asking whether forgetting is possible at all: "Can you forget things?", "Do you ever forget anything?"
CAN_YOU_FORGET = re.compile(rf"^(?:can|could|will|would|do)\s+you\s+(?:ever\s+|really\s+)?forget\s+(?:{GENERAL})"
                            r"\s*\?*$", re.I)
HOW_TO_FORGET = ("Yes, when you ask me to: /forget followed by words forgets every turn that holds them (\"forget "
                 "...\" in words works too), /forget memory ID one memory, /forget session ID a whole conversation. "
                 "I show what would go and ask first. F3 (memory) and ctrl+s then d (a conversation) forget too.")
NOTHING_HINT = "Try fewer or other words, or find it first in the memory screen (F3)."

# what `/forget` takes besides words: "memory 12", "session 3"
BY_ID = re.compile(r"^(memory|session)\s+(\d+)$", re.I)
# "/word" at the very start, letters only (a colon or a stop may follow), then a space or the end: a command,
# known or not ("/usr/bin is full" is not)
COMMAND = re.compile(r"^/([a-z]+|\?)[:,.!?]*(?=\s|$)\s*(.*)$", re.I | re.S)
# a message that begins with a request to forget: "forget ...", "please forget ...", "can you forget ..."
ASKED_TO_FORGET = re.compile(
    r"^(?P<asked>please[,\s]+|(?:can|could|would|will)\s+you\s+(?:please\s+)?)?(?:please\s+)?forget\s+(.+?)"
    r"(?:,?\s+please)?[\s.!?]*$", re.I | re.S)
# what follows "forget" that names nothing: "forget it", "forget that, ...", "forget everything.", and the
# general words of a question about forgetting ("Can you forget things?", "... something I said?")
VAGUE = re.compile(rf"^(?:it|this|that|them|everything|all|{GENERAL}|(?:my |your )?memor(?:y|ies))(?:\s*[,;:.!?-]|$)",
                   re.I)


INCOGNITO_REMEMBER = ("Nothing is kept from an incognito chat, so this fact was not pinned. Leave incognito "
                      "(ctrl+g) and say /remember again to keep it.")


def _reply(session_id, text: str, plan: ForgetPlan | None = None) -> PreparedTurn:
    def produce(_model, _cancel) -> Iterator[str]:
        yield text
    return PreparedTurn(session_id, None, [], [], [], 0.0, produce=produce, stored=False, forget_plan=plan)


def _question(plan: ForgetPlan) -> str:
    """The confirmation: what goes, counted (the first paragraph), and the opening words of the first turns
    that go."""
    preview = "".join(f"- {line}\n" for line in plan.preview())
    return (f"{plan.describe()}\n\n{preview}\n" if preview else f"{plan.describe()} ") + \
        "It cannot be undone. Forget it? Answer yes or no."


class ChatCommands:
    """The route for chat commands. Holds, per session, a /forget plan waiting for its "yes"."""

    def __init__(self):
        self.waiting: dict[object, ForgetPlan] = {}
        self._lock = threading.Lock()

    def __call__(self, assistant, session_id, text: str) -> PreparedTurn | None:
        said = " ".join(text.split())
        with self._lock:
            plan = self.waiting.pop(session_id, None)
        if plan is not None:
            answer = said.lower().rstrip(".!")
            if answer in YES:
                forget(assistant.store, plan)
                return _reply(session_id, plan.describe(), plan)
            if answer in NO:
                return _reply(session_id, "Nothing was forgotten.")
            # anything else: the question is dropped and the message is answered as usual
        m = COMMAND.match(said)
        if not m and CAN_YOU_FORGET.match(said):
            return _reply(session_id, HOW_TO_FORGET)
        if not m:
            asked = ASKED_TO_FORGET.match(said)
            return self._forget_in_words(assistant, session_id, asked.group(2), bool(asked.group("asked"))) \
                if asked else None
        command, rest = m.group(1).lower(), m.group(2).strip()
        if command == "remember":
            if not rest:
                return _reply(session_id, "Say what to remember: /remember followed by the fact.")
            if assistant.incognito:
                return _reply(session_id, INCOGNITO_REMEMBER)
            pin_id = remember(assistant.store, rest)
            return _reply(session_id, f"I'll keep this in mind (pinned fact {pin_id}): {rest}")
        if command == "forget":
            return self._forget(assistant, session_id, rest)
        if command in HELP_NAMES:
            return _reply(session_id, HELP.replace("in every chat", "in every chat (not from an incognito one)")
                          if assistant.incognito else HELP)
        close = difflib.get_close_matches(command, SUGGESTED, n=1)
        return _reply(session_id, f"Unknown command /{m.group(1)}. {COMMANDS}" +
                      (f" Did you mean /{close[0]}?" if close else ""))

    def _plan(self, assistant, session_id, rest: str) -> ForgetPlan:
        """What forgetting `rest` (words, "memory ID" or "session ID") would delete; raises MemoryError_ or
        ValueError for an id that does not exist or nothing to go by."""
        by = BY_ID.match(rest)
        if by:
            kind, number = by.group(1).lower(), int(by.group(2))
            return plan_forget(assistant.store, **{"segment_id" if kind == "memory" else "session_id": number})
        plan = plan_forget(assistant.store, phrase=_topic(rest))
        if session_id in plan.session_ids:
            # the conversation going on stays (empty), so that the chat can go on in it
            plan.session_ids.remove(session_id)
            plan.touched_sessions.append(session_id)
        return plan

    def _ask(self, session_id, plan: ForgetPlan) -> PreparedTurn:
        with self._lock:
            self.waiting[session_id] = plan
        return _reply(session_id, _question(plan), plan)

    def _forget(self, assistant, session_id, rest: str) -> PreparedTurn:
        if not rest:
            return _reply(session_id, HELP_FORGET)
        try:
            plan = self._plan(assistant, session_id, rest)
        except (MemoryError_, ValueError) as e:
            return _reply(session_id, str(e))
        if plan.empty:
            return _reply(session_id, plan.describe() + ("" if BY_ID.match(rest) else " " + NOTHING_HINT))
        return self._ask(session_id, plan)

    def _forget_in_words(self, assistant, session_id, rest: str, asked: bool) -> PreparedTurn | None:
        """A message that begins with a request to forget: the /forget question when something matches, else
        None (the message is chat: "Forget it, let's talk about dinner"). A request made to the assistant
        ("can you forget ...", "please forget ...") that matches nothing is answered so, by the app: the model
        answered "Sure, I can forget that" and nothing was forgotten."""
        topic = _topic(rest)
        if VAGUE.match(topic) or not [w for w in re.findall(r"[\w']+", topic.lower()) if w not in STOPWORDS]:
            return None
        try:
            plan = self._plan(assistant, session_id, rest)
        except (MemoryError_, ValueError):
            return None
        if plan.empty:
            return _reply(session_id, f"{plan.describe()} {NOTHING_HINT}") if asked else None
        return self._ask(session_id, plan)


# the words that lead to what to forget: "that ...", "everything about ...", "what I said about ..."
_LEAD = re.compile(r"^(?:that|about|(?:everything|anything|all)\s+(?:about|on|with)|(?:what|everything|anything|all|"
                   r"the things?)\s+I(?:'ve|\s+have)?\s+(?:said|say|told you|tell you|mentioned|wrote)\s+"
                   r"(?:about|on|regarding))\s+", re.I)
# general words after it that name nothing: "the night shift thing"
_TAIL = re.compile(r"\s+(?:thing|things|stuff|business)$", re.I)


def _topic(rest: str) -> str:
    """What to forget, without the words that lead to it or trail after it: "that my friend Sam has cats" ->
    "my friend Sam has cats", "everything about Daniel" -> "Daniel", "what I said about my sister" -> "my
    sister", "the night shift thing" -> "the night shift" (a leading "the" or "my" is left to memory.forget),
    and without quotes."""
    rest = rest.strip()
    while True:
        shorter = _TAIL.sub("", _LEAD.sub("", rest))
        if shorter == rest:
            return rest.strip("\"'“”")
        rest = shorter
