"""What the sessions list does to a conversation: show its transcript, rename it, delete it (totally, as
forgetting does, after a confirmation that says what goes)."""
from __future__ import annotations

from . import changes
from .screens.dialogs import ConfirmDialog, TextDialog
from .screens.transcript import TranscriptScreen


def run(chat, action: str, session_id: int, title: str) -> None:
    """`chat`: the ChatScreen whose sidebar asked for `action` on `session_id`."""
    if action == "transcript":
        changes.read(chat, lambda reader: reader.transcript(session_id),
                     lambda turns: chat.app.push_screen(TranscriptScreen(title, turns)), title="Conversation")
    elif action == "rename":
        changes.read(chat, lambda reader: reader.session(session_id),
                     lambda s: s is not None and _rename(chat, session_id, s.title or ""), title="Conversation")
    elif action == "delete":
        from memory.forget import plan_forget

        changes.read(chat, lambda reader: plan_forget(reader, session_id=session_id),
                     lambda plan: _confirm_delete(chat, session_id, title, plan), title="Conversation")


def _rename(chat, session_id: int, current: str) -> None:
    def save(title: str | None) -> None:
        if title:
            changes.change(chat, lambda store: store.rename_session(session_id, title),
                           lambda _: _done(chat, "Renamed."), title="Conversation")

    chat.app.push_screen(TextDialog("Rename this conversation", current), save)


def _confirm_delete(chat, session_id: int, title: str, plan) -> None:
    from memory.forget import forget

    def answered(yes: bool) -> None:
        if not yes:
            return
        if chat.session_id == session_id and chat.answering:
            chat.notify(changes.BUSY, severity="warning", timeout=6)
            return

        def deleted(done) -> None:
            chat.show_forgotten(done)          # the conversation on screen, or memories quoted from it, go
            _done(chat, done.describe())

        changes.change(chat, lambda store: forget(store, plan), deleted, title="Conversation")

    chat.app.push_screen(ConfirmDialog("Delete this conversation?", f"“{title}”\n\n{plan.describe()}",
                                       yes="Delete"), answered)


def _done(chat, note: str) -> None:
    chat.notify(note, title="Conversation", timeout=6)
    chat.refresh_sessions()
    chat.sidebar.options.focus()
