"""The beginning that every chat prompt shares (instructions, the date, the running memory), saved as a
llama.cpp state beside the database, so that a new process (`assistant ask`, the chat starting) loads it in
a moment instead of evaluating it again (a few seconds on 2 cores).

One file, named for the model and its settings and for the exact tokens it holds; when the beginning changes
(the running memory was updated, a new day) or another model is used, the next save replaces it. The folder
(0700) and the file (0600) are private: the state encodes the running memory.
"""
from __future__ import annotations

import hashlib
import os
from array import array
from pathlib import Path

SUFFIX = ".llama-state"


class PrefixCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @classmethod
    def beside(cls, db: Path) -> "PrefixCache":
        """The cache of the database `db`: a folder next to it, named after it (as its clips' folder is)."""
        db = Path(db)
        return cls(db.parent / f"{db.stem}-prompt-cache")

    @staticmethod
    def usable(model) -> bool:
        return all(callable(getattr(model, name, None)) for name in ("identity", "save_state", "load_state"))

    def path_for(self, model, tokens: list[int]) -> Path:
        digest = hashlib.sha256(model.identity().encode("utf-8") + b"\0" + array("i", tokens).tobytes())
        return self.folder / f"{digest.hexdigest()[:32]}{SUFFIX}"

    def load(self, model, tokens: list[int]) -> bool:
        """Load the saved state of exactly `tokens` into the model's chat context; False when there is none
        (or it does not match)."""
        if not tokens or not self.usable(model):
            return False
        path = self.path_for(model, tokens)
        return path.is_file() and model.load_state(tokens, path)

    def save(self, model, tokens: list[int]) -> bool:
        """Save the model's cache of `tokens` (its chat context must begin with them; it keeps only them
        afterwards), replacing whatever the folder held. False when it could not be saved."""
        if not tokens or not self.usable(model):
            return False
        path = self.path_for(model, tokens)
        if path.is_file():
            return True
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".partial")
            old_umask = os.umask(0o077)
            try:
                ok = model.save_state(tokens, tmp)
            finally:
                os.umask(old_umask)
            if not ok:
                tmp.unlink(missing_ok=True)
                return False
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
            for other in self.folder.iterdir():
                if other != path and other.name.endswith((SUFFIX, SUFFIX + ".partial")):
                    other.unlink(missing_ok=True)
        except OSError:
            return False          # a cache: the next answer simply evaluates the prompt
        return True

    def clear(self) -> None:
        """Remove every saved state (after forgetting, so that no copy of the old running memory stays)."""
        if self.folder.is_dir():
            for f in self.folder.iterdir():
                if f.name.endswith((SUFFIX, SUFFIX + ".partial")):
                    f.unlink(missing_ok=True)
