"""Errors the memory layer raises; each carries one sentence a user can act on."""


class MemoryError_(Exception):
    """Base class. str(error) is a complete sentence for the user."""


class StoreError(MemoryError_):
    """The database cannot be opened or written."""


class ImportFormatError(MemoryError_):
    """An import file is malformed; the message names the position."""


class NotFoundError(MemoryError_):
    """A memory, session or pinned fact the user named does not exist."""
