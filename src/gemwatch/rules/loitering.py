"""Loitering: a person stays in an entrance or counter zone longer than the zone allows.

One event per visit: raised when the dwell crosses the threshold, updated with the final
duration when the visit ends. A brief exit or occlusion shorter than ``grace_s`` does not reset
the timer (people step back from a counter, or pass behind another customer).

Who loiters. What a jeweller wants to hear about is someone lingering at the door or at a
high-value counter *without being served* (the "casing" signal; DOMAIN.md). So:

- staff and guards never loiter (``ignore_staff``): the associate behind the counter and the
  guard at the door are there all day;
- at a counter zone (``unserved_only``), only the time without a staff member within reach
  counts, with the counter rule's own notion of served (``rules.counter.people_at``: a staff
  member on the counter's staff side, within ``protocol.reach``). Entrance zones keep the plain
  dwell: nobody serves a doorway.

Decision: being served *pauses* the clock, it does not restart it. Casing often includes a short
interaction ("just looking, thanks") followed by more lingering, and perception flickers (a
staff member passing within reach for a moment, a role decided a second late) would wipe
minutes of unserved lingering if a served moment restarted the count. The price: a customer
who waited long before being served and lingers after the showing carries the earlier wait; the
event says how much of the stay was unserved, and ``not_served`` (rules/counter.py) has already
reported the wait. Time between two sightings counts as served when the person was served at
the earlier one (the state holds until it is seen to change). ``unserved_only: false`` gives
back the plain dwell for a store that wants any long stay reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gemwatch.config.models import Camera, LoiteringParams, Zone, ZoneKind
from gemwatch.rules.base import format_duration
from gemwatch.rules.counter import STAFF_ROLES, CounterLayout, counters_of, people_at
from gemwatch.types import Event, Observation


@dataclass(slots=True)
class _Visit:
    first_ts: float
    last_ts: float
    served: bool = False  # served at the last sighting
    served_s: float = 0.0  # time served so far
    event: Event | None = None

    @property
    def dwell_s(self) -> float:
        return self.last_ts - self.first_ts

    @property
    def unserved_s(self) -> float:
        return self.dwell_s - self.served_s


@dataclass(slots=True)
class _ZoneWatch:
    zone: Zone
    params: LoiteringParams
    counter: CounterLayout | None = None  # set where only unserved time counts
    visits: dict[int, _Visit] = field(default_factory=dict)

    def counted_s(self, visit: _Visit) -> float:
        return visit.unserved_s if self.counter is not None else visit.dwell_s


class LoiteringRule:
    EVENT_TYPE = "loitering"

    def __init__(self, camera: Camera) -> None:
        self.camera = camera
        self._watches: list[_ZoneWatch] = []
        layouts = counters_of(camera)
        for zone in camera.zones:
            params = zone.loitering_params()
            if params is None:
                continue
            counter = None
            if params.unserved_only and zone.kind == ZoneKind.COUNTER:
                counter = next((c for c in layouts if zone in c.customer), None)
            self._watches.append(_ZoneWatch(zone, params, counter))

    def update(self, obs: Observation) -> list[Event]:
        events: list[Event] = []
        served: dict[str, frozenset[int]] = {}  # counter id → its served customers, this instant
        for watch in self._watches:
            inside = [t for t in obs.zone_people.get(watch.zone.id, ()) if not self._exempt(obs, watch, t)]
            now_served: frozenset[int] = frozenset()
            if watch.counter is not None:
                if watch.counter.id not in served:
                    served[watch.counter.id] = people_at(obs, watch.counter).served
                now_served = served[watch.counter.id]
            for track_id in inside:
                visit = watch.visits.get(track_id)
                if visit is None:
                    watch.visits[track_id] = _Visit(obs.ts, obs.ts, served=track_id in now_served)
                    continue
                if visit.served:
                    visit.served_s += obs.ts - visit.last_ts
                visit.last_ts = obs.ts
                visit.served = track_id in now_served
                if visit.event is None and watch.counted_s(visit) >= watch.params.dwell_s:
                    visit.event = self._event(watch, track_id, visit, ended=False)
                    events.append(visit.event)
            for track_id, visit in list(watch.visits.items()):
                if track_id not in inside and obs.ts - visit.last_ts > watch.params.grace_s:
                    events.extend(self._close(watch, track_id))
        return events

    @staticmethod
    def _exempt(obs: Observation, watch: _ZoneWatch, track_id: int) -> bool:
        """Staff and guards do not loiter (where the zone says so)."""
        if not watch.params.ignore_staff:
            return False
        person = obs.person(track_id)
        return person is not None and person.role in STAFF_ROLES

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
        dwell = visit.dwell_s
        verb = "stayed" if ended else "has been"
        text = f"Person {track_id} {verb} at {watch.zone.label} for {format_duration(dwell)}"
        scores = {"dwell_s": round(dwell, 2), "threshold_s": watch.params.dwell_s}
        if watch.counter is not None:
            unserved = visit.unserved_s
            if visit.served_s > 0:
                text += f", {format_duration(unserved)} of it without being served"
            else:
                text += " without being served"
            scores["unserved_s"] = round(unserved, 2)
        return Event(
            type=self.EVENT_TYPE,
            severity=watch.params.severity,
            camera_id=self.camera.id,
            zone_id=watch.zone.id,
            start_ts=visit.first_ts,
            end_ts=visit.last_ts,
            ended=ended,
            people=(track_id,),
            description=text,
            scores=scores,
        )
