"""Display cases: open longer than a piece takes to go in or out (``case_open_too_long``), or
open with no staff within reach (``case_unattended``); and every opening, for the manager's
audit (``case_opened``, info: when it opened, when it closed, how long it was open).

The trade's rule is that a case stays locked except while a piece goes in or out. Open/closed
comes from the zone state: a contact or lock sensor when one is configured, else the case's
appearance against its closed (and, if given, open) reference. While the case is hidden the
last known state stands. A state read from pictures carries when it was first seen
(``ZoneState.open_since``): openings are dated from then, not from when it was confirmed.
"""

from __future__ import annotations

from gemwatch.config.models import Camera, Zone
from gemwatch.rules.base import format_duration
from gemwatch.rules.counter import EPS, CounterLayout, Hold, close, people_at
from gemwatch.types import Event, Observation, Severity

#: A case shut for less than this and opened again is still the same opening: a lid that
#: bounces, or a state read from pictures that flickers while hands cover the case, is one
#: audit record, not several.
REOPEN_GRACE_S = 1.0


class CaseRule:
    def __init__(self, camera: Camera, zone: Zone, layout: CounterLayout) -> None:
        self.camera = camera
        self.zone = zone
        self.layout = layout
        self.p = zone.case_params()
        self.is_open: bool | None = None
        self._changed_at: float | None = None  # when the current state was first seen
        self._open = Hold()
        self._unattended = Hold()
        self._opening: Event | None = None  # case_opened under way
        self._shut_since: float | None = None

    def _event(
        self, kind: str, start: float, ts: float, text: str, severity: Severity, **scores: float
    ) -> Event:
        return Event(
            type=kind,
            severity=severity,
            camera_id=self.camera.id,
            start_ts=start,
            end_ts=ts,
            zone_id=self.zone.id,
            description=text,
            scores=scores,
        )

    def update(self, obs: Observation) -> list[Event]:
        ts = obs.ts
        st = obs.zones.get(self.zone.id)
        if st is not None and st.open is not None:
            if st.open != self.is_open:
                self._changed_at = min(st.open_since, ts) if st.open_since is not None else ts
            self.is_open = st.open
        events: list[Event] = []
        if self.p.record_openings:
            events.extend(self._record_opening(obs))
        what = self._open.step(ts, self.is_open, self.p.open_max_s)
        if what == "start":
            since = self._open.started(ts)
            self._open.event = self._event(
                "case_open_too_long", since, ts,
                f"{self.zone.label} open for more than {format_duration(self.p.open_max_s)}",
                self.p.severity, threshold_s=self.p.open_max_s,
            )  # fmt: skip
            events.append(self._open.event)
        elif what == "end" and self._open.event is not None:
            ev, self._open.event = self._open.event, None
            events.append(close(ev, ts, f"{self.zone.label} was open for {format_duration(ts - ev.start_ts)}",
                                open_s=ts - ev.start_ts))  # fmt: skip
        staff_near = people_at(obs, self.layout).staff_within_reach
        cond = None if self.is_open is None else self.is_open and not staff_near
        what = self._unattended.step(ts, cond, self.p.unattended_s)
        if what == "start":
            self._unattended.event = self._event(
                "case_unattended", self._unattended.started(ts), ts,
                f"{self.zone.label} open with no staff within reach", Severity.HIGH,
                threshold_s=self.p.unattended_s,
            )  # fmt: skip
            events.append(self._unattended.event)
        elif what == "end" and self._unattended.event is not None:
            ev, self._unattended.event = self._unattended.event, None
            events.append(close(ev, ts))
        return events

    def _record_opening(self, obs: Observation) -> list[Event]:
        """case_opened: reported when the case is seen open (with the staff at the counter then),
        closed (same id) once it has stayed shut ``REOPEN_GRACE_S``; it starts when the case was
        first seen open and ends when it was first seen shut again."""
        ts = obs.ts
        if self.is_open is None:
            return []
        at = self._changed_at if self._changed_at is not None else ts
        if self.is_open:
            self._shut_since = None
            if self._opening is not None:
                return []
            self._opening = self._event("case_opened", at, ts, f"{self.zone.label} opened", Severity.INFO)
            self._opening.people = tuple(sorted(people_at(obs, self.layout).staff))
            return [self._opening]
        if self._opening is None:
            return []
        if self._shut_since is None:
            self._shut_since = at
        if ts - self._shut_since < REOPEN_GRACE_S - EPS:
            return []
        return [self._end_opening(self._shut_since)]

    def _end_opening(self, end: float) -> Event:
        assert self._opening is not None
        ev, self._opening, self._shut_since = self._opening, None, None
        open_s = max(0.0, end - ev.start_ts)
        return close(ev, end, f"{self.zone.label} was open for {format_duration(open_s)}", open_s=open_s)

    def finish(self, ts: float) -> list[Event]:
        events = []
        for hold in (self._open, self._unattended):
            if hold.event is not None:
                events.append(close(hold.event, ts))
                hold.event = None
        if self._opening is not None and self._shut_since is not None:  # shut, within the grace
            events.append(self._end_opening(self._shut_since))
        elif self._opening is not None:  # still open when watching stops: not "was open for"
            ev, self._opening = self._opening, None
            open_s = max(0.0, ts - ev.start_ts)
            text = f"{self.zone.label} still open when watching stopped (open at least {format_duration(open_s)})"
            events.append(close(ev, ts, text, open_s=open_s, still_open=1.0))
        return events
