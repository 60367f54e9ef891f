"""Display cases: open longer than a piece takes to go in or out (``case_open_too_long``), or
open with no staff within reach (``case_unattended``).

The trade's rule is that a case stays locked except while a piece goes in or out. Open/closed
comes from the zone state: a contact or lock sensor when one is configured, else the case's
appearance against its closed (and, if given, open) reference. While the case is hidden the
last known state stands.
"""

from __future__ import annotations

from gemwatch.config.models import Camera, Zone
from gemwatch.rules.base import format_duration
from gemwatch.rules.counter import CounterLayout, Hold, close, people_at
from gemwatch.types import Event, Observation, Severity


class CaseRule:
    def __init__(self, camera: Camera, zone: Zone, layout: CounterLayout) -> None:
        self.camera = camera
        self.zone = zone
        self.layout = layout
        self.p = zone.case_params()
        self.is_open: bool | None = None
        self._open = Hold()
        self._unattended = Hold()

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
            self.is_open = st.open
        events: list[Event] = []
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

    def finish(self, ts: float) -> list[Event]:
        events = []
        for hold in (self._open, self._unattended):
            if hold.event is not None:
                events.append(close(hold.event, ts))
                hold.event = None
        return events
