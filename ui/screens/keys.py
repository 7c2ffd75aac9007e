"""The footer's order: Help and Quit first, so a narrow terminal (80 columns) never cuts them off."""
from __future__ import annotations

FIRST = ("help", "quit")


class HelpAndQuitFirst:
    """Mixed into a Screen: its footer lists the help and quit keys before the others."""

    @property
    def active_bindings(self):
        bindings = super().active_bindings   # type: ignore[misc]
        first = {key: b for key, b in bindings.items() if b.binding.action in FIRST}
        return {**first, **bindings}
