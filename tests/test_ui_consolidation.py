"""Memory tidying (consolidation) in the terminal UI: progress in the status bar, a message preempts a
run between units of work, "tidy memory now", errors as notifications, a clean shutdown.

The runs here are fakes that block on units of work and check the preempt event; the service around
them is the real ConsolidationService (apscheduler). Nothing here starts a real consolidation except
the last tests, which use the config's service with an idle time no test reaches."""
from __future__ import annotations

import threading
import time

import pytest

from assistant.config import Config
from assistant.scheduler import ConsolidationService
from memory.consolidate import Progress, Report
from tests.fakes import FakeLLM
from tests.test_ui import SIZE, answered, make_assistant, notifications, send, wait_until
from ui.app import AssistantApp

NEVER = 1e6   # idle minutes: the idle job never comes during a test


@pytest.fixture
def db(tmp_path):
    return tmp_path / "data" / "ui.db"


class BlockingRun:
    """A consolidation run of `units` units of work; each waits until the test lets it through (or the
    run is preempted, which is checked between units, as the real Consolidator does)."""

    def __init__(self, units: int = 12, fail: BaseException | None = None, report: Report | None = None):
        self.units = units
        self.fail = fail
        self.report = report
        self.allowed = 0
        self.done = 0
        self.triggers: list[str] = []
        self.started = threading.Event()
        self.preempted = threading.Event()
        self.finished = threading.Event()
        self.thread: threading.Thread | None = None

    def let(self, n: int = 1) -> None:
        self.allowed += n

    def __call__(self, preempt: threading.Event, progress, trigger: str):
        self.thread = threading.current_thread()
        self.triggers.append(trigger)
        self.started.set()
        try:
            if self.fail is not None:
                raise self.fail
            if self.report is not None:
                return self.report
            report = Report()
            for i in range(self.units):
                if progress:
                    progress(Progress("link", i, self.units))
                while self.allowed <= i:          # the unit of work
                    if preempt.wait(0.01):
                        break
                if preempt.is_set():
                    self.preempted.set()
                    report.status = "preempted"
                    return report
                self.done += 1
                report.units["link"] += 1
            if progress:
                progress(Progress("link", self.units, self.units))
            return report
        finally:
            self.finished.set()


def factory(run, made: list | None = None):
    def make(assistant, on_progress, on_done):
        service = ConsolidationService(run, idle_minutes=NEVER, nightly=None, on_progress=on_progress,
                                       on_done=on_done)
        if made is not None:
            made.append(service)
        return service
    return make


def status_text(app) -> str:
    return str(app.chat.status.render())


async def test_progress_shows_and_a_message_preempts_the_run(db):
    a = make_assistant(db, FakeLLM(replies=["Here."]))
    run = BlockingRun(units=12)
    made = []
    app = AssistantApp(assistant=a, consolidation=factory(run, made))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: made and made[0].scheduler.running, what="the service")
        app.chat.action_tidy_now()
        await wait_until(pilot, lambda: "tidying memory: linking memories 0/12" in status_text(app),
                         what="progress in the status bar")
        run.let(3)
        await wait_until(pilot, lambda: "3/12" in status_text(app), what="progress moving on")
        assert run.triggers == ["manual"] and app.tidy.running
        # Typing is never blocked by the run.
        await pilot.press("h", "e", "y")
        assert app.chat.prompt.text == "hey"
        app.chat.prompt.clear()
        # A message stops the run between two units of work.
        await send(pilot, "are you there")
        await wait_until(pilot, run.preempted.is_set, what="the run to be preempted")
        msg = await answered(pilot)
        assert msg.shown_text == "Here."
        assert run.done == 3
        await wait_until(pilot, lambda: not app.tidy.running, what="the run to end")
        await wait_until(pilot, lambda: "tidying" not in status_text(app), what="the status bar to clear")
        assert not notifications(app, "error")
        # The idle clock restarted with the message.
        job = made[0].scheduler.get_job("idle")
        assert job is not None and job.next_run_time.timestamp() > time.time() + NEVER * 60 - 120
    assert not made[0].scheduler.running
    a.close()


async def test_manual_run_to_the_end(db):
    a = make_assistant(db, FakeLLM())
    run = BlockingRun(units=2)
    run.let(2)
    app = AssistantApp(assistant=a, consolidation=factory(run))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.tidy.service is not None, what="the service")
        app.chat.action_tidy_now()
        await wait_until(pilot, lambda: any("Memory tidied: 2 units" in n for n in notifications(app)),
                         what="the report")
        assert "tidying" not in status_text(app)
        assert run.triggers == ["manual"]
    a.close()


async def test_after_a_run_the_prompts_new_beginning_is_evaluated_before_the_next_message(db):
    from tests.test_ui_lookahead import WarmingLLM

    llm = WarmingLLM()
    a = make_assistant(db, llm)
    run = BlockingRun(units=1)
    run.let(1)
    app = AssistantApp(assistant=a, consolidation=factory(run))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.tidy.service is not None and llm.warmed, what="the service, a warm start")
        before = len(llm.warmed)
        app.chat.action_tidy_now()
        await wait_until(pilot, lambda: any("Memory tidied" in n for n in notifications(app)), what="the report")
        await wait_until(pilot, lambda: len(llm.warmed) > before, what="the beginning evaluated again")
    a.close()


async def test_nothing_to_tidy_is_said_on_a_manual_run(db):
    a = make_assistant(db, FakeLLM())

    def make(assistant, on_progress, on_done):
        return ConsolidationService(lambda preempt, progress, trigger: None, idle_minutes=NEVER, nightly=None,
                                    on_progress=on_progress, on_done=on_done)

    app = AssistantApp(assistant=a, consolidation=make)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.tidy.service is not None, what="the service")
        await app.run_action("app.command_palette")   # the palette lists "Tidy memory now"
        await pilot.pause()
        await pilot.press(*"tidy memory")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("Nothing to tidy" in n for n in notifications(app)),
                         what="the notification")
        assert not notifications(app, "error")
    a.close()


async def test_a_failed_run_becomes_a_notification(db):
    a = make_assistant(db, FakeLLM())
    run = BlockingRun(fail=RuntimeError("disk on fire"))
    app = AssistantApp(assistant=a, consolidation=factory(run))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.tidy.service is not None, what="the service")
        app.chat.action_tidy_now()
        await wait_until(pilot, lambda: notifications(app, "error"), what="the notification")
        (note,) = notifications(app, "error")
        assert "Tidying memory failed" in note and "disk on fire" in note
        assert "tidying" not in status_text(app) and app.is_running
        # A run that reports an error (what it finished is kept) says so too.
        run.fail = None
        run.report = Report(status="error", error="the model returned nothing")
        app.chat.action_tidy_now()
        await wait_until(pilot, lambda: len(notifications(app, "error")) == 2, what="the second notification")
        assert "the model returned nothing" in notifications(app, "error")[1]
    a.close()


async def test_quit_during_a_run_stops_it_and_leaves_no_threads(db):
    a = make_assistant(db, FakeLLM())
    run = BlockingRun(units=50)
    made = []
    app = AssistantApp(assistant=a, consolidation=factory(run, made))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: made and made[0].scheduler.running, what="the service")
        app.chat.action_tidy_now()
        await wait_until(pilot, lambda: "tidying memory" in status_text(app), what="the run")
        run.let(1)
        start = time.monotonic()
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running, what="quit")
        assert time.monotonic() - start < 2.0
    assert run.preempted.is_set() and run.done < 50
    assert not made[0].scheduler.running
    run.thread.join(2.0)
    assert not run.thread.is_alive()
    assert not app.background_busy()
    deadline = time.monotonic() + 3
    while any(t.name.startswith("APScheduler") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name.startswith("APScheduler") for t in threading.enumerate())
    a.close()


# -- the config's service -----------------------------------------------------------------------------
async def test_handed_in_assistant_runs_no_consolidation_by_default(db):
    a = make_assistant(db, FakeLLM())
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.tidy.service is None
        app.chat.action_tidy_now()
        await wait_until(pilot, lambda: any("tidying is off" in n for n in notifications(app, "warning")),
                         what="the notification")
    a.close()


async def test_config_service_idle_and_nightly(db):
    cfg = Config(consolidate_idle_minutes=NEVER, consolidate_at="04:15")
    a = make_assistant(db, FakeLLM(), config=cfg)
    app = AssistantApp(assistant=a, consolidation=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.tidy.service is not None, what="the service")
        service = app.tidy.service
        assert service.scheduler.running
        assert {j.id for j in service.scheduler.get_jobs()} == {"idle", "nightly"}
        nightly = service.scheduler.get_job("nightly").next_run_time
        assert (nightly.hour, nightly.minute) == (4, 15)
        await send(pilot, "hello")
        await answered(pilot)
    assert not service.scheduler.running
    a.close()

    cfg = Config(consolidate_idle_minutes=NEVER, consolidate_at="")
    a = make_assistant(db, FakeLLM(), config=cfg)
    app = AssistantApp(assistant=a, consolidation=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.tidy.service is not None, what="the service")
        assert {j.id for j in app.tidy.service.scheduler.get_jobs()} == {"idle"}
    a.close()


async def test_bad_nightly_time_is_a_notification(db):
    a = make_assistant(db, FakeLLM(), config=Config(consolidate_idle_minutes=NEVER, consolidate_at="25:99"))
    app = AssistantApp(assistant=a, consolidation=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: notifications(app, "error"), what="the notification")
        (note,) = notifications(app, "error")
        assert "Memory tidying is off" in note and "25:99" in note and "HH:MM" in note
        assert app.tidy.service is None and app.is_running
    a.close()


async def test_the_real_app_path_starts_tidying(db, tmp_path, monkeypatch):
    from assistant import wiring
    from tests.fakes import FakeEmbedder

    monkeypatch.setattr(wiring, "SentenceTransformerEmbedder", FakeEmbedder)
    opts = wiring.Options(db=db, model=str(tmp_path / "missing.gguf"),
                          config=Config(consolidate_idle_minutes=NEVER, consolidate_at=""))
    app = AssistantApp(opts)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.tidy.service is not None, what="the service")
        assert app.tidy.service.scheduler.running
    assert not app.tidy.service.scheduler.running
    app.close_assistant()
