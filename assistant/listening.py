"""Audio for a front end: live listening that remembers what is heard, push-to-talk questions, and
playing a clip an answer cited. Built from the Assistant's config; the sound card, the speech model and
the player can be handed in (tests, other front ends).

Everything that blocks (opening the microphone, loading Whisper, transcribing, playing) is a plain
synchronous call: a UI runs it in a worker thread.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import paths
from .errors import AssistantError


def parse_device(value) -> int | str | None:
    """A device from the config or the command line: "" -> the system's default, "3" -> index 3."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    return int(text) if text.isdigit() else text


class LiveListening:
    """Listens to the microphone and remembers what is heard: a `Listener` cuts speech into
    utterances (its sounddevice callback only queues blocks), a `LiveBatcher` transcribes them in
    batches and an `AudioIngestor` stores clips and transcripts in one audio session and indexes them.

    start() opens the microphone (AudioUnavailable, one sentence, without PortAudio or a microphone) and
    loads the speech model; pause() closes the microphone and stores what was heard so far; resume()
    opens it again in the same session; stop() ends the session. Each blocks: call them from a worker
    thread. `status` (level, seconds, speech or silence) is read by an indicator at any time."""

    def __init__(self, store, transcriber, clips_dir: Path, *, index: Callable[[], object] | None = None,
                 device=None, title: str | None = None, on_clip: Callable[[object], None] | None = None,
                 make_listener: Callable[..., object] | None = None, close_store: bool = False):
        self.store = store
        self.transcriber = transcriber
        self.clips_dir = Path(clips_dir)
        self.index = index
        self.device = device
        self.title = title
        self.on_clip = on_clip
        self.make_listener = make_listener
        self.close_store = close_store
        self.session_id: int | None = None
        self.paused = False
        self.stopped = False
        self.clips: list = []
        self._ingestor = None
        self._batcher = None
        self._listener = None
        self._lock = threading.Lock()

    # -- what an indicator reads ------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """The microphone is open."""
        return self._listener is not None and not self.paused and not self.stopped

    @property
    def status(self):
        """The Listener's ListenStatus (seconds, level_db, in_speech, utterances), or None before start."""
        return self._listener.status if self._listener is not None else None

    @property
    def waiting(self) -> int:
        """Utterances heard but not transcribed yet."""
        return len(self._batcher.pending) if self._batcher is not None else 0

    @property
    def errors(self) -> list:
        """Errors raised while storing clips (listening goes on)."""
        return self._listener.errors if self._listener is not None else []

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> "LiveListening":
        from audio.ingest import AudioIngestor, LiveBatcher

        with self._lock:
            if self._listener is not None:
                return self
            ingestor = AudioIngestor(self.store, self.transcriber, self.clips_dir, index=self.index)
            session_id = ingestor.start_session(datetime.now(timezone.utc), self.title)
            batcher = LiveBatcher(ingestor, session_id, on_clip=self._clip_stored)
            listener = self._new_listener(batcher)
            try:
                listener.start()            # the microphone first: no speech model loaded for nothing
            except BaseException:
                ingestor.end_session(session_id)
                self._release()
                raise
            try:
                self.transcriber.load()
            except BaseException:
                listener.stop()
                batcher.pending.clear()
                ingestor.end_session(session_id)
                self._release()
                raise
            self._ingestor, self._batcher, self._listener = ingestor, batcher, listener
            self.session_id = session_id
            self.paused = False
            return self

    def pause(self) -> None:
        """Close the microphone and store what was heard so far (transcribing takes a moment)."""
        with self._lock:
            if self._listener is None or self.paused or self.stopped:
                return
            self.paused = True
            self._listener.stop()
            self._batcher.flush()

    def resume(self) -> None:
        """Open the microphone again; what is heard goes on into the same audio session."""
        with self._lock:
            if self._listener is None or not self.paused or self.stopped:
                return
            self._listener.start()
            self.paused = False

    def stop(self) -> None:
        """Close the microphone, store the last words and end the session (dropped if nothing was heard)."""
        with self._lock:
            if self.stopped:
                return
            self.stopped = True
            try:
                if self._listener is not None:
                    if not self.paused:
                        self._listener.stop()
                    self._batcher.flush()
                    self._ingestor.end_session(self.session_id)
            finally:
                self._release()

    # -- inside ---------------------------------------------------------------------------------------
    def _new_listener(self, batcher):
        if self.make_listener is not None:
            return self.make_listener(batcher.add, on_tick=batcher.tick, device=self.device)
        from audio.capture import Listener

        return Listener(batcher.add, on_tick=batcher.tick, device=self.device)

    def _clip_stored(self, clip) -> None:
        self.clips.append(clip)
        if self._listener is not None:
            self._listener.status.last_text = clip.text
        if self.on_clip is not None:
            self.on_clip(clip)

    def _release(self) -> None:
        if self.close_store:
            self.store.close()
            self.close_store = False


class AudioServices:
    """What a front end needs for audio, from an Assistant: `listening()`, `push_to_talk()`, `play()`.

    The speech model (config `whisper_model`) is created once and shared; the input device is config
    `audio_device`. Live listening opens its own database connection (it writes from its own thread)
    and indexes transcripts with the Assistant's embedder. Hand in `make_listener`, `make_push_to_talk`,
    `transcriber` or `player` to replace the sound card, the speech model or the speakers."""

    def __init__(self, assistant, *, clips_dir: Path | None = None, transcriber=None,
                 make_listener: Callable[..., object] | None = None,
                 make_push_to_talk: Callable[[object], object] | None = None,
                 player: Callable[..., object] | None = None, open_store: Callable[[Path], object] | None = None):
        self.assistant = assistant
        config = assistant.config
        self.device = parse_device(getattr(config, "audio_device", ""))
        self.whisper = getattr(config, "whisper_model", "tiny.en") or "tiny.en"
        self.clips_dir = Path(clips_dir) if clips_dir is not None else paths.clips_dir(Path(assistant.store.path))
        self.make_listener = make_listener
        self.make_push_to_talk = make_push_to_talk
        self.player = player
        self.open_store = open_store
        self._transcriber = transcriber
        self._lock = threading.Lock()

    @property
    def transcriber(self):
        with self._lock:
            if self._transcriber is None:
                from audio.transcribe import Transcriber

                self._transcriber = Transcriber(self.whisper, models_dir=paths.models_dir())
            return self._transcriber

    def warm(self) -> str:
        """Load the speech model now (blocking); returns its notice ("" or why it runs on the CPU)."""
        t = self.transcriber
        load = getattr(t, "load", None)
        if load is not None:
            load()
        return getattr(t, "notice", "") or ""

    def listening(self, *, on_clip: Callable[[object], None] | None = None,
                  title: str | None = None) -> LiveListening:
        """A LiveListening over the Assistant's database, not started yet."""
        if self.open_store is not None:
            store = self.open_store(self.assistant.store.path)
        else:
            from memory.store import Store

            store = Store(self.assistant.store.path, worker=True)
        index = None
        embedder = getattr(getattr(self.assistant, "recall", None), "embedder", None)
        if embedder is not None:
            from memory.recall import TurnIndex

            index = TurnIndex(store, embedder).index_pending
        return LiveListening(store, self.transcriber, self.clips_dir, index=index, device=self.device,
                             title=title, on_clip=on_clip, make_listener=self.make_listener, close_store=True)

    def push_to_talk(self, max_seconds: float = 60.0) -> "VoiceInput":
        """A push-to-talk recorder: start() opens the microphone, stop() returns the transcribed
        VoiceQuestion (see audio.voice.PushToTalk)."""
        if self.make_push_to_talk is not None:
            return VoiceInput(self.make_push_to_talk(self.transcriber))
        from audio.voice import PushToTalk

        return VoiceInput(PushToTalk(self.transcriber, device=self.device, max_seconds=max_seconds))

    def clip(self, clip_id: int):
        """The stored clip (audio.clips.Clip), or AssistantError when it is gone."""
        from audio.clips import ClipStore

        # the UI's threads read through their own connection, never inside the answer's transaction
        clip = ClipStore(self.assistant.store.reader()).get(clip_id)
        if clip is None:
            raise AssistantError(f"Clip {clip_id} is no longer stored; it may have been forgotten.")
        return clip

    def play(self, clip_id: int) -> float:
        """Play a clip through the speakers until it ends; returns its length in seconds.
        AudioUnavailable (one sentence) without PortAudio or an output device."""
        from audio.errors import AudioUnavailable

        clip = self.clip(clip_id)
        if self.player is None:
            from audio.clips import play_clip as player
        else:
            player = self.player
        try:
            return player(clip.path)
        except AudioUnavailable as e:   # the sentence may say "open its file": say where it is
            raise AudioUnavailable(f"{e} The clip's file is {clip.path}.") from e


class VoiceInput:
    """A PushToTalk whose "no microphone" sentence speaks of voice questions (the audio layer's
    sentences suggest ingesting a recording, which is advice for listening)."""

    def __init__(self, ptt):
        self.ptt = ptt

    def start(self) -> None:
        from audio.capture import NO_INPUT, NO_PORTAUDIO
        from audio.errors import AudioUnavailable

        try:
            self.ptt.start()
        except AudioUnavailable as e:
            if str(e) == NO_INPUT:
                raise AudioUnavailable("No microphone was found on this computer; connect one to ask by "
                                       "voice, or type your question.") from e
            if str(e) == NO_PORTAUDIO:
                raise AudioUnavailable("Cannot use the sound card: the PortAudio library is not installed "
                                       "(on Debian or Ubuntu: sudo apt-get install libportaudio2); type "
                                       "your question instead.") from e
            raise

    def stop(self):
        return self.ptt.stop()

    def cancel(self) -> None:
        self.ptt.cancel()

    @property
    def seconds(self) -> float:
        return self.ptt.seconds

    @property
    def level_db(self) -> float:
        return self.ptt.level_db

    @property
    def full(self) -> bool:
        """The recording reached its longest length (what was said so far is kept)."""
        full = getattr(getattr(self.ptt, "recorder", None), "full", None)
        return bool(full is not None and full.is_set())
