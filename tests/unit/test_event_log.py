"""``gemwatch run`` logs each event once when first reported and once when it ends (its log
used to show cameras going online and ending, and nothing of what they saw)."""

from __future__ import annotations

import logging
from dataclasses import replace

from gemwatch.events.bus import EventLog
from gemwatch.types import Event, Severity


def test_one_line_when_reported_and_one_when_it_ends(caplog) -> None:
    sink = EventLog(logging.getLogger("test.events"))
    ev = Event(type="loitering", severity=Severity.MEDIUM, camera_id="door", start_ts=100.0,
               description="Person 4 has been at the door for 60 s")  # fmt: skip
    instant = Event(type="item_placed", severity=Severity.INFO, camera_id="pos", start_ts=100.0,
                    description="Something placed on Desk", end_ts=100.5, ended=True)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="test.events"):
        sink.event(ev)
        sink.event(replace(ev, end_ts=130.0))  # an update: not logged again
        sink.event(replace(ev, end_ts=175.0, ended=True))
        sink.event(instant)
    assert [r.getMessage() for r in caplog.records] == [
        "event loitering (medium) on camera door: Person 4 has been at the door for 60 s",
        "event loitering on camera door ended after 75.0 s",
        "event item_placed (info) on camera pos: Something placed on Desk",
    ]
