"""What every rule is: a small state machine over Observations that returns Events."""

from __future__ import annotations

from typing import Protocol

from gemwatch.types import Event, Observation


class Rule(Protocol):
    """``update`` is called once per analysed Observation, in time order; ``finish`` once at the end
    of a stream (file ended, camera stopped) so open events get their final duration."""

    def update(self, obs: Observation) -> list[Event]: ...

    def finish(self, ts: float) -> list[Event]: ...


def format_duration(seconds: float) -> str:
    """'1.4 s', '45 s', '4 min', '4 min 30 s', '1 h 5 min': short enough for a phone
    notification; tenths under 10 s (a drawer open 1.4 s is not 'open for 1 s')."""
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"{m} min" if r == 0 else f"{m} min {r} s"
    h, r = divmod(s, 3600)
    return f"{h} h {r // 60} min" if r >= 60 else f"{h} h"
