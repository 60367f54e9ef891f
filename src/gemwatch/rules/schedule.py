"""Is a wall-clock instant inside a set of daily windows in the store's timezone? (pure)"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gemwatch.config.models import ALL_DAYS, TimeWindow


def in_windows(ts: float, windows: Sequence[TimeWindow], tz: ZoneInfo) -> bool:
    """True when ``ts`` (UTC epoch seconds) falls in any window; no windows means always.

    A window whose end is not after its start runs past midnight into the next day and belongs
    to the day it started on (a Friday 22:00–06:00 window covers Saturday 03:00).
    """
    if not windows:
        return True
    local = datetime.fromtimestamp(ts, tz)
    t = local.time()
    today = ALL_DAYS[local.weekday()]
    yesterday = ALL_DAYS[(local - timedelta(days=1)).weekday()]
    for w in windows:
        if w.start < w.end:
            if today in w.days and w.start <= t < w.end:
                return True
        else:
            if today in w.days and t >= w.start:
                return True
            if yesterday in w.days and t < w.end:
                return True
    return False
