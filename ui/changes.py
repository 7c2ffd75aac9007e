"""Reading and changing memory from a screen without blocking it: the work runs in a thread worker, the
result comes back on the UI thread, a failure is one sentence in a notification.

Reads go through the store's reader connection. Changes (correct, pin, forget, rename) go through the
Assistant's own connection inside `Assistant.changing_memory`, and never while an answer streams (the answer
writes through that connection too)."""
from __future__ import annotations

import traceback
from typing import Callable

from assistant.errors import USER_ERRORS

BUSY = "Still answering in the chat; wait for the answer (or stop it), then try again."


def error_text(e: BaseException) -> str:
    if isinstance(e, USER_ERRORS) or (isinstance(e, (ValueError, LookupError)) and str(e)):
        return str(e)
    return f"Something went wrong ({type(e).__name__}: {e})."


def _run(node, work: Callable, done: Callable, title: str, group: str) -> None:
    app = node.app

    def run() -> None:
        try:
            result = work()
        except BaseException as e:
            if not isinstance(e, USER_ERRORS + (ValueError, LookupError)):
                app.log.error("".join(traceback.format_exception(e)))
            _ui(app, node.notify, error_text(e), title=title, severity="error", timeout=8)
            return
        _ui(app, done, result)

    node.run_worker(run, thread=True, group=group, exclusive=True, exit_on_error=False)


def _ui(app, fn: Callable, *args, **kwargs) -> None:
    if not app.is_running:
        return
    try:
        app.call_from_thread(fn, *args, **kwargs)
    except RuntimeError:   # the app stopped meanwhile
        pass


def read(node, fn: Callable, done: Callable, *, title: str = "Memory", group: str = "memory-read") -> None:
    """`fn(reader_store)` in a worker, then `done(result)` on the UI thread. A newer read in the same
    group replaces an older one."""
    app = node.app

    def work():
        assistant = app.wait_for_assistant()
        with app.using_store():
            return fn(assistant.store.reader())

    _run(node, work, done, title, group)


def change(node, fn: Callable, done: Callable, *, title: str = "Memory") -> None:
    """`fn(store)` in a worker through the Assistant's connection, then `done(result)` on the UI thread."""
    app = node.app

    def work():
        if app.busy():
            raise ValueError(BUSY)
        assistant = app.wait_for_assistant()
        with app.using_store(), assistant.changing_memory() as store:
            return fn(store)

    if app.busy():
        node.notify(BUSY, severity="warning", timeout=6)
        return
    _run(node, work, done, title, "memory-change")
