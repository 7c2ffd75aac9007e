"""Work ahead of the Enter key: while the user reads or types, the model evaluates what the next prompt will
begin with (after the model loads, on a new or reopened session) and, after a pause in typing, recalls for
the draft and evaluates its whole prompt; on Enter only what changed since is left. It runs in a thread
worker (one at a time: a newer one replaces an older one) and gives way to an answer at once. A failure
costs only the head start."""
from __future__ import annotations

import threading
import traceback
from typing import Callable


class LookAhead:
    def __init__(self, screen) -> None:
        self.screen = screen
        self._draft: tuple[int | None, str] | None = None   # the draft evaluated last
        self._stop = threading.Event()                       # the app is closing

    def _assistant(self):
        a = self.screen.assistant
        return a if a is not None and a.model is not None else None

    def warm(self, session_id: int | None) -> None:
        """Evaluate the beginning of the next prompt in `session_id` (None: a new session)."""
        a = self._assistant()
        if a is not None:
            self._draft = None
            self._run(lambda: a.ahead(session_id),
                      lambda tokens: a.evaluate_ahead(tokens, cache=session_id is None, cancel=self._stop))

    def draft(self, session_id: int | None, text: str) -> None:
        """Recall for the draft `text` and evaluate the prompt it would get."""
        a = self._assistant()
        key = (session_id, text.strip())
        if a is None or not key[1] or key == self._draft:
            return
        self._draft = key
        self._run(lambda: a.ahead(session_id, text), lambda tokens: a.evaluate_ahead(tokens, cancel=self._stop))

    def stop(self) -> None:
        """The app is closing: evaluation ahead stops at its next chunk of tokens."""
        self._stop.set()

    def sent(self) -> None:
        """A message was sent: the next draft is new, even with the same words."""
        self._draft = None

    def _run(self, plan: Callable, evaluate: Callable) -> None:
        app = self.screen.app
        if self._stop.is_set():
            return

        def work() -> None:
            try:
                with app.using_store():     # the database part; the model part needs no database
                    tokens = plan()
                evaluate(tokens)
            except BaseException as e:
                app.log.error("".join(traceback.format_exception(e)))

        app.run_worker(work, thread=True, group="look-ahead", exclusive=True, exit_on_error=False,
                       name="look-ahead")
