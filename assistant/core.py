"""The Assistant: answers one turn — store, recall, prompt, stream, store — in that order."""
from __future__ import annotations

import inspect
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

from memory.attached import Attached, AttachedStore
from memory.edits import pinned_lines
from memory import relevance
from memory.recall import Memory
from memory.store import Store
from memory.store import title_from as _title_from  # (also used by the "what did I miss" route)
from memory.summaries import SummaryStore
from memory.timelines import TimelineContext, recall_with_timelines
from memory.timelines import refine as refine_timelines

from . import drafts, guard, layout, prompts
from .incognito import NOTICE as INCOGNITO_NOTICE, Scratch
from .config import Config
from .llm import ChatModel, GenerationStats

# The partial answer is written to disk at most this often while it streams.
FLUSH_SECONDS = 0.5


@dataclass
class Answer:
    session_id: int
    user_turn_id: int
    turn_id: int | None
    text: str
    interrupted: bool
    memories: list[Memory] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    stats: GenerationStats = field(default_factory=GenerationStats)
    recall_seconds: float = 0.0
    forget_plan: object | None = None   # as PreparedTurn.forget_plan


@dataclass
class _Composed:
    messages: list[dict]
    memories: list[Memory]
    attached: list[Attached]
    notices: list[str]
    recall_seconds: float
    timelines: TimelineContext | None


@dataclass
class PreparedTurn:
    session_id: int
    user_turn_id: int
    messages: list[dict]
    memories: list[Memory]
    notices: list[str]
    recall_seconds: float
    timelines: TimelineContext | None = None   # chains and history marks shown with the memories
    # Writes the answer instead of streaming `messages` through the model (a routed question, such as
    # "what did I miss"): called with a function that returns the model and the cancel event.
    produce: Callable[[Callable[[], ChatModel], threading.Event | None], Iterable[str]] | None = None
    # False: the answer is shown but not stored (a chat command such as /forget, an incognito chat)
    stored: bool = True
    # The memory.forget.ForgetPlan a /forget answer is about: the one it asks about (not `forgotten` yet;
    # the answer quotes its turns) or the one done (a view showing the conversation drops what went)
    forget_plan: object | None = None
    message: str = ""      # the user's words, so that an answer that only repeats them is known as no answer


# A route takes a message before the chat does (e.g. "what did I miss"): it returns the prepared turn
# when the message is its own (having stored it), else None. Routes are handed in by the wiring, so
# the core knows none of them.
Route = Callable[["Assistant", "int | None", str], "PreparedTurn | None"]


class Assistant:
    """Wires store, recall and model into answering a turn. The model may arrive later (`set_model`).
    `routes` are tried in order before a message is answered as chat. `incognito`: nothing of the chat is
    stored (its turns live in this process only; see assistant/incognito.py); routes still answer there, and
    keep what they would store in `scratch` or refuse."""

    def __init__(self, store: Store, recall, config: Config, model: ChatModel | None = None,
                 routes: Sequence[Route] = (), incognito: bool = False):
        self.store = store
        self.incognito = incognito
        self.scratch = Scratch() if incognito else None
        self.recall = recall
        self.config = config
        self.model = model
        self.routes = list(routes)
        self._model_ready = threading.Event()
        if model is not None:
            self._model_ready.set()
        self._model_error: BaseException | None = None
        self._compose_lock = threading.Lock()   # the answer and the look-ahead share one connection
        self._counts: dict[str, int] = {}
        self._drafted: dict[int | None, drafts.Drafted] = {}   # per session: the last draft evaluated ahead
        self.prefix_cache = None   # a PrefixCache: the beginning of every prompt, saved across processes

    # -- model lifecycle (the UI loads the model in the background) ---------------------------
    def set_model(self, model: ChatModel) -> None:
        self.model = model
        self._model_ready.set()

    def set_model_error(self, error: BaseException) -> None:
        self._model_error = error
        self._model_ready.set()

    def wait_for_model(self) -> ChatModel:
        self._model_ready.wait()
        if self.model is None:
            raise self._model_error or RuntimeError("no model")
        return self.model

    def count_tokens(self, text: str) -> int:
        if self.model is not None:
            return self.model.count_tokens(text)
        from memory.protocols import approx_tokens

        return approx_tokens(text)

    # -- the hot path ---------------------------------------------------------------------------
    def new_session(self, title: str | None = None) -> int:
        if self.scratch is not None:
            return self.scratch.new_session()
        return self.store.new_session(title=title)

    def turns(self, session_id: int) -> list:
        """A session's turns (an incognito one's from memory)."""
        return self.scratch.turns(session_id) if self.scratch is not None else self.store.turns(session_id)

    def _has_session(self, session_id: int) -> bool:
        return self.scratch.has(session_id) if self.scratch is not None else self.store.session(session_id) is not None

    def prepare(self, session_id: int | None, text: str) -> PreparedTurn:
        """Store the user's message (committed first), then recall and build the prompt."""
        for route in self.routes:     # in incognito too: a route stores nothing there (see `scratch`)
            routed = route(self, session_id, text)
            if routed is not None:
                return routed
        if self.scratch is not None:
            return self._prepare_incognito(session_id, text)
        with self._compose_lock:
            held = self._drafted.pop(session_id, None)     # what drafts of this message were evaluated with
            if session_id is None:
                session_id = self.new_session(title=_title_from(text))
            elif not (self.store.session(session_id) or None):
                from .errors import AssistantError

                raise AssistantError(f"There is no session {session_id}; list sessions with `assistant sessions`.")
            earlier = self.store.turns(session_id)
            user_turn_id = self.store.add_turn(session_id, "user", text)
            if self.store.session(session_id).title is None:
                self.store.set_title(session_id, _title_from(text))
        model = self.wait_for_model()
        with self._compose_lock:
            turn = self._compose(model, earlier, text, exclude={user_turn_id}, held=held)
            AttachedStore(self.store).add(user_turn_id, turn.attached)
        return PreparedTurn(session_id, user_turn_id, turn.messages, turn.memories, turn.notices,
                            turn.recall_seconds, turn.timelines, message=text)

    def _prepare_incognito(self, session_id: int | None, text: str) -> PreparedTurn:
        with self._compose_lock:
            held = self._drafted.pop(session_id, None)
            if session_id is None or not self.scratch.has(session_id):
                session_id = self.scratch.new_session()
            earlier = self.scratch.turns(session_id)
            user_turn_id = self.scratch.add_turn(session_id, "user", text)
        model = self.wait_for_model()
        with self._compose_lock:
            turn = self._compose(model, earlier, text, exclude=set(), held=held)
            self.scratch.attach(user_turn_id, turn.attached)
        return PreparedTurn(session_id, user_turn_id, turn.messages, turn.memories,
                            [INCOGNITO_NOTICE] + turn.notices, turn.recall_seconds, turn.timelines, stored=False,
                            message=text)

    def _compose(self, model: ChatModel, earlier: list, text: str, exclude: set[int],
                 held: drafts.Drafted | None = None) -> "_Composed":
        """The prompt for `text` after a session's `earlier` turns (see assistant/layout.py); `held`: what a
        draft of `text` was evaluated with, kept where it still fits (see assistant/drafts.py)."""
        count = self._counter(model)
        system, attached, limit, before = self._window(model, earlier)
        notices: list[str] = []

        t0 = time.perf_counter()
        # Segment hits grow into timelines at the same budget; no model call unless refinement is on. What
        # the window already shows is not recalled again, and only memories close to the message are kept.
        memories, timeline_ctx = [], TimelineContext()
        shown = before.turn_ids()
        # a greeting or a thanks recalls nothing, nor does a follow-up on what the window already shows
        if relevance.calls_for_memory(text) and not relevance.covered(self.recall, text, shown, exclude):
            memories, timeline_ctx = recall_with_timelines(
                self.recall, self.store, text, self.config.recall_budget_tokens, exclude_turn_ids=shown | exclude,
                keep=lambda found: relevance.earning(self.recall, text, found))
        recall_seconds = time.perf_counter() - t0
        refined = ""
        if self.config.timeline_refine and timeline_ctx.timelines:
            refined = refine_timelines(model, text, timeline_ctx.render())
        items = prompts.attachments(memories, timeline_ctx, refined)
        items, memories = drafts.grow(held, text, items, memories, self.config.recall_budget_tokens, count)

        room = limit - count(prompts.with_memories("", items)) - layout.MESSAGE_OVERHEAD
        user_text = text
        user_tokens = model.count_tokens(text)
        if user_tokens > room * 3 // 4:
            user_text = _trim_to_tokens(model, text, room * 3 // 4)
            notices.append(
                f"Your message has {user_tokens} tokens, more than fits the model's context; it is stored "
                f"whole, but only its first {room * 3 // 4} tokens were shown to the model.")
        new_content = prompts.with_memories(user_text, items)
        win = layout.window(earlier, attached, count, limit, self.config.recent_turns,
                            new_cost=count(new_content) + layout.MESSAGE_OVERHEAD)
        return _Composed(layout.messages(system, win, new_content), memories, items, notices, recall_seconds,
                         timeline_ctx)

    # -- ahead of the Enter key ------------------------------------------------------------------
    def warm(self, session_id: int | None = None) -> GenerationStats | None:
        """Evaluate now what the next prompt of `session_id` (None: a new session) begins with: the system
        message and the session's window. For a new session that beginning is loaded from the prefix cache,
        or saved there once evaluated. Gives way to an answer; None without a model that can do this."""
        return self.evaluate_ahead(self.ahead(session_id), cache=session_id is None)

    def prefetch(self, session_id: int | None, draft: str) -> GenerationStats | None:
        """Recall for a draft of the next message and evaluate the prompt it would get, storing nothing: if
        the message sent is the draft, only the answer is left to compute. Gives way to an answer."""
        return self.evaluate_ahead(self.ahead(session_id, draft))

    def ahead(self, session_id: int | None, draft: str | None = None) -> list[int] | None:
        """The tokens to evaluate ahead: the next prompt up to where a new message begins, or (with `draft`)
        the whole prompt for that draft. Reads the database (and recalls for a draft); no model call."""
        model = self.model
        if model is None or not callable(getattr(model, "warm", None)) or (draft is not None and not draft.strip()):
            return None
        with self._compose_lock:
            if session_id is not None and not self._has_session(session_id):
                return None
            earlier = self.turns(session_id) if session_id is not None else []
            if draft is not None:
                turn = self._compose(model, earlier, draft, exclude=set(), held=self._drafted.get(session_id))
                self._drafted[session_id] = drafts.Drafted(draft, turn.attached, turn.memories)
                return model.tokens(turn.messages)
            system, _, _, win = self._window(model, earlier)
        probe = layout.messages(system, win, "")
        return model.stable_tokens(probe, len(probe) - 1)

    def evaluate_ahead(self, tokens: list[int] | None, cache: bool = False,
                       cancel: threading.Event | None = None) -> GenerationStats | None:
        """Evaluate `tokens` into the model's chat cache (see `ahead`); with `cache`, through the prefix cache.
        Stops when `cancel` is set."""
        model = self.model
        if not tokens or model is None:
            return None
        store = self.prefix_cache if cache else None
        if store is not None and model.cached(tokens) < len(tokens) and store.load(model, tokens):
            return GenerationStats(prompt_tokens=len(tokens), reused_tokens=len(tokens))
        stats = model.warm(tokens=tokens, cancel=cancel)
        if store is not None and model.cached(tokens) == len(tokens):
            store.save(model, tokens)
        return stats

    def _window(self, model: ChatModel, earlier: list):
        """(system message, memories attached to `earlier` messages, the window's limit in tokens, the window
        over `earlier` turns before a new message)."""
        count = self._counter(model)
        system = prompts.chat_system_message(self.config.system_prompt, running=self._running(),
                                             pinned=self._pinned(count))
        limit = model.n_ctx - self.config.max_answer_tokens - count(system["content"]) - 16
        asked = [t.id for t in earlier if t.role == "user"]
        attached = (self.scratch.for_turns(asked) if self.scratch is not None
                    else AttachedStore(self.store).for_turns(asked))
        return system, attached, limit, layout.window(earlier, attached, count, limit, self.config.recent_turns)

    def _pinned(self, count: Callable[[str], int]) -> list[str]:
        """The pinned facts, within their own budget; they open the prompt with the running memory, so the
        prefix cache is keyed on them too."""
        budget = self.config.pinned_budget_tokens
        return pinned_lines(self.store, budget, count) if budget > 0 else []

    def _running(self) -> str | None:
        """The running memory; after a forget or a correction hid it, until consolidation folds it again, the
        latest version made before (it never saw what went: that version would be hidden too)."""
        summaries = SummaryStore(self.store)
        running = summaries.running() or summaries.running_base()
        return running.text if running else None

    def _counter(self, model: ChatModel) -> Callable[[str], int]:
        """Token counts of texts, remembered: the window is replayed over the whole session each turn."""
        def count(text: str) -> int:
            n = self._counts.get(text)
            if n is None:
                if len(self._counts) > 4096:
                    self._counts.clear()
                n = self._counts[text] = model.count_tokens(text)
            return n
        return count

    def answer(self, session_id: int | None, text: str, *,
               on_token: Callable[[str], None] | None = None,
               cancel: threading.Event | None = None) -> Answer:
        """Answer `text` in `session_id` (None starts a new session), streaming through `on_token`."""
        prep = self.prepare(session_id, text)
        return self.generate(prep, on_token=on_token, cancel=cancel)

    def generate(self, prep: PreparedTurn, *, on_token=None, cancel=None) -> Answer:
        model = self.wait_for_model() if prep.produce is None else None
        if not prep.stored:
            return self._generate_unstored(prep, model, on_token, cancel)
        turn_id = self.store.add_turn(prep.session_id, "assistant", "", status="streaming")
        pieces: list[str] = []
        last_flush = time.monotonic()
        status = "interrupted"
        if model is not None:
            source = self._guarded(model, prep.messages, cancel, prep.message)
        else:
            source = prep.produce(self.wait_for_model, cancel)
        try:
            for piece in source:
                pieces.append(piece)
                if on_token:
                    on_token(piece)
                if time.monotonic() - last_flush > FLUSH_SECONDS:
                    self.store.update_turn(turn_id, "".join(pieces))
                    last_flush = time.monotonic()
            status = "interrupted" if cancel is not None and cancel.is_set() else "complete"
        finally:
            # Reached on success, on cancel and on exceptions (KeyboardInterrupt included).
            self.store.update_turn(turn_id, "".join(pieces).strip(), status=status)
        return Answer(prep.session_id, prep.user_turn_id, turn_id, "".join(pieces).strip(),
                      status == "interrupted", prep.memories, prep.notices,
                      model.last_stats if model is not None else GenerationStats(), prep.recall_seconds)

    def _guarded(self, model: ChatModel, messages: list[dict],
                 cancel: threading.Event | None, message: str = "") -> Iterator[str]:
        """The model's answer without a copy of the prompt's memory block or invented turns of dialogue (see
        assistant/guard.py). An answer left empty (it began with such a copy, which the engine's stop strings
        may have cut before it reached here, or ended at once) is asked again once with its first token kept
        off what began it (a tag or speaker label when that is not known), where the model can; still empty,
        it is guard.FALLBACK. An answer that only repeats the user's `message` counts as empty the first time
        (asked again with its first word kept off; the second answer is taken as it comes).
        What this yields is the whole answer: shown and stored alike."""
        first = guard.Guard(echo=message)
        shown = False
        start = time.perf_counter()
        for piece in first.filter(model.stream(messages, self.config.max_answer_tokens, cancel)):
            shown = shown or bool(piece.strip())
            yield piece
        if shown or (cancel is not None and cancel.is_set()):
            return
        can_avoid = "avoid" in inspect.signature(model.stream).parameters
        if first.echoed and not can_avoid:     # a repeat of the message is still better than no answer
            yield first.text
            return
        if can_avoid:
            avoid = guard.avoid(first.copied) if first.copied else [*guard.TAGS, *guard.LABELS]
            read = model.last_stats          # the prompt was read by the first call; the second reuses it
            again = guard.Guard()
            retried = time.perf_counter()
            try:
                for piece in again.filter(model.stream(messages, self.config.max_answer_tokens, cancel,
                                                       avoid=avoid)):
                    shown = shown or bool(piece.strip())
                    yield piece
            finally:
                last = model.last_stats      # the turn's figures: the first call's prompt, the second's answer
                model.last_stats = GenerationStats(
                    prompt_tokens=read.prompt_tokens, reused_tokens=read.reused_tokens,
                    completion_tokens=last.completion_tokens,
                    time_to_first_token=retried - start + last.time_to_first_token if last.completion_tokens else 0.0,
                    generation_seconds=last.generation_seconds)
            if shown or (cancel is not None and cancel.is_set()):
                return
        yield guard.FALLBACK

    def _generate_unstored(self, prep: PreparedTurn, model, on_token, cancel) -> Answer:
        """An answer shown and not stored (incognito: kept in this process for the rest of the chat)."""
        pieces: list[str] = []
        source = (self._guarded(model, prep.messages, cancel, prep.message) if model is not None
                  else prep.produce(self.wait_for_model, cancel))
        status = "interrupted"
        try:
            for piece in source:
                pieces.append(piece)
                if on_token:
                    on_token(piece)
            status = "interrupted" if cancel is not None and cancel.is_set() else "complete"
        finally:
            text = "".join(pieces).strip()
            turn_id = (self.scratch.add_turn(prep.session_id, "assistant", text, status=status)
                       if self.scratch is not None and self.scratch.has(prep.session_id) else None)
        return Answer(prep.session_id, prep.user_turn_id, turn_id, text, status == "interrupted", prep.memories,
                      prep.notices, model.last_stats if model is not None else GenerationStats(),
                      prep.recall_seconds, forget_plan=prep.forget_plan)

    def incognito_twin(self) -> "Assistant":
        """An incognito Assistant over the same memory, model and settings (an incognito chat opened from a
        window that stores): it reads memory as this one does and stores nothing. It shares this one's lock,
        as both use the same connection."""
        twin = Assistant(self.store, self.recall, self.config, model=self.model, routes=self.routes, incognito=True)
        twin._compose_lock = self._compose_lock
        if self.model is None:
            threading.Thread(target=lambda: _follow_model(self, twin), name="twin-model", daemon=True).start()
        return twin

    @contextmanager
    def changing_memory(self):
        """Held while the user changes memory through this Assistant's connection (correct, pin, forget,
        rename): recall for a draft, which indexes as it goes, never runs inside that transaction. Call it
        only while no answer streams (the answer writes through the same connection)."""
        with self._compose_lock:
            yield self.store

    def close(self) -> None:
        embedder = getattr(self.recall, "embedder", None)
        if hasattr(embedder, "close"):
            embedder.close()
        self.store.close()


def _follow_model(base: Assistant, twin: Assistant) -> None:
    """The twin's model is the base's, once it is loaded (or its error)."""
    try:
        twin.set_model(base.wait_for_model())
    except BaseException as e:
        twin.set_model_error(e)


def _trim_to_tokens(model: ChatModel, text: str, limit: int) -> str:
    lo, hi = 0, len(text)
    while lo < hi:  # binary search on characters: tokenizers are not invertible cheaply here
        mid = (lo + hi + 1) // 2
        if model.count_tokens(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]
