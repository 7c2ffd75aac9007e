"""The memory screen: search what the assistant remembers, read a memory in full, correct, pin or forget it,
and see the pinned facts. Every query runs in a thread worker on the store's reader connection; every
change runs in a worker through the Assistant's connection (`Assistant.changing_memory`)."""
from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from assistant.text import plural

from .. import changes
from ..widgets.timefmt import local_time
from .dialogs import ConfirmDialog, TextDialog
from .keys import HelpAndQuitFirst

SOURCE_NAMES = {"chat": "chat", "audio": "heard", "import": "imported"}


def memory_option(m) -> Text:
    """Two lines: date · topic · source (where not the chat), then the opening words; short enough for the
    list's 30 columns on an 80-column terminal (the year only when it is not this one)."""
    this_year = local_time(m.started_at, "%Y") == datetime.now().strftime("%Y")
    head = Text.assemble((local_time(m.started_at, "%d %b %H:%M" if this_year else "%d %b %Y"), "bold"))
    if m.kind == "turn":
        head.append(" · just said", "dim italic")
    if m.topic:
        head.append(" · ")
        head.append(m.topic, "cyan")
    if m.source != "chat":
        head.append(f" · {SOURCE_NAMES.get(m.source, m.source)}", "dim")
    return Text.assemble(head, "\n", (m.opening.replace("\n", " "), "dim"))


def detail_text(d) -> Text:
    """The detail view of one memory (memory.detail.MemoryDetail)."""
    out = Text()
    out.append(local_time(d.started_at), "bold")
    if d.topic:
        out.append(" · ")
        out.append(d.topic, "bold cyan")
    out.append(f" · {SOURCE_NAMES.get(d.source, d.source)}", "dim")
    out.append(f"\nconversation: {d.session_title or 'untitled'} (session {d.session_id})", "dim")
    if d.corrected:
        out.append("\ncorrected by you: recall and the journal use your text; the original is kept below",
                   "italic yellow")
    out.append("\n\nWhat was said\n", "bold underline")
    for t in d.turns:
        who = t.speaker or ("you" if t.role == "user" else t.role)
        style = "strike dim" if t.id in d.corrected_ids else ""
        out.append(f"{local_time(t.created_at, '%H:%M')} ", "dim")
        out.append(f"{who}: ", "bold" if t.role == "user" else "")
        out.append(t.text, style)
        if t.id in d.corrected_ids:
            out.append("  (corrected)", "italic dim")
        out.append("\n")
    if d.kind == "segment":
        out.append("\nTimeline\n", "bold underline")
        if d.before:
            out.append(f"before, in this conversation: {d.before}\n", "dim")
        for chain in d.timelines:
            out.append(f"{chain}\n")
        if not d.timelines:
            out.append("no linked memories yet (tidying memory links related ones)\n", "dim italic")
        if d.after:
            out.append(f"after, in this conversation: {d.after}\n", "dim")
    out.append(f"\nUsed in {plural(len(d.uses), 'answer')}\n", "bold underline")
    for u in d.uses:
        out.append(f"{local_time(u.at, '%d %b %H:%M')} ", "dim")
        out.append(f"“{_clip(u.question, 60)}”")
        if u.answer:
            out.append(f" → {_clip(u.answer, 80)}", "dim")
        out.append("\n")
    return out


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 1].rstrip() + "…"


class MemoryScreen(HelpAndQuitFirst, Screen):
    """Search box, the memories found (or the latest), the highlighted one in full, and pinned facts."""

    BINDINGS = [
        Binding("escape", "back", "Back to chat"),
        Binding("slash,ctrl+f", "focus_search", "Search", key_display="/"),
        Binding("e", "correct", "Correct"),
        Binding("p", "pin", "Pin"),
        Binding("f,delete", "forget", "Forget", key_display="f"),
        Binding("u", "unpin", "Unpin", show=False),
        Binding("f1,question_mark", "help", "Help"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.memories: list = []
        self.query_text = ""
        self.detail = None            # the MemoryDetail shown
        self.pin_ids: list[int] = []
        self.loaded = 0               # how many searches have come back (tests wait on it)
        self._recall = None

    def compose(self) -> ComposeResult:
        with Vertical(id="memory-top"):
            yield Static(Text.assemble(("Memory", "bold"), ("  · what I remember, as I recall it for answers",
                                                           "dim")), classes="title")
            yield Input(placeholder="Search memories… (Enter searches · Esc back to the chat)", id="memory-search")
            yield Static("", id="memory-when")
        with Horizontal(id="memory-body"):
            with Vertical(id="memory-left"):
                yield OptionList(id="memory-list")
                yield Static("Pinned facts, in every prompt · u unpins", classes="subtitle")
                yield OptionList(id="pin-list")
            with Vertical(id="memory-right"):
                yield VerticalScroll(Static("", id="memory-detail-text"), id="memory-detail")
                with Horizontal(id="memory-actions"):
                    yield Button("Correct (e)", id="act-correct")
                    yield Button("Pin (p)", id="act-pin")
                    yield Button("Forget (f)", id="act-forget", variant="error")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.search_box.focus()
        self.refresh_all()

    # -- parts ----------------------------------------------------------------------------------------
    @property
    def search_box(self) -> Input:
        return self.query_one("#memory-search", Input)

    @property
    def list(self) -> OptionList:
        return self.query_one("#memory-list", OptionList)

    @property
    def pins(self) -> OptionList:
        return self.query_one("#pin-list", OptionList)

    @property
    def when_line(self) -> str:
        return str(self.query_one("#memory-when", Static).render())

    @property
    def detail_shown(self) -> str:
        return str(self.query_one("#memory-detail-text", Static).render())

    def titles(self) -> list[str]:
        """Each listed memory's first line (date · topic · source)."""
        return [str(self.list.get_option_at_index(i).prompt).split("\n")[0] for i in range(self.list.option_count)]

    def texts(self) -> list[str]:
        return [m.text for m in self.memories]

    def pinned(self) -> list[str]:
        return [str(self.pins.get_option_at_index(i).prompt) for i in range(self.pins.option_count)]

    @property
    def current(self):
        i = self.list.highlighted
        return self.memories[i] if i is not None and 0 <= i < len(self.memories) else None

    # -- searching (worker on the reader connection) ----------------------------------------------------
    @on(Input.Submitted, "#memory-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        # "/" is the key that goes to this box, so a "/" typed while already in it is not part of the query
        self.query_text = event.value.strip().lstrip("/").strip()
        # until the results come the list says so (keys pressed meanwhile move nothing that then jumps back)
        self.list.clear_options()
        self.list.add_option(Option(Text("Searching…", "dim"), disabled=True))
        self.refresh_all()
        self.list.focus()

    def refresh_all(self, keep: tuple[str, int] | None = None) -> None:
        """Search again (or list the latest), keeping `keep` (kind, id) highlighted when it is still there."""
        query = self.query_text
        changes.read(self, lambda reader: self._search(reader, query),
                     lambda found: self._show(query, *found, keep), group="memory-search")

    def _search(self, reader, query: str):
        from memory import detail
        from memory.edits import pins

        window = None
        if query:
            if self._recall is None:
                self._recall = detail.reading_recall(reader, self.app.assistant.recall)
            memories, window = detail.search(self._recall, query)
        else:
            memories = detail.recent(reader)
        return memories, window, pins(reader)

    def _show(self, query: str, memories, window, pinned, keep=None) -> None:
        from memory.detail import says

        self.memories = memories
        notes = [window.ranking_note()] if window is not None else []
        if query and window is None and memories and not any(says(m.text, query) for m in memories):
            notes.append(f"No memory says \"{query}\"; these are the closest in meaning.")
        when = self.query_one("#memory-when", Static)
        when.update(" ".join(notes))
        when.display = bool(notes)      # an empty line would take a row from the list
        ol = self.list
        ol.clear_options()
        ol.add_options([Option(memory_option(m), id=f"{m.kind}:{m.id}") for m in memories])
        if not memories:
            ol.add_option(Option(Text("Nothing found." if query else
                                      "No memories yet: chat first, or import past conversations.", "dim"),
                                 disabled=True))
        index = 0
        if keep is not None:
            index = next((i for i, m in enumerate(memories) if (m.kind, m.id) == keep), 0)
        if memories:
            ol.highlighted = index
        else:
            self._show_detail(None)
        self.pin_ids = [p.id for p in pinned]
        self.pins.clear_options()
        self.pins.add_options([Option(p.for_user(), id=str(p.id)) for p in pinned])
        if not pinned:
            self.pins.add_option(Option(Text("None yet · p pins a memory",
                                             "dim"), disabled=True))
        self.loaded += 1

    # -- the detail view ------------------------------------------------------------------------------
    @on(OptionList.OptionHighlighted, "#memory-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        m = self.current
        if m is not None:
            self._load_detail(m.kind, m.id)

    @on(OptionList.OptionSelected, "#memory-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#memory-detail", VerticalScroll).focus()

    def _load_detail(self, kind: str, unit_id: int) -> None:
        from memory import detail

        changes.read(self, lambda reader: detail.detail(reader, kind, unit_id), self._show_detail,
                     group="memory-detail")

    def _show_detail(self, d) -> None:
        cur = self.current
        if d is not None and (cur is None or (cur.kind, cur.id) != (d.kind, d.id)):
            return   # a late answer for a memory no longer highlighted
        self.detail = d
        self.query_one("#memory-detail-text", Static).update(
            detail_text(d) if d is not None else Text("Choose a memory to see it in full.", "dim"))

    # -- actions --------------------------------------------------------------------------------------
    @on(Button.Pressed, "#memory-actions Button")
    def _button(self, event: Button.Pressed) -> None:
        {"act-correct": self.action_correct, "act-pin": self.action_pin,
         "act-forget": self.action_forget}[event.button.id]()

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("correct", "pin", "forget", "unpin") and isinstance(self.focused, Input):
            return False   # typing in the search box: letters are letters
        return True

    def _segment(self, what: str):
        """The highlighted memory, if `what` can be done to it (one sentence otherwise)."""
        m = self.current
        if m is None:
            self.notify("Choose a memory first (↑ ↓ in the list).", timeout=4)
            return None
        if m.kind != "segment":
            self.notify(f"This was said moments ago and is not a memory of its own yet; {what} it after your "
                        "next message, or once memory is tidied.", severity="warning", timeout=8)
            return None
        return m

    def action_correct(self) -> None:
        m = self._segment("correct")
        if m is None:
            return
        d = self.detail if self.detail is not None and self.detail.id == m.id else None
        lines = (d.text if d is not None else m.text).splitlines()
        mine = [line.split(":", 1)[1].strip() if line.startswith("User:") else line
                for line in lines if not line.startswith("Assistant:")]
        dialog = TextDialog("Correct this memory", "\n".join(mine), multiline=True,
                            hint="Write what this memory should say, as you would say it. Recall, answers and "
                                 "the journal use your text from now on; the original turns are kept, marked "
                                 "corrected.")
        self.app.push_screen(dialog, lambda text: text and self._correct(m, text))

    def _correct(self, m, text: str) -> None:
        from memory.edits import correct

        embedder = self.app.assistant.recall.embedder
        changes.change(self, lambda store: correct(store, m.id, text, embedder=embedder),
                       lambda _: self._changed("Corrected: answers recall your text from now on.", m))

    def action_pin(self) -> None:
        from memory.edits import pin

        m = self._segment("pin")
        if m is not None:
            changes.change(self, lambda store: pin(store, m.id),
                           lambda _: self._changed("Pinned: this memory is in every answer's prompt now.", m))

    def action_unpin(self) -> None:
        from memory.edits import unpin

        if self.focused is not self.pins or self.pins.highlighted is None or not self.pin_ids:
            return
        pin_id = self.pin_ids[self.pins.highlighted]
        changes.change(self, lambda store: unpin(store, pin_id),
                       lambda _: self._changed("Unpinned (the memory itself stays).", self.current))

    def action_forget(self) -> None:
        from memory.forget import plan_forget

        m = self._segment("forget")
        if m is not None:
            changes.read(self, lambda reader: plan_forget(reader, segment_id=m.id),
                         lambda plan: self._confirm_forget(m, plan), group="memory-plan")

    def _confirm_forget(self, m, plan) -> None:
        from memory.forget import forget

        def answered(yes: bool) -> None:
            if yes:
                changes.change(self, lambda store: forget(store, plan), self._forgotten)

        self.app.push_screen(ConfirmDialog("Forget this memory?", f"“{_clip(m.text, 160)}”\n\n{plan.describe()}"),
                             answered)

    def _forgotten(self, plan) -> None:
        self._changed(plan.describe(), None)
        chat = getattr(self.app, "chat", None)
        if chat is not None:
            chat.show_forgotten(plan)           # the chat underneath drops what went

    def _changed(self, note: str, m) -> None:
        self.notify(note, title="Memory", timeout=6)
        self.refresh_all((m.kind, m.id) if m is not None else None)
        chat = getattr(self.app, "chat", None)
        if chat is not None:
            chat.refresh_sessions()   # forgetting may have taken a whole conversation

    # -- keys -----------------------------------------------------------------------------------------
    def action_focus_search(self) -> None:
        self.search_box.focus()

    def action_back(self) -> None:
        if isinstance(self.focused, Input) and self.search_box.value and self.query_text != self.search_box.value:
            self.search_box.value = ""          # Esc first clears an unsent search
            return
        self.app.pop_screen()

    def action_help(self) -> None:
        from .help import HelpScreen

        self.app.push_screen(HelpScreen())
