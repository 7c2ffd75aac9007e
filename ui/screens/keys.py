"""The footer's order and fit: Help and Quit first, and on a narrow terminal (80 columns) only the keys that
fit whole, so none is cut in the middle of its name ("^r Voic") when a focused list adds keys of its own."""
from __future__ import annotations

FIRST = ("help", "quit")


class HelpAndQuitFirst:
    """Mixed into a Screen: its footer lists the help and quit keys before the others, then as many of the
    rest as fit the screen's width (every key still works; F1 lists them all)."""

    @property
    def active_bindings(self):
        bindings = super().active_bindings   # type: ignore[misc]
        first = {key: b for key, b in bindings.items() if b.binding.action in FIRST}
        ordered = {**first, **bindings}
        width = self.size.width   # type: ignore[attr-defined]
        if not width:
            return ordered
        out, used, shown = {}, 0, set()
        for key, b in ordered.items():
            action = b.binding.action
            if b.binding.show and action not in shown:
                # as the compact footer draws it: "^q Quit", one space between keys (the first key of an
                # action stands for all of them)
                key = self.app.get_key_display(b.binding)   # type: ignore[attr-defined]
                needed = len(key) + 1 + len(b.binding.description) + (1 if used else 0)
                if used + needed > width:
                    continue
                used += needed
                shown.add(action)
            out[key] = b
        return out
