"""Loitering: a person stays in an entrance or counter zone longer than the zone allows.

One event per visit: raised when the dwell crosses the threshold, updated with the final
duration when the visit ends. A brief exit or occlusion shorter than ``grace_s`` does not reset
the timer (people step back from a counter, or pass behind another customer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gemwatch.config.models import Camera, LoiteringParams, Zone
from gemwatch.rules.base import format_duration
from gemwatch.types import Event, Observation


@dataclass(slots=True)
class _Visit:
    first_ts: float
    last_ts: float
    event: Event | None = None


@dataclass(slots=True)
class _ZoneWatch:
    zone: Zone
    params: LoiteringParams
    visits: dict[int, _Visit] = field(default_factory=dict)


class LoiteringRule:
    EVENT_TYPE = "loitering"

    def __init__(self, camera: Camera) -> None:
        self.camera = camera
        self._watches: list[_ZoneWatch] = []
        for zone in camera.zones:
            params = zone.loitering_params()
            if params is not None:
                self._watches.append(_ZoneWatch(zone, params))

    def update(self, obs: Observation) -> list[Event]:
        events: list[Event] = []
        for watch in self._watches:
            inside = obs.zone_people.get(watch.zone.id, ())
            for track_id in inside:
                visit = watch.visits.get(track_id)
                if visit is None:
                    watch.visits[track_id] = _Visit(obs.ts, obs.ts)
                    continue
                visit.last_ts = obs.ts
                if visit.event is None and visit.last_ts - visit.first_ts >= watch.params.dwell_s:
                    visit.event = self._event(watch, track_id, visit, ended=False)
                    events.append(visit.event)
            for track_id, visit in list(watch.visits.items()):
                if track_id not in inside and obs.ts - visit.last_ts > watch.params.grace_s:
                    events.extend(self._close(watch, track_id))
        return events

    def finish(self, ts: float) -> list[Event]:
        events: list[Event] = []
        for watch in self._watches:
            for track_id in list(watch.visits):
                events.extend(self._close(watch, track_id))
        return events

    def _close(self, watch: _ZoneWatch, track_id: int) -> list[Event]:
        visit = watch.visits.pop(track_id)
        if visit.event is None:
            return []
        final = self._event(watch, track_id, visit, ended=True)
        final.id = visit.event.id
        return [final]

    def _event(self, watch: _ZoneWatch, track_id: int, visit: _Visit, *, ended: bool) -> Event:
        dwell = visit.last_ts - visit.first_ts
        verb = "stayed" if ended else "has been"
        return Event(
            type=self.EVENT_TYPE,
            severity=watch.params.severity,
            camera_id=self.camera.id,
            zone_id=watch.zone.id,
            start_ts=visit.first_ts,
            end_ts=visit.last_ts,
            ended=ended,
            people=(track_id,),
            description=f"Person {track_id} {verb} at {watch.zone.label} for {format_duration(dwell)}",
            scores={"dwell_s": round(dwell, 2), "threshold_s": watch.params.dwell_s},
        )
