"""A kill (SIGTERM) or a closed terminal (SIGHUP) quits the chat the way Ctrl+Q does: the speech heard
so far is stored and the answer being written is finalised, instead of the process dying with both."""
import os
import signal

import pytest

from audio.clips import ClipStore
from tests.fakes import FakeLLM
from tests.test_ui import SIZE, make_assistant, wait_until
from tests.test_ui_audio import FakeListener, FakeTranscriber, services
from ui.app import AssistantApp
from ui.controls import ListeningControl


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
async def test_a_signal_quits_like_ctrl_q_and_keeps_the_speech_heard(tmp_path, sig):
    FakeListener.made.clear()
    a = make_assistant(tmp_path / "data" / "ui.db", FakeLLM())
    app = AssistantApp(assistant=a, audio=services(a, tmp_path, make_listener=FakeListener,
                                                   transcriber=FakeTranscriber(["The plumber comes at four."])))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: app.listening.state == ListeningControl.ON, what="listening")
        (mic,) = FakeListener.made
        mic.hear()                      # heard, waiting in the batch for transcription
        os.kill(os.getpid(), sig)
        await wait_until(pilot, lambda: not app.is_running, what="quit")
    assert [c.text for c in ClipStore(a.store).recent()] == ["The plumber comes at four."]
    a.close()
