"""Pilot tests of the memory and journal screens, sessions actions and incognito chat, with the scripted
FakeLLM and FakeEmbedder over a real SQLite file and the segment recall the app uses."""
from __future__ import annotations

import pytest

from assistant.config import Config
from assistant.core import Assistant
from assistant.routes import default_routes
from memory.bank import SegmentRecall, segment_pending
from memory.recall import TurnIndex
from memory.store import Store
from tests.fakes import FakeEmbedder, FakeLLM
from tests.test_journal import utc  # noqa: F401  (a fixture)
from tests.test_ui import SIZE, answered, notifications, send, wait_until
from ui.app import AssistantApp
from ui.screens.dialogs import ConfirmDialog, TextDialog
from ui.screens.memory import MemoryScreen
from ui.widgets.messages import Welcome

TALKS = [
    ("2025-03-03T09:00:00+00:00", "My sister Ana lives in Porto near the river.",
     "Porto is a lovely city."),
    ("2025-03-04T18:00:00+00:00", "My cello lesson with Marta is on Thursday evening.",
     "Enjoy the cello lesson."),
    ("2025-03-05T08:30:00+00:00", "The dentist appointment is in June.",
     "I will keep the dentist in mind."),
]


def fill(store: Store, embedder) -> dict[str, int]:
    """Three past conversations, indexed and segmented as consolidation leaves them; {word: session id}."""
    out = {}
    for at, said, answer in TALKS:
        sid = store.new_session(title=said[:30], started_at=at)
        store.add_turn(sid, "user", said, created_at=at)
        store.add_turn(sid, "assistant", answer, created_at=at.replace(":00+", ":05+"))
        out[said.split()[1].lower()] = sid
    TurnIndex(store, embedder).index_pending()
    segment_pending(store, embedder, mode="fast")
    return out


def make(db, replies=None, *, filled=True):
    store = Store(db)
    embedder = FakeEmbedder()
    sessions = fill(store, embedder) if filled else {}
    llm = FakeLLM(replies=replies or ["Noted."])
    a = Assistant(store, None, Config(), model=llm, routes=default_routes())
    a.recall = SegmentRecall(store, embedder, count_tokens=a.count_tokens)
    return a, llm, sessions


@pytest.fixture
def db(tmp_path):
    return tmp_path / "data" / "memory.db"


async def open_memory(pilot) -> MemoryScreen:
    await pilot.press("f3")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, MemoryScreen), what="the memory screen")
    screen = pilot.app.screen
    await wait_until(pilot, lambda: screen.loaded, what="the memories")
    return screen


async def search(pilot, screen: MemoryScreen, query: str) -> None:
    before = screen.loaded
    await pilot.press("slash")
    screen.search_box.value = query
    await pilot.press("enter")
    await wait_until(pilot, lambda: screen.loaded > before, what=f"the search for {query!r}")
    await wait_until(pilot, lambda: screen.detail is not None or not screen.memories, what="the detail")


async def ask_about_the_cello_then_find_its_memory(pilot):
    """Ask the chat about the cello lesson (the answer recalls its memory), then find that memory on F3:
    (the memory screen, the answer)."""
    await send(pilot, "When is my cello lesson with Marta?")
    reply = await answered(pilot)
    assert "cello lesson" in reply.memories_text
    screen = await open_memory(pilot)
    await search(pilot, screen, "cello lesson with Marta")
    return screen, reply


async def test_memory_screen_opens_with_its_key_lists_searches_and_shows_a_memory_in_full(db):
    a, llm, _ = make(db)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_memory(pilot)
        titles = screen.titles()
        assert len(titles) == 3 and all(" · chat" not in t and "user" not in t for t in titles)   # chat is the usual source
        assert titles[0].startswith("05 Mar 2025")          # newest first before a search
        await search(pilot, screen, "cello lesson")
        assert "cello lesson" in screen.texts()[0]
        assert screen.when_line == ""                       # the query names no days
        shown = screen.detail_shown
        assert "My cello lesson with Marta is on Thursday evening." in shown
        assert "Enjoy the cello lesson." in shown and "Used in 0 answers" in shown
        await search(pilot, screen, "what did I say on 3 March 2025")
        assert screen.when_line.startswith('"3 March 2025": memories dated ') and "Mar 2025 rank higher" in \
            screen.when_line
        assert "Porto" in screen.texts()[0]
        await search(pilot, screen, "violinist")             # no memory says it: the list says so
        assert screen.memories and screen.when_line == \
            'No memory says "violinist"; these are the closest in meaning.'
        await search(pilot, screen, "Marta")
        assert screen.when_line == ""
        await search(pilot, screen, "Ana")                   # a short word counts as said
        assert "Ana" in screen.texts()[0] and screen.when_line == ""
        await pilot.press("escape")
        await wait_until(pilot, lambda: pilot.app.screen is app.chat, what="back to the chat")
    a.close()


async def test_the_list_shows_what_was_said_moments_ago_before_any_search(db):
    a, llm, _ = make(db, replies=["Porto is lovely."])
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "My sister Ana moved to Porto last week.")
        await answered(pilot)
        screen = await open_memory(pilot)
        texts = screen.texts()
        assert any("My sister Ana moved to Porto last week." in t for t in texts[:2]), texts[:3]
        assert len(texts) == 5                    # the three memories made before, and the two new turns
        await pilot.press("down")
        await pilot.press("f")                    # not a memory of its own yet: said so, nothing asked
        assert not isinstance(app.screen, ConfirmDialog)
        await search(pilot, screen, "porto")      # and a search finds it, after the memory that says Porto
        texts = screen.texts()
        assert "Ana lives in Porto" in texts[0] and "My sister Ana moved to Porto last week." in texts[1], texts
        await search(pilot, screen, "/porto")     # "/" (the key to the box) typed once more in the box
        assert screen.texts() == texts and "No memory says" not in str(screen.query_one("#memory-when").render())
        assert "No memory says" not in str(screen.query_one("#memory-when").render())
    a.close()


async def test_correct_a_memory_shows_it_in_the_list_and_the_next_answer_recalls_it(db):
    a, llm, _ = make(db)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_memory(pilot)
        await search(pilot, screen, "cello lesson")
        target = screen.current
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, TextDialog), what="the correction box")
        dialog = app.screen
        assert dialog.value == "My cello lesson with Marta is on Thursday evening."   # the user's words only
        box = dialog.query_one("#dialog-text")
        box.text = "My cello lesson with Marta moved to Friday morning."
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, what="the dialog to close")
        await wait_until(pilot, lambda: any("Corrected" in n for n in notifications(app)), what="the correction")
        await wait_until(pilot, lambda: screen.texts() and "Friday" in screen.texts()[0], what="the new list")
        assert (screen.current.kind, screen.current.id) == (target.kind, target.id)   # the same memory, kept
        assert all("Thursday" not in t for t in screen.texts())
        await wait_until(pilot, lambda: "corrected by you" in screen.detail_shown, what="the corrected detail")
        assert "Thursday evening.  (corrected)" in screen.detail_shown                  # the original stays
        await pilot.press("escape")
        await send(pilot, "When is my cello lesson with Marta?")
        reply = await answered(pilot)
        assert "Friday morning" in reply.memories_text and "Thursday" not in reply.memories_text
    prompt = "\n".join(m["content"] for m in llm.prompts[-1])
    assert "moved to Friday morning" in prompt and "Thursday evening" not in prompt
    a.close()


async def test_correcting_a_memory_starts_with_its_text_selected_so_typing_replaces_it(db):
    """At 80x24: the old text is selected and the hint says so; what is typed takes its place (ctrl+a went
    to the line's start, and typed text was put in front of the old)."""
    from textual.widgets import Button

    a, llm, _ = make(db)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_memory(pilot)
        await search(pilot, screen, "cello lesson")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, TextDialog), what="the correction box")
        dialog = app.screen
        await pilot.pause()
        box = dialog.query_one("#dialog-text")
        assert box.selected_text == "My cello lesson with Marta is on Thursday evening."
        assert "type to replace it" in str(dialog.query_one(".dialog-note").render())
        for button in dialog.query(Button):          # the whole dialog is on screen
            assert button.region.bottom <= 24 and button.region.right <= 80
        await pilot.press(*"Friday")
        assert dialog.value == "Friday"
        await pilot.press("escape")
    a.close()


async def test_at_80x24_each_memory_takes_two_rows_and_the_list_most_of_the_height(db):
    """Rows that wrapped at the list's 30 columns left room for two or three memories."""
    a, llm, _ = make(db)
    long = "My neighbour Daniel plays the drums every evening after nine, loudly, with the window open"
    for day in range(4, 9):
        sid = a.store.new_session(title="drums", started_at=f"2025-04-0{day}T20:00:00+00:00")
        a.store.add_turn(sid, "user", f"{long} ({day}).", created_at=f"2025-04-0{day}T20:00:00+00:00")
    TurnIndex(a.store, a.recall.embedder).index_pending()
    segment_pending(a.store, a.recall.embedder, mode="fast")
    app = AssistantApp(assistant=a)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_memory(pilot)
        await wait_until(pilot, lambda: screen.loaded and len(screen.memories) >= 8, what="the memories")
        await pilot.pause()
        assert screen.list.virtual_size.height == 2 * len(screen.memories)
        assert screen.list.size.height >= 12                  # six memories in view
        assert not screen.query_one("#memory-when").display   # no blank line above the list
    a.close()


async def test_pin_lists_the_fact_and_unpin_takes_it_off(db):
    a, llm, _ = make(db)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_memory(pilot)
        assert "None yet" in screen.pinned()[0]
        await search(pilot, screen, "dentist")
        await pilot.press("p")
        await wait_until(pilot, lambda: any("Pinned" in n for n in notifications(app)), what="the pin")
        await wait_until(pilot, lambda: screen.pin_ids, what="the pinned list")
        assert screen.pinned() == ["The dentist appointment is in June."]
        from memory.edits import pins
        assert [p.text for p in pins(a.store)] == ["User: The dentist appointment is in June."]
        screen.pins.focus()
        screen.pins.highlighted = 0
        await pilot.press("u")
        await wait_until(pilot, lambda: not screen.pin_ids, what="the fact unpinned")
        assert pins(a.store) == []
    a.close()


async def test_forget_asks_first_cancel_keeps_everything_and_yes_forgets_it_all(db):
    a, llm, sessions = make(db)
    store = a.store
    counts = lambda: {t: store.count(t) for t in ("turns", "segments", "sessions")}   # noqa: E731
    before = counts()
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_memory(pilot)
        await search(pilot, screen, "sister Ana in Porto")
        assert "Porto" in screen.texts()[0]
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        message = str(app.screen.query_one("#confirm-message").render())
        assert "This forgets 2 turns, 1 memory, 0 summaries and 0 clips (1 whole session)." in message
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is screen, what="the dialog to close")
        await pilot.pause(0.2)
        assert counts() == before and "Porto" in screen.texts()[0]
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: any(n.startswith("Forgot 2 turns") for n in notifications(app)),
                         what="forgetting")
        await wait_until(pilot, lambda: all("Porto" not in t for t in screen.texts()), what="the list without it")
        await search(pilot, screen, "sister Ana in Porto")
        assert all("Porto" not in t for t in screen.texts())
    after = counts()
    assert after == {"turns": before["turns"] - 2, "segments": before["segments"] - 1,
                     "sessions": before["sessions"] - 1}
    assert store.session(sessions["sister"]) is None
    assert not store.db.execute("SELECT 1 FROM turns WHERE text LIKE '%Porto%'").fetchall()
    a.close()


# -- the journal screen --------------------------------------------------------------------------------
async def test_journal_screen_reads_day_by_day_with_prev_and_next_keys(tmp_path, utc):
    from tests import memory_sample
    from ui.screens.journal import JournalScreen

    db = tmp_path / "data" / "journal.db"
    store = Store(db)
    memory_sample.build(store, tmp_path / "clips")
    a = Assistant(store, None, Config(), model=FakeLLM(), routes=default_routes())
    a.recall = SegmentRecall(store, FakeEmbedder(), count_tokens=a.count_tokens)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, JournalScreen), what="the journal screen")
        screen = app.screen
        await wait_until(pilot, lambda: screen.loaded, what="the journal")
        assert screen.day.day == "2025-03-05"                     # the latest day first
        assert "## Wednesday 5 March 2025" in screen.shown
        assert "You decided to sell your car and cycle to work." in screen.shown
        assert "Monday" not in screen.shown                        # one day at a time
        await pilot.press("left")
        assert screen.day.day == "2025-03-03" and "## Monday 3 March 2025" in screen.shown
        assert "You bought a new cello bow yesterday." in screen.shown and "Wednesday" not in screen.shown
        await pilot.press("left")                                  # there is no earlier day: it stays
        assert screen.day.day == "2025-03-03"
        assert any("first day" in n for n in notifications(app))
        await pilot.press("n")
        assert screen.day.day == "2025-03-05"
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.chat, what="back to the chat")
    a.close()


# -- the sessions list -------------------------------------------------------------------------------
async def test_sessions_list_shows_a_transcript_renames_and_deletes_after_asking(db):
    from ui.screens.transcript import TranscriptScreen

    a, llm, sessions = make(db)
    store = a.store
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        chat = app.chat
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(chat.sidebar.titles()) == 3, what="the sessions")
        # the newest conversation, under the cursor already: the dentist
        dentist = sessions["dentist"]
        assert chat.sidebar.highlighted_session == dentist
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, TranscriptScreen), what="the transcript")
        assert "you: The dentist appointment is in June." in app.screen.shown
        assert "assistant: I will keep the dentist in mind." in app.screen.shown
        await pilot.press("escape")
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, TextDialog), what="the rename box")
        await pilot.pause()
        old_title = app.screen.value
        assert old_title and app.screen.query_one("#dialog-text").selected_text == old_title   # typing replaces it
        await pilot.press(*"Teeth in June")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Teeth in June" in chat.sidebar.titles(), what="the new title")
        assert store.session(dentist).title == "Teeth in June"
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        message = str(app.screen.query_one("#confirm-message").render())
        assert "“Teeth in June”" in message
        assert "This forgets 2 turns, 1 memory, 0 summaries and 0 clips (1 whole session)." in message
        await pilot.press("escape")                # cancel: nothing goes
        await pilot.pause(0.2)
        assert store.session(dentist) is not None and len(chat.sidebar.titles()) == 3
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: len(chat.sidebar.titles()) == 2, what="the list without it")
        assert "Teeth in June" not in chat.sidebar.titles()
    assert store.session(dentist) is None
    assert not store.db.execute("SELECT 1 FROM turns WHERE text LIKE '%dentist%'").fetchall()
    a.close()


# -- incognito -------------------------------------------------------------------------------------------
def stored(store) -> dict[str, int]:
    return {t: store.count(t) for t in ("sessions", "turns", "turn_memories", "segments", "fts_turn", "vectors_turn")}


async def test_incognito_key_stores_nothing_shows_it_and_ctrl_g_again_stores_again(db):
    a, llm, _ = make(db, replies=["Enjoy the lesson."])
    store = a.store
    before = stored(store)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        chat = app.chat
        assert "incognito" not in str(chat.status.render())
        assert "I remember our past conversations" in str(chat.chat.query_one(Welcome).render())
        await pilot.press("ctrl+g")
        assert chat.incognito and "incognito: nothing is stored" in str(chat.status.render())
        assert chat.prompt.border_title == "incognito · nothing is stored"
        welcome = str(chat.chat.query_one(Welcome).render())     # it no longer says it remembers this chat
        assert welcome.startswith("Incognito. Nothing of this chat is stored") and "I remember our" not in welcome
        await send(pilot, "My cello lesson is secret, remind me about Marta.")
        reply = await answered(pilot)
        assert reply.shown_text == "Enjoy the lesson."
        assert "incognito: not stored" in str(reply.border_subtitle)   # the answer itself says so
        assert "cello lesson" in reply.memories_text            # it still reads memory
        await send(pilot, "And what about the dentist?")
        await answered(pilot)
        assert "secret" in "\n".join(m["content"] for m in llm.prompts[-1])   # the chat goes on in memory
        assert stored(store) == before                           # nothing of it in the database
        assert not store.db.execute("SELECT 1 FROM turns WHERE text LIKE '%secret%'").fetchall()
        assert chat.status.session_id is None
        await pilot.press("ctrl+g")
        assert not chat.incognito and "incognito" not in str(chat.status.render())
        await send(pilot, "Now remember that I like tea.")
        assert "incognito" not in str((await answered(pilot)).border_subtitle)
    assert store.count("turns") == before["turns"] + 2
    a.close()


async def test_an_incognito_window_says_so_from_the_start_and_stores_nothing(db):
    a, llm, _ = make(db)
    before = stored(a.store)
    a2 = Assistant(a.store, a.recall, a.config, model=llm, routes=default_routes(), incognito=True)
    app = AssistantApp(assistant=a2)
    async with app.run_test(size=SIZE) as pilot:
        chat = app.chat
        await wait_until(pilot, lambda: chat.incognito, what="the incognito label")
        assert "incognito: nothing is stored" in str(chat.status.render())
        await send(pilot, "A private thought about Porto.")
        await answered(pilot)
        await pilot.press("ctrl+g")                                # the whole window is incognito: it stays
        assert chat.incognito
        assert any("whole window is incognito" in n for n in notifications(app))
    assert stored(a.store) == before
    a.close()


async def test_the_detail_lists_the_answers_that_used_a_memory_and_the_mouse_works(db):
    a, llm, _ = make(db, replies=["On Thursday evening."])
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        screen, reply = await ask_about_the_cello_then_find_its_memory(pilot)
        await wait_until(pilot, lambda: "Used in 1 answer" in screen.detail_shown, what="the answer that used it")
        assert "“When is my cello lesson with Marta?” → On Thursday evening." in screen.detail_shown
        before = len(screen.pin_ids)
        await pilot.click("#act-pin")                    # the buttons do what the keys do
        await wait_until(pilot, lambda: len(screen.pin_ids) == before + 1, what="the pin by mouse")
        await pilot.click("#act-forget")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.click("#confirm-no")
        await wait_until(pilot, lambda: app.screen is screen, what="the dialog to close")
    assert a.store.db.execute("SELECT 1 FROM turns WHERE text LIKE '%cello lesson with Marta%'").fetchall()
    a.close()


async def test_the_detail_shows_the_timeline_through_a_memory(tmp_path, utc):
    from tests import memory_sample

    db = tmp_path / "data" / "timeline.db"
    store = Store(db)
    memory_sample.build(store, tmp_path / "clips")
    a = Assistant(store, None, Config(), model=FakeLLM(), routes=default_routes())
    a.recall = SegmentRecall(store, FakeEmbedder(), count_tokens=a.count_tokens)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_memory(pilot)
        await search(pilot, screen, "sell my car and cycle to work")
        assert "cycle to work" in screen.texts()[0]
        await wait_until(pilot, lambda: "Timeline" in screen.detail_shown, what="the detail")
        shown = screen.detail_shown
        # the plan it changed (the car, on Monday), before it, marked as changed since
        assert "[3 Mar 2025] (since changed) User: My sister Anna" in shown and "-(Changed)-> [5 Mar 2025]" in shown
    a.close()


async def test_f1_lists_the_memory_journal_sessions_and_incognito_keys(db):
    from ui.screens.help import HelpScreen

    a, llm, _ = make(db, filled=False)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=(110, 40)) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        shot = app.export_screenshot()
        for text in ("F3", "memory:", "correct", "pin", "forget", "F4", "journal,", "ctrl+g", "incognito",
                     "transcript", "rename", "delete"):
            assert text in shot, text
    a.close()


async def test_forgetting_part_of_the_open_conversation_redraws_it_without_what_went(db):
    from tests.test_ui import user_texts

    a, llm, _ = make(db, replies=["Nice."], filled=False)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "My bicycle is red and very fast.")
        await answered(pilot)
        await send(pilot, "Also my kettle is blue.")
        await answered(pilot)
        session = app.chat.session_id
        screen = await open_memory(pilot)
        await search(pilot, screen, "red bicycle")
        assert "bicycle" in screen.texts()[0] and screen.current.kind == "segment"
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: any(n.startswith("Forgot") for n in notifications(app)), what="forgetting")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.chat, what="back to the chat")
        await wait_until(pilot, lambda: user_texts(app.chat) == ["Also my kettle is blue."], what="the redrawn chat")
        assert app.chat.session_id == session
    assert [t.text for t in a.store.turns(session)] == ["Also my kettle is blue.", "Nice."]
    a.close()


async def test_an_empty_journal_says_how_it_is_written(db):
    from ui.screens.journal import JournalScreen

    a, llm, _ = make(db, filled=False)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, JournalScreen) and app.screen.loaded, what="journal")
        assert "Nothing yet: the journal is written by `assistant consolidate`." in app.screen.shown
        await pilot.press("left", "right")                       # nothing to move through, nothing breaks
        assert app.screen.day is None
    a.close()


# -- what was forgotten leaves the conversation on screen ----------------------------------------------
def forgotten_lines(chat) -> list[str]:
    from ui.widgets.messages import Forgotten

    return [str(w.render()) for w in chat.chat.query(Forgotten)]


async def test_forget_in_the_chat_shows_the_turns_first_then_takes_them_and_their_quotes_off_the_screen(db):
    from tests.test_ui import user_texts
    from ui.widgets.messages import AssistantMessage

    a, llm, sessions = make(db, replies=["In June.", "Green tea is nice."])
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        chat = app.chat
        await send(pilot, "When is my dentist appointment?")
        first = await answered(pilot)
        assert "dentist" in first.memories_text
        await send(pilot, "I like green tea.")
        await answered(pilot)
        assert any("dentist" in t for t in chat.sidebar.titles())
        await send(pilot, "/forget dentist")
        ask = await answered(pilot)
        # the answer to the question goes with it (built on the dentist memory), as does the earlier answer
        assert ask.shown_text.startswith("This forgets 4 turns (2 of them answers built on it), 1 memory")
        for line in ("- you: “The dentist appointment is in June.”",
                     "- assistant: “I will keep the dentist in mind.”", "- you: “When is my dentist appointment?”",
                     "- … and 1 more"):
            assert line in ask.shown_text
        assert "Answer yes or no." in ask.shown_text
        await send(pilot, "yes")
        done = await answered(pilot)
        assert done.shown_text.startswith("Forgot 4 turns")
        assert user_texts(chat) == ["I like green tea.", "/forget dentist", "yes"]
        assert forgotten_lines(chat) == ["2 turns forgotten"]
        assert first not in chat.messages() and first not in chat.query(AssistantMessage)
        assert ask.shown_text.startswith("This forgets 4 turns") and "dentist" not in ask.shown_text
        assert all("dentist" not in reply.memories_text for reply in chat.query(AssistantMessage))
        assert not any("dentist" in t for t in chat.sidebar.titles())
        assert chat.session_id is not None                                       # the chat goes on in it
    assert not a.store.db.execute("SELECT 1 FROM turns WHERE text LIKE '%dentist%'").fetchall()
    a.close()


async def test_forget_in_the_chat_of_its_own_whole_conversation_leaves_a_line_and_the_next_message_starts_anew(db):
    a, llm, _ = make(db, replies=["Nice."], filled=False)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        chat = app.chat
        await send(pilot, "My bicycle is red.")
        await answered(pilot)
        session = chat.session_id
        await send(pilot, f"/forget session {session}")
        ask = await answered(pilot)
        assert "- you: “My bicycle is red.”" in ask.shown_text and "- assistant: “Nice.”" in ask.shown_text
        await send(pilot, "yes")
        await answered(pilot)
        assert forgotten_lines(chat) == ["2 turns forgotten"]
        assert chat.session_id is None and chat.sidebar.titles() == []
        await send(pilot, "Hello again.")
        await answered(pilot)
        assert chat.session_id is not None       # a new conversation (SQLite may give it the same number)
        assert [t.text for t in a.store.turns(chat.session_id)] == ["Hello again.", "Nice."]
    assert not a.store.db.execute("SELECT 1 FROM turns WHERE text LIKE '%bicycle%'").fetchall()
    a.close()


async def test_forgetting_from_the_memory_screen_takes_its_quote_from_the_answers_on_screen(db):
    a, llm, _ = make(db, replies=["On Thursday evening."])
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        screen, reply = await ask_about_the_cello_then_find_its_memory(pilot)
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: any(n.startswith("Forgot") for n in notifications(app)), what="forgetting")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.chat, what="back to the chat")
        # the answer built on the forgotten memory goes with it, and so does the question about it: the
        # conversation left empty goes, and a new one is open
        assert reply not in app.chat.messages() and len(app.chat.messages()) == 0
        assert app.chat.session_id is None and app.chat.chat.query(Welcome)
    a.close()


async def test_deleting_a_conversation_from_the_list_takes_the_answers_built_on_it_off_the_screen(db):
    a, llm, sessions = make(db, replies=["In June."])
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        chat = app.chat
        await send(pilot, "When is my dentist appointment?")
        reply = await answered(pilot)
        assert "dentist" in reply.memories_text
        await pilot.press("ctrl+s")
        dentist = sessions["dentist"]
        await wait_until(pilot, lambda: dentist in chat.sidebar.session_ids, what="the sessions")
        chat.sidebar.options.highlighted = chat.sidebar.session_ids.index(dentist) + 1
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: dentist not in chat.sidebar.session_ids, what="the list without it")
        # the answer built on the deleted conversation goes with it, and the question about it: the
        # conversation left empty goes too, and a new one is open
        await wait_until(pilot, lambda: reply not in chat.messages(), what="the answer to go")
        assert len(chat.messages()) == 0 and chat.session_id is None and chat.chat.query(Welcome)
    a.close()
