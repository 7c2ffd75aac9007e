"""The background side: idle trigger, nightly job, preemption by the user, the daemon, and the commands."""
from __future__ import annotations

import re
import threading
import time

import pytest
from click.testing import CliRunner

from assistant.scheduler import ConsolidationService, parse_hhmm, run_daemon, store_runner
from memory.consolidate import Settings
from memory.store import Store
from tests.fakes import FakeEmbedder
from tests.test_consolidation import more_sessions
from tests.test_consolidation_fakes import SchemaLLM, add_segment, story


def _wait(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


class Recorder:
    def __init__(self, units=0, unit_seconds=0.05):
        self.triggers = []
        self.units = units
        self.unit_seconds = unit_seconds
        self.started = threading.Event()
        self.done_units = 0
        self.preempted = False

    def __call__(self, preempt, progress, trigger):
        self.triggers.append(trigger)
        self.started.set()
        for _ in range(self.units):
            if preempt.is_set():
                self.preempted = True
                return None
            time.sleep(self.unit_seconds)
            self.done_units += 1
        return None


def test_idle_trigger_waits_for_quiet_and_activity_pushes_it_back():
    rec = Recorder()
    svc = ConsolidationService(rec, idle_minutes=0.4 / 60, nightly=None).start()
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:      # the user keeps typing for a second
            svc.notify_activity()
            time.sleep(0.1)
        assert rec.triggers == []
        assert _wait(lambda: rec.triggers == ["idle"], 3.0)
    finally:
        svc.shutdown()


def test_a_message_preempts_a_running_consolidation():
    rec = Recorder(units=200, unit_seconds=0.02)
    svc = ConsolidationService(rec, idle_minutes=60, nightly=None).start()
    try:
        svc.run_now()
        assert rec.started.wait(3.0) and _wait(lambda: svc.running)
        svc.notify_activity()
        assert svc.preempt.is_set()
        assert _wait(lambda: not svc.running, 3.0)
        assert rec.preempted and rec.done_units < 200
    finally:
        svc.shutdown()


def test_nightly_job_is_a_cron_at_the_configured_time():
    svc = ConsolidationService(Recorder(), idle_minutes=60, nightly="02:45").start()
    try:
        trig = svc.scheduler.get_job("nightly").trigger
        fields = {f.name: str(f) for f in trig.fields}
        assert fields["hour"] == "2" and fields["minute"] == "45"
    finally:
        svc.shutdown()
    with pytest.raises(ValueError):
        parse_hhmm("25:00")


def test_the_service_consolidates_the_database_with_progress(tmp_path):
    db = tmp_path / "a.db"
    s = Store(db)
    story(s)
    s.close()
    events, reports = [], []
    run_once = store_runner(db, FakeEmbedder(), lambda: SchemaLLM(), Settings(min_similarity=0.05))
    svc = ConsolidationService(run_once, idle_minutes=60, nightly=None, on_progress=events.append,
                               on_done=reports.append).start()
    try:
        svc.run_now()
        assert _wait(lambda: reports, 10.0)
    finally:
        svc.shutdown()
    assert reports[0].status == "done" and {e.step for e in events} >= {"segment", "link", "running"}
    s = Store(db)
    assert s.count("summaries") > 0
    s.close()
    # no model yet: nothing runs
    assert store_runner(db, FakeEmbedder(), lambda: None)(threading.Event(), None, "idle") is None


def test_daemon_consolidates_after_idle_and_stops_on_request(tmp_path):
    from assistant.config import Config
    from assistant.wiring import Options

    db = tmp_path / "d.db"
    s = Store(db)
    more_sessions(s)
    s.close()
    reports, stop = [], threading.Event()
    loads = []

    def load():
        loads.append(1)
        return SchemaLLM()

    t = threading.Thread(target=run_daemon, args=(Options(db=db, model="fake", config=Config()),),
                         kwargs=dict(idle_minutes=0, nightly="03:30", check_seconds=0.2, load_model=load,
                                     embedder=FakeEmbedder(), on_report=reports.append, stop=stop))
    t.start()
    try:
        assert _wait(lambda: reports, 15.0)
        time.sleep(0.5)            # further checks find nothing to do and do not load the model again
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert reports[0].status == "done" and len(loads) == 1


def _cli(tmp_path, *args, **kw):
    from assistant.cli import cli

    return CliRunner().invoke(cli, ["--db", str(tmp_path / "c.db"), *args], catch_exceptions=False, **kw)


def test_consolidate_command_runs_with_bars_and_reports(tmp_path, monkeypatch):
    from assistant.cli import common as cli_common

    s = Store(tmp_path / "c.db")
    story(s)
    s.close()
    monkeypatch.setattr(cli_common, "load_llm", lambda obj, progress=None: SchemaLLM())
    monkeypatch.setattr(cli_common, "embedder", lambda: FakeEmbedder())
    r = _cli(tmp_path, "consolidate", "--status")
    assert r.output.startswith("Waiting to be tidied (it runs by itself while you are away;")
    assert re.search(r"\n  conversations to cut into memories +3\n", r.output), r.output
    r = _cli(tmp_path, "consolidate", "--json")
    assert r.exit_code == 0, r.output
    assert '"status": "done"' in r.output and "Done:" in r.output
    # no terminal here: one whole line per step, no bar cut at 80 columns
    assert "Segmenting sessions: 3 of 3\n" in r.output and "━" not in r.output and "…" not in r.output, r.output
    assert re.search(r"Done: \d+ units in \d+(\.\d)? s", r.output) and " in 0 s" not in r.output, r.output
    r = _cli(tmp_path, "consolidate")
    assert "Nothing to consolidate" in r.output
    r = _cli(tmp_path, "consolidate", "--status")
    assert r.output.startswith("Nothing is waiting: memory is tidy.\nLast runs:\n  run ") and "manual" in r.output
    r = _cli(tmp_path, "export", "journal")
    assert r.output.startswith("# Journal") and "## Monday 8 May 2023" in r.output


def test_memory_timeline_command_prints_the_chain(tmp_path):
    from memory.timelines import Link, LinkStore, segment_infos

    s = Store(tmp_path / "c.db")
    ids = story(s)
    segs = {k: add_segment(s, sid, topic=k) for k, sid in ids.items()}
    infos = segment_infos(s, list(segs.values()))
    with s.db.conn:
        LinkStore(s).add([Link(segs["s1"], segs["s3"], "Changed", infos[segs["s1"]].started_at,
                               infos[segs["s3"]].started_at)])
    s.close()
    r = _cli(tmp_path, "memory", "timeline", str(segs["s3"]))
    assert r.exit_code == 0, r.output
    out = r.output
    assert out.index("[8 May 2023]") < out.index("(Changed)") < out.index("▶ [20 Jun 2023]")
    assert "changed on 20 Jun 2023" in out
    r = _cli(tmp_path, "memory", "timeline", str(segs["s2"]))
    assert "no links yet" in r.output
    r = CliRunner().invoke(__import__("assistant.cli", fromlist=["cli"]).cli,
                           ["--db", str(tmp_path / "c.db"), "memory", "timeline", "999"])
    assert r.exit_code != 0 and "no memory 999" in r.output
