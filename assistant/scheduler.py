"""Sleep-time consolidation in the background, with apscheduler 3.x.

In the app (`ConsolidationService`): consolidation starts once the user has been idle for `idle_minutes`
(every `notify_activity()` pushes the idle job back) and every night at `nightly` ("HH:MM", local time).
A message from the user sets `preempt`, which stops a run between two units of work; progress goes to
`on_progress(Progress)` from the worker thread (a UI hands it on with `call_from_thread`). Runs open their
own database connection (a worker's: it repairs nothing, see memory.store.Store), so they never share a
transaction with the chat.

As a daemon (`run_daemon`, behind `assistant daemon`, e.g. as a systemd user service): the same nightly
job, plus a check every `check_seconds` that starts a run when the newest turn in the database is older
than `idle_minutes`; a turn newer than the run's start (the user is back, in another process) preempts it.
The model is loaded for a run and released after it.

Config keys read when present (defaults otherwise): consolidate_idle_minutes, consolidate_at,
consolidate_segment_mode.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from memory.consolidate import Consolidator, Progress, Report, Settings
from memory.store import Store

log = logging.getLogger(__name__)

DEFAULT_IDLE_MINUTES = 10.0
DEFAULT_NIGHTLY = "03:30"
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600}


def settings_from(config) -> Settings:
    return Settings(segment_mode=getattr(config, "consolidate_segment_mode", "fast"))


def parse_hhmm(text: str) -> tuple[int, int]:
    try:
        h, m = (int(x) for x in text.strip().split(":"))
        if not (0 <= h < 24 and 0 <= m < 60):
            raise ValueError
    except ValueError:
        raise ValueError(f"'{text}' is not a time of day; write it as HH:MM, e.g. 03:30.") from None
    return h, m


class ConsolidationService:
    """Runs consolidation in a background thread after idle time and nightly; preemptible."""

    def __init__(self, run_once: Callable[[threading.Event, Callable[[Progress], None] | None, str], Report | None],
                 *, idle_minutes: float = DEFAULT_IDLE_MINUTES, nightly: str | None = DEFAULT_NIGHTLY,
                 on_progress: Callable[[Progress], None] | None = None,
                 on_done: Callable[[Report], None] | None = None, scheduler=None):
        """`run_once(preempt, progress, trigger)` does one consolidation run and returns its report
        (None when there was nothing to do or no model yet)."""
        self.run_once = run_once
        self.idle = timedelta(minutes=idle_minutes)
        self.nightly = nightly
        self.on_progress = on_progress
        self.on_done = on_done
        self.preempt = threading.Event()
        self._running = threading.Event()
        self.last_report: Report | None = None
        self.scheduler = scheduler or BackgroundScheduler(daemon=True, job_defaults=JOB_DEFAULTS)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "ConsolidationService":
        if self.nightly:
            h, m = parse_hhmm(self.nightly)
            self.scheduler.add_job(self._job, CronTrigger(hour=h, minute=m), args=["nightly"], id="nightly",
                                   replace_existing=True)
        self._schedule_idle()
        if not self.scheduler.running:
            self.scheduler.start()
        return self

    def shutdown(self, wait: bool = False) -> None:
        self.preempt.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)

    @property
    def running(self) -> bool:
        return self._running.is_set()

    # -- hooks for the UI ---------------------------------------------------------------------------
    def notify_activity(self) -> None:
        """The user did something (sent a message): stop a run between units, restart the idle clock."""
        if self._running.is_set():
            self.preempt.set()
        self._schedule_idle()

    def run_now(self, trigger: str = "manual") -> None:
        """Start a run in the background as soon as possible."""
        self.scheduler.add_job(self._job, DateTrigger(run_date=datetime.now().astimezone()), args=[trigger],
                               id="now", replace_existing=True)

    def _schedule_idle(self) -> None:
        when = datetime.now().astimezone() + self.idle
        self.scheduler.add_job(self._job, DateTrigger(run_date=when), args=["idle"], id="idle",
                               replace_existing=True)

    # -- the job ------------------------------------------------------------------------------------
    def _job(self, trigger: str) -> None:
        if self._running.is_set():
            return
        self._running.set()
        self.preempt.clear()
        try:
            report = self.run_once(self.preempt, self.on_progress, trigger)
            if report is not None:
                self.last_report = report
                if self.on_done:
                    self.on_done(report)
        except Exception:   # a failed run is logged; what it finished stays done
            log.exception("consolidation run failed")
        finally:
            self._running.clear()


def store_runner(db_path: Path, embedder, get_model: Callable[[], object | None], settings: Settings | None = None):
    """A `run_once` that opens its own connection to `db_path` for each run (None: nothing to do)."""

    def run_once(preempt: threading.Event, progress, trigger: str) -> Report | None:
        model = get_model()
        if model is None:
            return None
        store = Store(db_path, worker=True)
        try:
            c = Consolidator(store, embedder, model, settings)
            if not c.has_work():
                return None
            return c.run(preempt=preempt, progress=progress, trigger=trigger)
        finally:
            store.close()

    return run_once


def background(model):
    """The chat's model as consolidation should use it: below the chat, giving way when an answer waits, on a
    context of its own so the chat's cached prompt stays (models without those abilities as they are)."""
    view = getattr(model, "background", None)
    return view() if callable(view) else model


def start_in_app(assistant, *, idle_minutes: float | None = None, nightly: str | None = None,
                 on_progress: Callable[[Progress], None] | None = None,
                 on_done: Callable[[Report], None] | None = None) -> ConsolidationService:
    """Background consolidation for a running app: call `service.notify_activity()` on each message the
    user sends; `service.preempt` is the Event that stops a run; `on_progress` gets Progress from the
    worker thread. Shares the app's model (a run gives way within a fraction of a second when an answer
    wants it) and embedder."""
    cfg = assistant.config
    idle = idle_minutes if idle_minutes is not None else getattr(cfg, "consolidate_idle_minutes", DEFAULT_IDLE_MINUTES)
    at = nightly if nightly is not None else getattr(cfg, "consolidate_at", DEFAULT_NIGHTLY)
    embedder = getattr(assistant.recall, "embedder", None)
    run_once = store_runner(assistant.store.path, embedder, lambda: background(assistant.model), settings_from(cfg))
    return ConsolidationService(run_once, idle_minutes=idle, nightly=at or None, on_progress=on_progress,
                                on_done=on_done).start()


# -- the daemon ---------------------------------------------------------------------------------------
def newest_turn_at(db_path: Path) -> str | None:
    store = Store(db_path, worker=True)
    try:
        row = store.db.execute("SELECT MAX(created_at) FROM turns WHERE source = 'chat'").fetchone()
        return row[0] if row else None
    finally:
        store.db.conn.close()


def run_daemon(opts, *, idle_minutes: float, nightly: str | None, check_seconds: float = 60.0,
               load_model: Callable[[], object] | None = None, embedder=None,
               on_report: Callable[[Report], None] | None = None, stop: threading.Event | None = None,
               ) -> None:
    """Block, consolidating opts.db after idle time and nightly, until `stop` is set (or SIGTERM/SIGINT
    when run from the command line)."""
    from memory.clock import parse, utcnow

    from .engines import open_model

    stop = stop or threading.Event()
    if embedder is None:
        from memory.embedder import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder()
    if load_model is None:
        def load_model():
            return open_model(opts.model, opts.config)

    settings = settings_from(opts.config)
    idle = timedelta(minutes=idle_minutes)

    def run_once(preempt: threading.Event, progress, trigger: str) -> Report | None:
        store = Store(opts.db, worker=True)
        started = utcnow()
        done = threading.Event()

        def watch():   # the user came back (in another process), or we are stopping: stop between units
            while not done.wait(2.0):
                last = newest_turn_at(opts.db)
                if stop.is_set() or (last and parse(last) > parse(started)):
                    preempt.set()
                    return

        try:
            if not Consolidator(store, embedder, None, settings).has_work():
                return None
            model = load_model()
            threading.Thread(target=watch, name="consolidation-watch", daemon=True).start()
            return Consolidator(store, embedder, model, settings).run(preempt=preempt, progress=progress,
                                                                      trigger=trigger)
        finally:
            done.set()
            model = None   # released after the run
            store.close()

    def idle_check() -> None:
        last = newest_turn_at(opts.db)
        if last is None or datetime.now().astimezone() - parse(last) >= idle:
            service._job("idle")

    service = ConsolidationService(run_once, idle_minutes=idle_minutes, nightly=nightly, on_done=on_report)
    if nightly:
        h, m = parse_hhmm(nightly)
        service.scheduler.add_job(service._job, CronTrigger(hour=h, minute=m), args=["nightly"], id="nightly")
    service.scheduler.add_job(idle_check, "interval", seconds=check_seconds, id="idle-check",
                              next_run_time=datetime.now().astimezone())
    service.scheduler.start()
    try:
        stop.wait()
    finally:
        service.shutdown(wait=True)

