"""`assistant consolidate`, `assistant daemon` and `assistant memory timeline ID`."""
from __future__ import annotations

import json
import signal
import sys
import threading

import click

from . import common
from .common import cli, memory_group as memory
from ..text import plural


def _background_threads() -> None:
    """OpenMP threads that sleep instead of spinning while they wait: on a busy machine spinning made
    llama.cpp 3-5x slower (measured), and consolidation should leave the cores to what the user does.
    Only takes effect before the OpenMP runtime starts (before the model and the embedder load)."""
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class _Bars:
    """One rich progress bar per consolidation step on stderr; where stderr is no terminal (a pipe, a log),
    one plain line per step as it ends instead (a bar drawn there is cut at 80 columns: "1/1 0…")."""

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = common.stderr_console()
        self.bar = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("[dim]{task.fields[label]}"),
                            console=console, disable=not console.is_interactive)
        self.plain = not console.is_interactive
        self.tasks = {}
        self.ended: set = set()

    def __call__(self, p) -> None:
        if p.step not in self.tasks:
            if p.total == 0:
                return
            self.tasks[p.step] = self.bar.add_task(p.title, total=p.total, label="")
        self.bar.update(self.tasks[p.step], completed=p.done, total=max(p.total, 1), label=p.label[:40])
        if self.plain and p.done >= p.total and p.step not in self.ended:
            self.ended.add(p.step)
            click.echo(f"{p.title}: {p.done} of {p.total}", err=True)

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc):
        self.bar.stop()


# what each step of `Consolidator.pending` counts, as `--status` says it
WAITING = {"index": "messages to index for search", "segment": "conversations to cut into memories",
           "summary": "batches of conversations to summarize", "link": "conversations to link into timelines",
           "running": "batches to fold into the memory carried into every chat",
           "day": "batches of days for the journal", "week": "batches of weeks for the journal",
           "month": "batches of months for the journal"}


@cli.command("consolidate")
@click.option("--status", "status_only", is_flag=True, help="Show what is waiting and the last runs; change nothing.")
@click.option("--max-minutes", type=click.FloatRange(min=0), metavar="M",
              help="Stop (between units of work) after M minutes; the next run continues.")
@click.option("--segment-mode", type=click.Choice(["fast", "llm"]),
              help="How sessions are cut into segments: fast (embeddings) or llm (one call a session).")
@click.option("--json", "as_json", is_flag=True, help="Print the run's report as JSON on stdout.")
@click.pass_obj
def consolidate(obj, status_only: bool, max_minutes: float | None, segment_mode: str | None, as_json: bool):
    """Tidy memory now: segment, link into timelines, summarize.

    This is what runs by itself while you are away. Ctrl+C stops it after the current unit of work;
    everything finished stays finished and the next run picks up the rest.
    """
    from memory.consolidate import Consolidator, last_runs

    from .common import model_progress
    from ..scheduler import settings_from
    from ..wiring import open_store

    store = open_store(obj.db)
    if status_only:
        pending = Consolidator(store, None, None).pending(model_steps=True)
        waiting = [(WAITING.get(k, k), v) for k, v in pending.items() if v]
        if waiting:
            click.echo("Waiting to be tidied (it runs by itself while you are away; `assistant consolidate` "
                       "runs it now):")
            width = max(len(what) for what, _ in waiting)
            for what, n in waiting:
                click.echo(f"  {what:<{width}}  {n:>6,}")
        else:
            click.echo("Nothing is waiting: memory is tidy.")
        runs = last_runs(store)
        if runs:
            click.echo("Last runs:")
        for r in runs:
            click.echo(f"  run {r['id']:>4}  {r['started_at'][:16].replace('T', ' ')}  {r['trigger']:<7} "
                       f"{r['status']:<11} {plural(r['units'], 'unit'):>10}  "
                       f"{plural(r['llm_calls'], 'model call'):>16}  {r['seconds'] or 0:7.1f} s")
        store.close()
        return
    _background_threads()
    settings = settings_from(obj.config)
    if segment_mode:
        settings.segment_mode = segment_mode
    embedder = common.embedder()
    if not Consolidator(store, embedder, None, settings).has_work():
        click.echo("Nothing to consolidate.", err=True)
        store.close()
        return
    with model_progress() as progress:
        model = common.load_llm(obj, progress)
    preempt = threading.Event()

    def on_sigint(*_):
        if preempt.is_set():
            raise KeyboardInterrupt
        preempt.set()
        click.echo("\nStopping after the current unit of work (Ctrl+C again to stop at once; "
                   "nothing finished is lost).", err=True)

    old = signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigint)
    try:
        with _Bars() as bars:
            report = Consolidator(store, embedder, model, settings).run(
                preempt=preempt, progress=bars, trigger="manual",
                max_seconds=max_minutes * 60 if max_minutes is not None else None)
    finally:
        signal.signal(signal.SIGINT, old)
        store.close()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    done = sum(report.units.values())
    msg = {"done": "Done", "preempted": "Stopped", "deadline": "Time is up", "busy": "Another consolidation "
           "is running (the app or the daemon); nothing done", "error": "Failed"}[report.status]
    took = f"{report.seconds:.1f}" if report.seconds < 10 else f"{report.seconds:.0f}"   # never "in 0 s"
    click.echo(f"{msg}: {plural(done, 'unit')} in {took} s, {plural(report.llm_calls, 'model call')} "
               f"({report.prompt_tokens} prompt + {plural(report.completion_tokens, 'generated token')})."
               + (" Run `assistant consolidate` again to continue." if report.remaining else ""), err=True)
    if report.status in ("error", "busy"):
        sys.exit(1)

@cli.command("daemon")
@click.option("--idle-minutes", type=click.FloatRange(min=0), metavar="M",
              help="Consolidate once no new message has arrived for M minutes (default 10).")
@click.option("--at", "nightly", metavar="HH:MM", help="Also consolidate every night at this time (default 03:30).")
@click.option("--no-nightly", is_flag=True, help="Only consolidate after idle time.")
@click.option("--check-seconds", type=click.FloatRange(min=1), default=60, show_default=True,
              help="How often to look for idle time.")
@click.pass_obj
def daemon(obj, idle_minutes: float | None, nightly: str | None, no_nightly: bool, check_seconds: float):
    """Consolidate memory in the background, without the chat window.

    Meant to run as a systemd user service (`assistant service install` writes it). Stops on SIGTERM
    or Ctrl+C, after the current unit of work.
    """
    import logging

    from ..scheduler import DEFAULT_IDLE_MINUTES, DEFAULT_NIGHTLY, parse_hhmm, run_daemon

    _background_threads()
    cfg = obj.config
    idle = idle_minutes if idle_minutes is not None else getattr(cfg, "consolidate_idle_minutes",
                                                                 DEFAULT_IDLE_MINUTES)
    at = None if no_nightly else (nightly or getattr(cfg, "consolidate_at", DEFAULT_NIGHTLY))
    if at:
        try:
            parse_hhmm(at)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--at")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # the scheduler's own bookkeeping ("Adding job tentatively", "Running job ...") is not news for the user:
    # only its warnings and errors, besides the one-line reports below
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"Consolidating {obj.db} after {idle:g} idle minutes"
               + (f" and nightly at {at}" if at else "") + ". Stop with Ctrl+C.", err=True)

    def report(r):
        click.echo(f"{r.status}: {plural(sum(r.units.values()), 'unit')}, {plural(r.llm_calls, 'model call')}, "
                   f"{r.seconds:.0f} s",
                   err=True)

    run_daemon(obj.options(), idle_minutes=idle, nightly=at, check_seconds=check_seconds,
               on_report=report, stop=stop)

@memory.command("timeline")
@click.argument("memory_id", type=int, metavar="ID")
@click.option("--full", is_flag=True, help="Print each memory's whole text.")
@click.option("--depth", type=click.IntRange(1, 6), default=3, show_default=True,
              help="How many links to follow each way.")
@click.pass_obj
def timeline(obj, memory_id: int, full: bool, depth: int):
    """Print the timelines through memory ID (a segment id, as `ask --show-memories` shows)."""
    from memory.clock import human_date
    from memory.timelines import LinkStore, clip_words, segment_infos, timeline_around

    from ..wiring import open_store

    store = open_store(obj.db)
    try:
        infos = segment_infos(store, [memory_id])
        if memory_id not in infos:
            raise click.ClickException(f"There is no memory {memory_id}; find memories with "
                                       "`assistant memory search`.")
        tls = timeline_around(store, memory_id, max_depth=depth)
        ids = {m for t in tls for m in t.members}
        infos = segment_infos(store, list(ids))
        changed = LinkStore(store).changed_by(list(ids))
        if all(len(t.members) == 1 for t in tls):
            click.echo(f"Memory {memory_id} has no links yet (`assistant consolidate` makes them).\n")
        for n, t in enumerate(tls, 1):
            if len(tls) > 1:
                click.echo(click.style(f"Timeline {n}", bold=True))
            for i, m in enumerate(t.members):
                s = infos[m]
                if i:
                    click.echo(f"    │\n    └─({t.labels[i - 1]})─▶")
                mark = "▶ " if m == memory_id else "  "
                hist = click.style(f"  (changed on {human_date(changed[m].later_at)})", fg="yellow") \
                    if m in changed else ""
                click.echo(f"{mark}[{human_date(s.started_at)}] memory {m}"
                           + (f" · {s.topic}" if s.topic else "") + hist)
                body = s.text if full else clip_words(" / ".join(s.text.splitlines()), 40)
                for line in body.splitlines():
                    click.echo(f"      {line}")
            click.echo()
    finally:
        store.close()
