"""The error hierarchy. str(error) is one sentence that says what is wrong and what to do."""
from audio.errors import AudioError
from memory.errors import MemoryError_


class AssistantError(Exception):
    """Base class for errors shown to the user as they are."""


class ModelError(AssistantError):
    """The chat model is missing, corrupt or cannot be loaded."""


class ServerError(ModelError):
    """The model server cannot be reached, refuses the key, lacks the model, times out or answers
    something that is not what was asked."""


class ConfigError(AssistantError):
    """The config file is invalid."""


class DatabasePathError(AssistantError):
    """--db (or ASSISTANT_DB) names a folder, or a file in a folder that does not exist."""


class GenerationError(AssistantError):
    """The model failed to produce a usable answer (e.g. invalid structured output)."""


USER_ERRORS = (AssistantError, MemoryError_, AudioError)
