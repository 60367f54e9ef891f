"""Trays: a tray leaving its place (``tray_removed``) and pieces that do not come back
(``item_missing``).

Both are decided only on measured zone states (nothing over the tray, nothing moving), so a
hand over the tray is never a missing piece. A shortfall against the armed count is a piece
*out* while a customer is at the counter (a showing); it becomes *missing* once it has been
seen for ``confirm_s`` with no customer at the counter for ``return_s`` (or, with no customer
at all, at once after ``confirm_s``). After an ``item_missing`` the new count is the baseline,
so a second loss is a second event.
"""

from __future__ import annotations

from gemwatch.config.models import Camera, Zone
from gemwatch.rules.base import format_duration
from gemwatch.rules.counter import EPS, MIN_COUNT_CONFIDENCE, CounterLayout, Hold, close, customer_at_counter
from gemwatch.types import Event, Observation


class TrayRule:
    def __init__(self, camera: Camera, zone: Zone, layout: CounterLayout) -> None:
        self.camera = camera
        self.zone = zone
        self.layout = layout
        self.p = zone.tray_params()
        self.expected: int | None = None
        self._removed = Hold()
        self._back = Hold()
        self._last_in_place: float | None = None
        self._deficit_since: float | None = None
        self._last_customer: float | None = None

    def update(self, obs: Observation) -> list[Event]:
        ts = obs.ts
        customer = customer_at_counter(obs, self.layout)
        if customer:
            self._last_customer = ts
        st = obs.zones.get(self.zone.id)
        if st is None or not st.measured or st.change is None:
            return []
        if self.expected is None and st.reference_count is not None:
            self.expected = st.reference_count
        events: list[Event] = []
        gone = st.change >= self.p.removed_change
        if self._removed.event is None:
            if not gone:
                self._last_in_place = ts
            if self._removed.step(ts, gone, self.p.confirm_s) == "start":
                seen_gone = self._removed.since if self._removed.since is not None else ts
                last = self._last_in_place if self._last_in_place is not None else seen_gone
                self._removed.event = Event(
                    type="tray_removed",
                    severity=self.p.severity,
                    camera_id=self.camera.id,
                    start_ts=seen_gone,
                    end_ts=ts,
                    zone_id=self.zone.id,
                    description=f"{self.zone.label} left its place "
                    f"(last seen there {format_duration(seen_gone - last)} earlier)",
                    scores={"change": round(st.change, 3), "threshold": self.p.removed_change},
                    extra={"last_seen_in_place_ts": last},
                )
                events.append(self._removed.event)
            if gone:
                return events
        else:
            back = st.change < self.p.removed_change * 0.6
            if self._back.step(ts, back, self.p.confirm_s) == "start":
                ev = self._removed.event
                self._removed, self._back = Hold(), Hold()
                self._last_in_place = ts
                events.append(close(ev, ts, f"{self.zone.label} was out of its place until it came back"))
            return events
        events += self._missing(ts, st.count, st.count_confidence, customer)
        return events

    def _missing(self, ts: float, count: int | None, confidence: float, customer: bool) -> list[Event]:
        if count is None or confidence < MIN_COUNT_CONFIDENCE or self.expected is None:
            return []
        if count >= self.expected:
            self._deficit_since = None
            return []
        if self._deficit_since is None:
            self._deficit_since = ts
        if ts - self._deficit_since < self.p.confirm_s - EPS or customer:
            return []
        if self._last_customer is not None and ts - self._last_customer < self.p.return_s:
            return []
        lost = self.expected - count
        ev = Event(
            type="item_missing",
            severity=self.p.severity,
            camera_id=self.camera.id,
            start_ts=self._deficit_since,
            end_ts=ts,
            ended=True,
            zone_id=self.zone.id,
            description=f"{lost} piece{'s' if lost > 1 else ''} missing from {self.zone.label} "
            f"({self.expected} → {count})",
            scores={
                "expected": float(self.expected),
                "count": float(count),
                "confidence": round(confidence, 3),
            },
        )
        self.expected = count
        self._deficit_since = None
        return [ev]

    def finish(self, ts: float) -> list[Event]:
        if self._removed.event is None:
            return []
        ev, self._removed = self._removed.event, Hold()
        return [close(ev, ts)]
