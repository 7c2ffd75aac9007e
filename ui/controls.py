"""What the app does in the background: listening to the room, push-to-talk voice questions, and
tidying memory (consolidation).

Each control keeps its state (read and changed on the UI thread), runs the blocking parts in thread
workers, and reports to the chat screen with Messages (`post_message` is thread-safe); the screen
shows them in the status bar and as notifications. The audio itself comes from
`assistant.listening.AudioServices` (or whatever the app was handed in its place).
"""
from __future__ import annotations

import threading
import traceback
from typing import Callable

from textual.message import Message

from assistant.errors import USER_ERRORS


class _Control:
    def __init__(self, app) -> None:
        self.app = app

    def post(self, message: Message) -> None:
        """Tell the chat screen, from any thread (dropped when the app is gone)."""
        chat = getattr(self.app, "chat", None)
        if chat is not None and self.app.is_running:
            chat.post_message(message)

    def log_error(self, e: BaseException) -> None:
        if not isinstance(e, USER_ERRORS):
            self.app.log.error("".join(traceback.format_exception(e)))


# -- listening to the room ------------------------------------------------------------------------
class ListeningControl(_Control):
    """ctrl+l: off -> listening -> paused -> listening ... ; `stop()` ends the audio session.

    The UI shows the state asked for at once (`state`); a worker brings the microphone to it. Workers
    take turns (one lock) and each goes to the latest state asked for, so quick presses settle right."""

    OFF, STARTING, ON, PAUSED = "off", "starting", "on", "paused"

    class Changed(Message):
        """The microphone reached `state` (on, paused or off)."""

        def __init__(self, state: str) -> None:
            self.state = state
            super().__init__()

    class Failed(Message):
        """Listening could not start or go on (no PortAudio, no microphone, no speech model...)."""

        def __init__(self, error: BaseException, auto: bool = False) -> None:
            self.error = error
            self.auto = auto
            super().__init__()

    def __init__(self, app) -> None:
        super().__init__(app)
        self.state = self.OFF       # what the indicator shows (UI thread)
        self.want = self.OFF        # what the workers bring the microphone to
        self.session = None         # a LiveListening while one is open
        self.errors_seen = 0
        self._lock = threading.Lock()
        self._stopping: threading.Thread | None = None

    def toggle(self, *, auto: bool = False) -> str:
        """Start, pause or resume; returns the state now shown."""
        if self.state in (self.OFF,):
            self.state = self.STARTING
            self._go(self.ON, auto)
        elif self.state == self.ON:
            self.state = self.PAUSED
            self._go(self.PAUSED)
        elif self.state == self.PAUSED:
            self.state = self.ON
            self._go(self.ON)
        return self.state

    def stop(self) -> None:
        """End listening (the last words are still transcribed and stored)."""
        if self.state != self.OFF or self.session is not None:
            self.state = self.OFF
            self._go(self.OFF)

    def _go(self, want: str, auto: bool = False) -> None:
        self.want = want
        self.app.run_worker(lambda: self._settle(auto), thread=True, group="listening", exit_on_error=False,
                            name=f"listening {want}")

    def _settle(self, auto: bool) -> None:
        """Worker: bring the microphone to `want`."""
        with self._lock:
            want = self.want
            try:
                if want == self.OFF:
                    if self.session is not None:
                        session, self.session = self.session, None
                        session.stop()
                elif self.session is None:
                    services = self.app.audio_services()
                    session = services.listening()
                    try:
                        session.start()
                    except BaseException:
                        session.stop()
                        raise
                    self.session = session
                    self.errors_seen = 0
                    if self.want == self.PAUSED:
                        session.pause()
                elif want == self.ON:
                    self.session.resume()
                elif want == self.PAUSED:
                    self.session.pause()
            except BaseException as e:
                self.log_error(e)
                if self.session is not None:
                    session, self.session = self.session, None
                    try:
                        session.stop()
                    except BaseException:
                        pass
                self.want = self.OFF
                self.post(self.Failed(e, auto))
                return
            if self.want == want:   # no newer press waits: this is where it settles
                reached = want if self.session is not None or want == self.OFF else self.OFF
                self.post(self.Changed(reached))

    def stop_for_quit(self) -> threading.Thread | None:
        """Quitting: stop listening in a daemon thread (storing the last words); returns it, or None."""
        self.state = self.want = self.OFF
        if self.session is None and not self._lock.locked():
            return None

        def stop() -> None:
            with self._lock:
                if self.session is not None:
                    session, self.session = self.session, None
                    try:
                        session.stop()
                    except BaseException as e:
                        self.log_error(e)

        self._stopping = threading.Thread(target=stop, name="listening-stop", daemon=True)
        self._stopping.start()
        return self._stopping

    @property
    def busy(self) -> bool:
        """A stop started on quit is still storing the last words."""
        return self._stopping is not None and self._stopping.is_alive()


# -- push-to-talk -----------------------------------------------------------------------------------
class VoiceControl(_Control):
    """ctrl+r: first press records, second press transcribes and hands the text on (`Heard`)."""

    IDLE, STARTING, RECORDING, TRANSCRIBING = "", "starting", "recording", "transcribing"

    class Opened(Message):
        """The microphone is open: recording."""

        def __init__(self, ptt) -> None:
            self.ptt = ptt
            super().__init__()

    class Heard(Message):
        """The voice question, transcribed ("" when no words were heard)."""

        def __init__(self, text: str) -> None:
            self.text = text
            super().__init__()

    class Failed(Message):
        def __init__(self, error: BaseException) -> None:
            self.error = error
            super().__init__()

    def __init__(self, app) -> None:
        super().__init__(app)
        self.state = self.IDLE
        self.ptt = None

    def toggle(self) -> str:
        if self.state == self.IDLE:
            self.state = self.STARTING
            self.app.run_worker(self._start, thread=True, group="voice", exit_on_error=False, name="voice start")
        elif self.state == self.RECORDING:
            self.state = self.TRANSCRIBING
            ptt, self.ptt = self.ptt, None
            self.app.run_worker(lambda: self._stop(ptt), thread=True, group="voice", exit_on_error=False,
                                name="voice stop")
        return self.state

    def cancel(self) -> None:
        """Drop the recording (Esc, or quitting)."""
        ptt, self.ptt = self.ptt, None
        if ptt is not None:
            try:
                ptt.cancel()
            except BaseException as e:
                self.log_error(e)
        if self.state in (self.RECORDING, self.STARTING):
            self.state = self.IDLE

    @property
    def full(self) -> bool:
        """The recording reached its longest length."""
        return bool(getattr(self.ptt, "full", False))

    def _start(self) -> None:
        try:
            services = self.app.audio_services()
            ptt = services.push_to_talk()
            ptt.start()
        except BaseException as e:
            self.log_error(e)
            self.post(self.Failed(e))
            return
        self.post(self.Opened(ptt))
        try:
            services.warm()     # load the speech model while the user speaks
        except BaseException as e:
            self.log_error(e)   # reported when the recording is transcribed

    def started(self, ptt) -> None:
        """UI thread: the microphone is open (unless cancelled meanwhile)."""
        if self.state != self.STARTING:
            ptt.cancel()
            return
        self.ptt = ptt
        self.state = self.RECORDING

    def _stop(self, ptt) -> None:
        try:
            question = ptt.stop()
        except BaseException as e:
            self.log_error(e)
            self.post(self.Failed(e))
            return
        self.post(self.Heard((question.text or "").strip()))


# -- tidying memory ---------------------------------------------------------------------------------
def default_consolidation(assistant, on_progress, on_done):
    """The app's ConsolidationService: idle minutes and nightly time from the config, started."""
    from assistant.scheduler import start_in_app

    return start_in_app(assistant, on_progress=on_progress, on_done=on_done)


class TidyControl(_Control):
    """Runs a ConsolidationService while the app is open: every message calls `activity()` (a running
    consolidation stops between units of work, the idle clock restarts); `run_now()` tidies at once.

    `factory(assistant, on_progress, on_done) -> service` builds the service (default: from the
    config); None or False turns tidying off."""

    class Started(Message):
        def __init__(self, trigger: str) -> None:
            self.trigger = trigger
            super().__init__()

    class Progress(Message):
        def __init__(self, progress) -> None:
            self.progress = progress
            super().__init__()

    class Finished(Message):
        """A run ended: `report` (None: nothing to do or no model yet), or `error`."""

        def __init__(self, trigger: str, report=None, error: BaseException | None = None) -> None:
            self.trigger = trigger
            self.report = report
            self.error = error
            super().__init__()

    class Failed(Message):
        """The service could not be started (e.g. a bad consolidate_at in the config)."""

        def __init__(self, error: BaseException) -> None:
            self.error = error
            super().__init__()

    def __init__(self, app, factory: Callable | None) -> None:
        super().__init__(app)
        self.factory = factory
        self.service = None
        self.closed = False

    def start(self, assistant) -> None:
        """Build and start the service in a worker (importing the scheduler takes a moment)."""
        if not self.factory or self.service is not None:
            return
        self.app.run_worker(lambda: self._start(assistant), thread=True, group="tidy", exit_on_error=False,
                            name="tidy start")

    def _start(self, assistant) -> None:
        try:
            service = self.factory(assistant, self._progress, None)
            inner = service.run_once

            def run_once(preempt, progress, trigger):
                self.post(self.Started(trigger))
                try:
                    report = inner(preempt, progress, trigger)
                except BaseException as e:
                    self.post(self.Finished(trigger, error=e))
                    raise
                self.post(self.Finished(trigger, report))
                return report

            service.run_once = run_once
            if not service.scheduler.running:
                service.start()
        except Exception as e:
            self.log_error(e)
            self.post(self.Failed(e))
            return
        self.service = service
        if self.closed:    # the app quit while the service was being built
            service.shutdown(wait=False)

    def _progress(self, progress) -> None:
        self.post(self.Progress(progress))

    def activity(self) -> None:
        """The user sent a message: a running consolidation stops between units of work."""
        if self.service is not None:
            if self.service.running:
                self.service.preempt.set()
            self.service.notify_activity()

    def run_now(self) -> bool:
        if self.service is None:
            return False
        self.service.run_now("manual")
        return True

    @property
    def running(self) -> bool:
        return self.service is not None and self.service.running

    def shutdown(self) -> None:
        """Stop the scheduler; a running consolidation stops after its current unit of work."""
        self.closed = True
        if self.service is not None:
            self.service.shutdown(wait=False)
