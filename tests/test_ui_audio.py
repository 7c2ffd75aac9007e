"""Audio in the terminal UI: listening (opt-in, indicator, pause), cited clips that play, push-to-talk.

There is no sound card here: the fast tests hand the app fakes in place of the microphone (a Listener
that hears what the test says), the speech model and the speakers; the rest is the real code (the
ingest path stores clips and transcripts in the real SQLite file). The last test is the real thing
without a microphone: a recording spoken by espeak-ng, transcribed by Whisper, found by "what did I
miss" with the real embedder."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from assistant.config import Config
from assistant.listening import AudioServices, LiveListening
from audio.capture import NO_INPUT, NO_OUTPUT, ListenStatus
from audio.clips import ClipStore
from audio.errors import AudioUnavailable
from audio.transcribe import Segment, Transcript
from audio.vad import SAMPLE_RATE, Utterance
from tests.fakes import FakeLLM
from tests.test_ui import SIZE, answered, make_assistant, notifications, send, user_texts, wait_until
from ui.app import AssistantApp
from ui.controls import ListeningControl, VoiceControl
from ui.screens.help import HelpScreen
from ui.widgets.clips import ClipList

UTC = timezone.utc


@pytest.fixture
def db(tmp_path):
    return tmp_path / "data" / "ui.db"


# -- fakes for the hardware -------------------------------------------------------------------------
class FakeTranscriber:
    """Whisper stand-in: hands out the scripted texts in order."""

    language = "en"
    notice = ""

    def __init__(self, texts=()):
        self.texts = list(texts)
        self.loaded = 0

    def load(self):
        self.loaded += 1

    def transcribe(self, audio, **kwargs) -> Transcript:
        duration = len(audio) / SAMPLE_RATE
        text = self.texts.pop(0) if self.texts else ""
        return Transcript([Segment(0.0, duration, text)] if text else [], "en", duration)


class FakeListener:
    """A microphone that hears what the test says (`hear`); the same interface as audio.capture.Listener."""

    made: list["FakeListener"] = []

    def __init__(self, on_utterance, *, on_tick=None, device=None):
        self.on_utterance = on_utterance
        self.on_tick = on_tick
        self.device = device
        self.status = ListenStatus(started_at=datetime.now(UTC))
        self.errors: list = []
        self.open = False
        self.starts = 0
        self.stops = 0
        self._pos = 0
        FakeListener.made.append(self)

    def start(self):
        self.open = True
        self.starts += 1
        self.status.level_db = -18.0
        return self

    def stop(self):
        self.open = False
        self.stops += 1

    def hear(self, seconds: float = 1.5) -> None:
        n = int(seconds * SAMPLE_RATE)
        audio = (np.sin(np.arange(n) / 8.0) * 0.2).astype(np.float32)
        u = Utterance(self._pos, self._pos + n, audio)
        self._pos += n
        self.status.seconds += seconds
        self.status.utterances += 1
        self.on_utterance(u, datetime.now(UTC))


class NoMicrophone(FakeListener):
    def start(self):
        raise AudioUnavailable(NO_INPUT)


class FakePushToTalk:
    def __init__(self, text="", *, fail: BaseException | None = None):
        self.text = text
        self.fail = fail
        self.recording = False
        self.cancelled = False
        self.seconds = 0.0
        self.level_db = -120.0

    def start(self):
        if self.fail is not None:
            raise self.fail
        self.recording = True
        self.seconds, self.level_db = 2.0, -15.0

    def stop(self):
        from types import SimpleNamespace

        self.recording = False
        return SimpleNamespace(text=self.text, seconds=self.seconds)

    def cancel(self):
        self.recording = False
        self.cancelled = True


class Player:
    """Speakers: records what it was asked to play; with `gate`, a clip plays until the gate opens."""

    def __init__(self, fail: BaseException | None = None, gate: threading.Event | None = None):
        self.played: list[str] = []
        self.fail = fail
        self.gate = gate

    def __call__(self, path):
        self.played.append(str(path))
        if self.fail is not None:
            raise self.fail
        if self.gate is not None:
            self.gate.wait(10)
        return 1.0


def has_microphone() -> bool:
    try:
        import sounddevice as sd

        return any(d.get("max_input_channels", 0) for d in sd.query_devices())
    except OSError:   # no PortAudio
        return False


async def voice_answered(pilot, text: str, timeout: float = 10.0):
    """Wait until the voice question `text` was sent and its answer is complete (stored)."""
    screen = pilot.app.chat
    await wait_until(pilot, lambda: text in user_texts(screen), timeout, "the voice question")
    await wait_until(pilot, lambda: screen.reply is not None and not screen.reply.streaming
                     and screen.idle.is_set() and not screen.answering, timeout, "its answer")
    await pilot.pause()
    return screen.reply


def services(a, tmp_path, **kw) -> AudioServices:
    kw.setdefault("transcriber", FakeTranscriber())
    return AudioServices(a, clips_dir=tmp_path / "clips", **kw)


def status_text(app) -> str:
    return str(app.chat.status.render())


def audio_sessions(store) -> list:
    return [s for s in store.sessions() if s.source == "audio"]


# -- listening --------------------------------------------------------------------------------------
async def test_listening_without_a_microphone_notifies_once_and_the_app_goes_on(db, tmp_path):
    a = make_assistant(db, FakeLLM(replies=["Still here."]))
    app = AssistantApp(assistant=a, audio=services(a, tmp_path, make_listener=NoMicrophone))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: notifications(app, "error"), what="the notification")
        await wait_until(pilot, lambda: app.listening.state == ListeningControl.OFF, what="listening off")
        await pilot.pause(0.1)
        assert notifications(app, "error") == [NO_INPUT]
        assert app.chat.status.listening == "" and "listening" not in status_text(app)
        assert app.listening.session is None
        await send(pilot, "are you still there")
        msg = await answered(pilot)
        assert msg.shown_text == "Still here."
        assert len(notifications(app, "error")) == 1
    assert audio_sessions(a.store) == []    # the session opened for listening was dropped
    a.close()


async def test_this_machine_has_no_microphone_the_real_path(db, tmp_path):
    """The real Listener and sounddevice: no PortAudio or no microphone gives one sentence."""
    if has_microphone():
        pytest.skip("this machine has a microphone")
    a = make_assistant(db, FakeLLM())
    app = AssistantApp(assistant=a, audio=services(a, tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: notifications(app, "error"), what="the notification")
        (note,) = notifications(app, "error")
        assert "PortAudio" in note or "microphone" in note
        assert app.is_running and app.listening.state == ListeningControl.OFF
    a.close()


async def test_listening_shows_the_indicator_pauses_and_stores_what_is_heard(db, tmp_path):
    FakeListener.made.clear()
    a = make_assistant(db, FakeLLM())
    transcriber = FakeTranscriber(["The plumber comes at four.", "Lunch is ready."])
    app = AssistantApp(assistant=a, audio=services(a, tmp_path, make_listener=FakeListener,
                                                   transcriber=transcriber))
    async with app.run_test(size=SIZE) as pilot:
        assert "listening" not in status_text(app)   # opt-in: off until asked
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: app.listening.state == ListeningControl.ON, what="listening")
        (mic,) = FakeListener.made
        assert mic.open and transcriber.loaded
        await wait_until(pilot, lambda: "● listening" in status_text(app), what="the indicator")
        assert "▮" in status_text(app)   # the level
        assert app.focused is app.chat.prompt   # typing goes on
        mic.hear()
        # Pausing closes the microphone and stores what was heard (transcribed in a batch).
        await pilot.press("ctrl+l")
        assert "❚❚ paused" in status_text(app)
        await wait_until(pilot, lambda: not mic.open and len(app.listening.session.clips) == 1, what="stored")
        session = app.listening.session
        await pilot.pause(0.3)
        assert "● listening" not in status_text(app)
        clips = ClipStore(a.store).recent()
        assert [c.text for c in clips] == ["The plumber comes at four."]
        assert clips[0].path.endswith(".flac") and (tmp_path / "clips") in __import__("pathlib").Path(
            clips[0].path).parents
        turn = a.store.turns_by_ids([clips[0].turn_id])[0]
        assert (turn.source, turn.role) == ("audio", "user")
        # Resuming opens the microphone again in the same audio session.
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: mic.open and mic.starts == 2, what="resumed")
        await wait_until(pilot, lambda: "● listening" in status_text(app), what="the indicator again")
        mic.hear()
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running, what="quit")
    # Quitting stored the last words and ended the session.
    assert session.stopped and not mic.open
    assert [c.text for c in ClipStore(a.store).recent()] == ["Lunch is ready.", "The plumber comes at four."]
    assert len(audio_sessions(a.store)) == 1 and audio_sessions(a.store)[0].id == session.session_id
    assert not app.background_busy()
    a.close()


async def test_listen_in_the_config_starts_at_launch(db, tmp_path):
    FakeListener.made.clear()
    a = make_assistant(db, FakeLLM(), config=Config(listen=True))
    app = AssistantApp(assistant=a, audio=services(a, tmp_path, make_listener=FakeListener))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "● listening" in status_text(app), what="listening at launch")
        assert FakeListener.made[0].open
        app.chat.action_stop_listening()
        await wait_until(pilot, lambda: not FakeListener.made[0].open, what="stopped")
        await wait_until(pilot, lambda: app.listening.session is None, what="no session")
        assert "listening" not in status_text(app) and "paused" not in status_text(app)
    a.close()


async def test_listen_in_the_config_without_a_microphone_says_so_once(db, tmp_path):
    a = make_assistant(db, FakeLLM(), config=Config(listen=True))
    app = AssistantApp(assistant=a, audio=services(a, tmp_path, make_listener=NoMicrophone))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: notifications(app, "error"), what="the notification")
        await pilot.pause(0.2)
        (note,) = notifications(app, "error")
        assert "turned on in the config" in note and "No microphone" in note
        assert app.focused is app.chat.prompt
    a.close()


# -- cited clips ------------------------------------------------------------------------------------
def heard(store, clips_dir, items):
    """Store clips as if heard: (minutes ago, seconds long, text)."""
    now = datetime.now(UTC)
    cs = ClipStore(store, clips_dir)
    sid = store.new_session("Listening", source="audio", started_at=(now - timedelta(hours=2)).isoformat())
    out = []
    for minutes, seconds, text in items:
        audio = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
        out.append(cs.add(sid, audio, now - timedelta(minutes=minutes),
                          Transcript([Segment(0, seconds, text)], "en", seconds)))
    return out


def hhmm(ts: str) -> str:
    return datetime.fromisoformat(ts).astimezone().strftime("%H:%M")


async def test_answer_lists_the_cited_clips_and_enter_plays_one(db, tmp_path):
    a = make_assistant(db, FakeLLM(replies=["- the server migration is finished\n- lunch at noon"]))
    clips = heard(a.store, tmp_path / "clips", [
        (45, 90, "Hello team, the server migration is finished and everything is running again on the "
                 "new machines."),
        (10, 4, "Lunch is at noon in the big room."),
        (300, 3, "This was long ago."),
    ])
    player = Player(gate=threading.Event())
    app = AssistantApp(assistant=a, audio=services(a, tmp_path, player=player))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "what did I miss in the last hour?")
        msg = await answered(pilot)
        assert "server migration" in msg.shown_text
        assert [m.kind for m in msg.cited_clips] == ["audio", "audio"]
        clip_list = msg.clip_list
        assert clip_list is not None and clip_list.display
        assert clip_list.clip_ids == [clips[0].id, clips[1].id]
        lines = clip_list.lines()
        first, second = clips[0], clips[1]
        assert f"{hhmm(first.started_at)}–{hhmm(first.ended_at)}" in lines[0]
        assert "Hello team, the server migration" in lines[0] and "…" in lines[0]   # opening words
        assert f"{hhmm(second.started_at)}–{hhmm(second.ended_at)}" in lines[1] and "Lunch is at noon" in lines[1]
        assert "heard 2 clips · ctrl+o goes to them" in str(msg.query_one(".clips-title").render())
        assert "recalled" not in msg.memories_text   # the clips are not listed twice
        assert any("Audio heard" in n for n in notifications(app, "warning"))
        # ctrl+o goes to the clips; down, Enter plays the second one.
        await pilot.press("ctrl+o")
        assert app.focused is clip_list
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: player.played, what="the player")
        assert player.played == [second.path]
        await wait_until(pilot, lambda: "playing" in clip_list.lines()[1], what="the clip marked playing")
        assert "playing" not in clip_list.lines()[0]
        player.gate.set()   # the clip ends
        await wait_until(pilot, lambda: not any("playing" in line for line in clip_list.lines()), what="the end")
        await pilot.press("up", "enter")
        await wait_until(pilot, lambda: len(player.played) == 2, what="the player again")
        assert player.played[1] == first.path
        # Back to typing.
        await pilot.press("tab")
        assert app.focused is app.chat.prompt
    a.close()


async def test_playing_without_speakers_notifies(db, tmp_path):
    a = make_assistant(db, FakeLLM(replies=["- lunch"]))
    (clip,) = heard(a.store, tmp_path / "clips", [(5, 2, "Lunch is at noon.")])
    player = Player(fail=AudioUnavailable(NO_OUTPUT))
    app = AssistantApp(assistant=a, audio=services(a, tmp_path, player=player))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "what did I miss in the last hour?")
        await answered(pilot)
        await pilot.press("ctrl+o", "enter")
        await wait_until(pilot, lambda: notifications(app, "error"), what="the notification")
        (note,) = notifications(app, "error")
        assert note.startswith(NO_OUTPUT) and note.endswith(f"The clip's file is {clip.path}.")
        assert app.is_running
    a.close()


async def test_no_clips_no_clip_list(db, tmp_path):
    a = make_assistant(db, FakeLLM(replies=["Noted.", "Rex."]))
    a.answer(None, "my dog is called Rex")
    app = AssistantApp(assistant=a, audio=services(a, tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "what is my dog called")
        msg = await answered(pilot)
        assert "recalled" in msg.memories_text and msg.clip_list is None
        assert not app.chat.query(ClipList)
        await pilot.press("ctrl+o")   # nothing to go to
        assert app.focused is app.chat.prompt
        keys = {k.key for k in app.chat.query_one("Footer").query("FooterKey")}
        assert "ctrl+o" not in keys
    a.close()


# -- push-to-talk -----------------------------------------------------------------------------------
async def test_push_to_talk_without_a_microphone_notifies(db, tmp_path):
    a = make_assistant(db, FakeLLM())
    ptt = FakePushToTalk(fail=AudioUnavailable(NO_INPUT))
    app = AssistantApp(assistant=a, audio=services(a, tmp_path, make_push_to_talk=lambda t: ptt))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: notifications(app, "error"), what="the notification")
        await pilot.pause(0.1)
        assert notifications(app, "error") == [
            "No microphone was found on this computer; connect one to ask by voice, or type your question."]
        assert app.voice.state == VoiceControl.IDLE and app.chat.status.voice == ""
        assert "rec" not in status_text(app)
        await send(pilot, "typing still works")
        await answered(pilot)
        assert user_texts(app.chat) == ["typing still works"]
    a.close()


async def test_push_to_talk_on_this_machine_the_real_path(db, tmp_path):
    """The real PushToTalk and sounddevice: without a microphone, one sentence about voice questions."""
    if has_microphone():
        pytest.skip("this machine has a microphone")
    a = make_assistant(db, FakeLLM())
    app = AssistantApp(assistant=a, audio=services(a, tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: notifications(app, "error"), what="the notification")
        (note,) = notifications(app, "error")
        assert "type your question" in note
        assert app.voice.state == VoiceControl.IDLE and app.is_running
    a.close()


async def test_push_to_talk_sends_the_transcribed_question(db, tmp_path):
    a = make_assistant(db, FakeLLM(replies=["Noted.", "Your dog is Rex."]))
    a.answer(None, "my dog is called Rex")
    ptt = FakePushToTalk("What is my dog called?")
    app = AssistantApp(assistant=a, audio=services(a, tmp_path, make_push_to_talk=lambda t: ptt))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.voice.state == VoiceControl.RECORDING, what="recording")
        await wait_until(pilot, lambda: "rec 0:02" in status_text(app), what="seconds in the status bar")
        assert "▮" in status_text(app) and ptt.recording
        await pilot.press("ctrl+r")
        msg = await voice_answered(pilot, "What is my dog called?")
        assert user_texts(app.chat) == ["What is my dog called?"]
        assert msg.shown_text == "Your dog is Rex."
        assert app.voice.state == VoiceControl.IDLE and "rec" not in status_text(app)
    sid = a.store.sessions()[0].id
    assert [t.text for t in a.store.turns(sid) if t.role == "user"] == ["What is my dog called?"]
    a.close()


async def test_push_to_talk_sends_when_the_longest_recording_is_reached(db, tmp_path):
    from types import SimpleNamespace

    a = make_assistant(db, FakeLLM(replies=["ok"]))
    ptt = FakePushToTalk("a long question")
    ptt.recorder = SimpleNamespace(full=threading.Event())
    app = AssistantApp(assistant=a, audio=services(a, tmp_path, make_push_to_talk=lambda t: ptt))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.voice.state == VoiceControl.RECORDING, what="recording")
        ptt.recorder.full.set()
        msg = await voice_answered(pilot, "a long question")
        assert user_texts(app.chat) == ["a long question"] and msg.shown_text == "ok"
    a.close()


async def test_push_to_talk_escape_drops_and_silence_is_not_sent(db, tmp_path):
    a = make_assistant(db, FakeLLM())
    made = []

    def make(transcriber):
        made.append(FakePushToTalk(""))
        return made[-1]

    app = AssistantApp(assistant=a, audio=services(a, tmp_path, make_push_to_talk=make))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.voice.state == VoiceControl.RECORDING, what="recording")
        await pilot.press("escape")
        assert made[0].cancelled and app.voice.state == VoiceControl.IDLE
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.voice.state == VoiceControl.RECORDING, what="recording again")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: notifications(app, "warning"), what="the warning")
        assert "No words were heard" in notifications(app, "warning")[0]
        assert not user_texts(app.chat)
    assert a.store.count("turns") == 0
    a.close()


# -- keys -------------------------------------------------------------------------------------------
async def test_help_and_footer_name_the_new_keys(db, tmp_path):
    a = make_assistant(db, FakeLLM())
    app = AssistantApp(assistant=a, audio=services(a, tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        keys = {k.key for k in app.chat.query_one("Footer").query("FooterKey")}
        assert {"ctrl+l", "ctrl+r", "ctrl+n", "ctrl+s", "f1", "ctrl+q"} <= keys
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        shot = app.export_screenshot()
        for key in ("ctrl+l", "ctrl+r", "ctrl+o", "listen", "voice", "tidy"):
            assert key in shot, key
    a.close()


def test_live_listening_stop_without_start_closes_its_store(tmp_path):
    from memory.store import Store

    store = Store(tmp_path / "x.db")
    ls = LiveListening(store, FakeTranscriber(), tmp_path / "clips", make_listener=NoMicrophone, close_store=True)
    with pytest.raises(AudioUnavailable):
        ls.start()
    assert audio_sessions(Store(tmp_path / "x.db")) == []
    ls.stop()


# -- the real thing (no microphone: a recording) ----------------------------------------------------
@pytest.mark.real
async def test_real_recording_is_found_by_what_did_i_miss(tmp_path, real_embedder):
    from assistant.wiring import Options, build
    from audio.ingest import AudioIngestor
    from audio.transcribe import Transcriber
    from memory.recall import TurnIndex
    from tests.test_audio_speech import have_espeak, speak_file

    if not have_espeak():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    opts = Options(db=tmp_path / "data" / "real.db", model="fake", config=Config())
    a = build(opts, embedder=real_embedder, model=FakeLLM(replies=["- The server migration is finished."]))
    wav = speak_file("Hello team, the server migration is finished.", tmp_path / "said.wav")
    started = datetime.now(UTC) - timedelta(minutes=20)
    ingestor = AudioIngestor(a.store, Transcriber("tiny.en"), tmp_path / "clips",
                             index=TurnIndex(a.store, real_embedder).index_pending)
    result = ingestor.ingest_file(wav, started)
    (clip,) = result.clips
    assert "migration" in clip.text.lower()
    player = Player()
    app = AssistantApp(assistant=a, audio=AudioServices(a, clips_dir=tmp_path / "clips", player=player))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What did I miss in the last hour?")
        msg = await answered(pilot, timeout=60)
        assert msg.clip_list is not None and msg.clip_list.clip_ids == [clip.id]
        (line,) = msg.clip_list.lines()
        assert f"{hhmm(clip.started_at)}–{hhmm(clip.ended_at)}" in line
        assert hhmm(clip.started_at) == started.astimezone().strftime("%H:%M")
        assert "migration" in line.lower()
        await pilot.press("ctrl+o", "enter")
        await wait_until(pilot, lambda: player.played, what="the player")
        assert player.played == [clip.path]
    app.close_assistant()


async def test_typing_in_the_clip_list_goes_to_the_message_box(db, tmp_path):
    a = make_assistant(db, FakeLLM(replies=["- lunch at noon", "Nothing else."]))
    heard(a.store, tmp_path / "clips", [(10, 4, "Lunch is at noon in the big room.")])
    app = AssistantApp(assistant=a, audio=services(a, tmp_path, player=Player()))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "what did I miss in the last hour?")
        await answered(pilot)
        assert app.chat.status.tokens_per_second is None   # written without the model: no speed shown
        await pilot.press("ctrl+o")
        assert isinstance(app.focused, ClipList)
        # the next question is typed at once: nothing is lost and "?" is not the help key here
        await pilot.press(*"who?")
        assert app.focused is app.chat.prompt
        assert app.chat.prompt.text == "who?"
        assert not isinstance(app.screen, HelpScreen)
        # Esc also goes back to the message box
        await pilot.press("ctrl+o", "escape")
        assert app.focused is app.chat.prompt and app.chat.prompt.text == "who?"
    a.close()
