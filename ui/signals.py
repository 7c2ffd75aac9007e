"""A kill (SIGTERM: a shutdown, `kill`, a service manager) or a closed terminal (SIGHUP) quits the app
the way Ctrl+Q does: the answer is finalised on disk and the speech heard so far is stored."""
from __future__ import annotations

import asyncio
import signal

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def quit_on_signals(app) -> list[int]:
    """Route SIGTERM and SIGHUP to the app's quit action; returns the signals taken over (none when
    the app does not run in the main thread, where only the default handling applies)."""
    loop = asyncio.get_running_loop()
    taken = []
    for sig in SIGNALS:
        try:
            loop.add_signal_handler(sig, app.call_later, app.action_quit)
        except (RuntimeError, ValueError, NotImplementedError):   # not the main thread, or no signals
            continue
        taken.append(sig)
    return taken


def release_signals(signals: list[int]) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    for sig in signals:
        loop.remove_signal_handler(sig)
