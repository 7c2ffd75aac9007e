"""Where a message goes before it is answered as chat: the routes Assistant.prepare tries in order.

Handed to the Assistant by the wiring, so that the core imports no route."""
from __future__ import annotations

from . import missed


def default_routes() -> list:
    """"What did I miss" questions, answered from what was heard; everything else is chat."""
    return [missed.prepare]
