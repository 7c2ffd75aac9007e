"""Where a message goes before it is answered as chat: the routes Assistant.prepare tries in order.

Handed to the Assistant by the wiring, so that the core imports no route."""
from __future__ import annotations

from . import missed
from .commands import ChatCommands


def default_routes() -> list:
    """Chat commands (/remember, /forget and its "yes", /help, an unknown /command; "please forget ..." in
    words when something matches), then "what did I miss" questions, answered from what was heard;
    everything else is chat."""
    return [ChatCommands(), missed.prepare]
