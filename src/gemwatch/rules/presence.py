"""Presence: anyone in the given zones (or the whole picture), optionally only in time windows.

The basis for vault access and after-hours rules: one event per episode (from the first person
to the last one leaving), not one per person, so a patrol of two is one incident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from gemwatch.config.models import Camera, PresenceRule
from gemwatch.rules.base import format_duration
from gemwatch.rules.schedule import in_windows
from gemwatch.types import Event, Observation


@dataclass(slots=True)
class _Episode:
    first_ts: float
    last_ts: float
    people: set[int] = field(default_factory=set)
    peak: int = 0  # most people in view at once (track ids over an episode overcount people)
    event: Event | None = None


class PresenceRuleMachine:
    def __init__(self, camera: Camera, rule: PresenceRule, tz: ZoneInfo) -> None:
        self.camera = camera
        self.rule = rule
        self.tz = tz
        self.zone_ids = [z.id for z in camera.zones if z.id in rule.zones or z.kind in rule.zone_kinds]
        self._episode: _Episode | None = None
        self._labels = {z.id: z.label for z in camera.zones}

    @property
    def event_type(self) -> str:
        return f"presence.{self.rule.id}"

    @property
    def applies(self) -> bool:
        """False when the rule targets no zone on this camera (and not the whole frame)."""
        return self.rule.whole_frame or bool(self.zone_ids)

    def _present(self, obs: Observation) -> set[int]:
        if self.rule.whole_frame:
            return {p.track_id for p in obs.people}
        found: set[int] = set()
        for zid in self.zone_ids:
            found.update(obs.zone_people.get(zid, ()))
        return found

    def update(self, obs: Observation) -> list[Event]:
        if not self.applies:
            return []
        present = self._present(obs) if in_windows(obs.ts, self.rule.windows, self.tz) else set()
        ep = self._episode
        events: list[Event] = []
        if present:
            if ep is None or obs.ts - ep.last_ts > self.rule.grace_s:
                events.extend(self._close())
                ep = self._episode = _Episode(obs.ts, obs.ts)
            ep.last_ts = obs.ts
            ep.people.update(present)
            ep.peak = max(ep.peak, len(present))
            if ep.event is None and ep.last_ts - ep.first_ts >= self.rule.min_s:
                ep.event = self._event(ep, ended=False)
                events.append(ep.event)
        elif ep is not None and obs.ts - ep.last_ts > self.rule.grace_s:
            events.extend(self._close())
        return events

    def finish(self, ts: float) -> list[Event]:
        return self._close()

    def _close(self) -> list[Event]:
        ep, self._episode = self._episode, None
        if ep is None or ep.event is None:
            return []
        final = self._event(ep, ended=True)
        final.id = ep.event.id
        return [final]

    def _event(self, ep: _Episode, *, ended: bool) -> Event:
        where = (
            "in view" if self.rule.whole_frame else "in " + ", ".join(self._labels[z] for z in self.zone_ids)
        )
        n = ep.peak
        who = "1 person" if n == 1 else f"up to {n} people"
        when = f" for {format_duration(ep.last_ts - ep.first_ts)}" if ended else ""
        return Event(
            type=self.event_type,
            severity=self.rule.severity,
            camera_id=self.camera.id,
            zone_id=None if self.rule.whole_frame or len(self.zone_ids) != 1 else self.zone_ids[0],
            start_ts=ep.first_ts,
            end_ts=ep.last_ts,
            ended=ended,
            people=tuple(sorted(ep.people)),
            description=f"{who} {where}{when} ({self.rule.id})",
            scores={"duration_s": round(ep.last_ts - ep.first_ts, 2), "people_at_once": float(ep.peak)},
        )


def build_rules(camera: Camera, rules: list[PresenceRule], tz: ZoneInfo) -> list[PresenceRuleMachine]:
    machines = [PresenceRuleMachine(camera, r, tz) for r in rules]
    return [m for m in machines if m.applies]
