"""The one place where components are built and connected."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from memory.embedder import SentenceTransformerEmbedder
from memory.bank import SegmentRecall
from memory.store import Store

from .config import Config
from .core import Assistant
from .engines import open_model
from .prefix_cache import PrefixCache
from .routes import default_routes


@dataclass
class Options:
    db: Path
    model: str           # name or path
    config: Config
    incognito: bool = False   # store nothing of the chat (assistant/incognito.py)


# An audio file with no row that is older than this was left by a kill between writing it and committing
# its row; a younger one may belong to a listener that is committing right now.
STRAY_CLIP_AGE = 600


def open_store(db: Path, *, quiet: bool = False) -> Store:
    """The database, opened as the app does at its start (migrated, repaired), with its folders and files
    made private again if something widened them (`store.notices` says what; printed unless quiet)."""
    import sys

    from audio.clips import sweep_orphans

    from . import paths
    from .privacy import make_database_private, make_private
    from .text import plural

    notices = make_private()     # first: SQLite gives the files it creates beside it the database's mode
    store = Store(db)            # refuses a file that is not the assistant's database, changing nothing
    notices += make_database_private(db)
    swept = sweep_orphans(store, paths.clips_dir(db), min_age_seconds=STRAY_CLIP_AGE)
    if swept:
        notices.append(f"Removed {plural(swept, 'audio file')} left behind by an interrupted recording.")
    store.notices = notices
    if not quiet:
        for notice in store.notices:
            print(f"Note: {notice}", file=sys.stderr)
    return store


def build(opts: Options, *, embedder=None, model=None, load: str = "now",
          progress: Callable[[int, int], None] | None = None,
          on_model_loaded: Callable[[object], None] | None = None,
          on_model_error: Callable[[BaseException], None] | None = None) -> Assistant:
    """An Assistant over `opts.db`. load="now" loads the model before returning;
    load="background" returns at once and loads it in a thread (the UI's way)."""
    store = open_store(opts.db, quiet=load == "background")   # the UI shows store.notices itself
    embedder = embedder or SentenceTransformerEmbedder()
    assistant = Assistant(store, None, opts.config, model=model, routes=default_routes(),
                          incognito=opts.incognito)
    assistant.recall = SegmentRecall(store, embedder, count_tokens=assistant.count_tokens)
    assistant.recall.warm()   # a large memory's index loads while the model does and the user types
    assistant.prefix_cache = PrefixCache.beside(opts.db)
    if model is not None:
        return assistant

    def load_it():
        try:
            m = open_model(opts.model, opts.config, progress=progress)
            assistant.set_model(m)
            if on_model_loaded:
                on_model_loaded(m)
        except BaseException as e:  # handed to whoever waits for the model
            assistant.set_model_error(e)
            if on_model_error:
                on_model_error(e)
            if load == "now":
                raise

    if load == "now":
        load_it()
    else:
        threading.Thread(target=load_it, name="model-load", daemon=True).start()
    return assistant


def build_memory_index(store: Store, embedder=None, mode: str = "fast") -> None:
    """Bring every derived index up to date with the raw turns: turn vectors (the provisional entries)
    and segments (used by imports and benchmarks; consolidation does the same and more)."""
    from memory.bank import segment_pending
    from memory.recall import TurnIndex

    embedder = embedder or SentenceTransformerEmbedder(background=False)
    TurnIndex(store, embedder).index_pending()
    segment_pending(store, embedder, mode=mode)


def count_recall_units(store: Store) -> int:
    """How many segments recall searches over (what "a populated memory" is counted in)."""
    return store.count("segments")
