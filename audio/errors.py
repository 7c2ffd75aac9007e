"""Errors the audio layer raises; str(error) is one sentence that says what is wrong and what to do."""


class AudioError(Exception):
    """Base class. str(error) is a complete sentence for the user."""


class AudioUnavailable(AudioError):
    """No PortAudio library, no sound card or no input/output device."""


class WhisperModelMissing(AudioError):
    """The speech-recognition model is not installed or its files are damaged."""


class AudioFileError(AudioError):
    """A recording cannot be read or decoded."""
