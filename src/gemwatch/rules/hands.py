"""Hands across the counter, from the pose keypoints: ``reach_over`` and ``hand_over``.

- ``reach_over`` (HIGH by default): a customer's hand on the staff side of the counter (inside a
  ``staff_area`` zone) for ``reach_over_s``. It is how counter thefts start (DOMAIN.md: the
  associate must never leave a piece within the customer's reach; grab-and-run is two thirds of
  thefts): the customer leans over and takes from the tray, the till or the shopkeeper's side.
  One event per reach, with its start and end; staff hands never count.
- ``hand_over`` (info): a customer's and a staff member's wrists close together, a piece or a
  note passing between them. It is what a showing is made of, so it is recorded on the showing
  session (``hand_overs``), not raised as a concern.

Where the hand is. A wrist keypoint found at ``wrist_score`` or more is the hand. When the pose
finds neither wrist (MultiPose scores are low on CCTV, and a customer bent over a counter is the
hardest pose there is), the person's box still bounds their hands: a box that does not touch the
staff area proves no hand is there, and a box with at least ``reach_over_box`` of it inside the
staff area says some of the body is (an arm, or the head and shoulders leaning across). Between
the two nothing is known, and nothing is guessed: the far end of a forearm whose wrist was not
found is not extrapolated, because an elbow says nothing about where the hand went.

Who is a customer here. Anyone whose role is customer, and anyone of unknown role standing on the
counter's customer side: a person whose box stretches across the counter has their foot point
pulled off the customer side, so the customer side alone would lose them exactly while they reach.
A person of unknown role elsewhere may be staff not yet recognised, and is left out.

Timing. A run of sightings that say "yes" lasts until a sighting says "no", or until the person
has not been seen saying "yes" for ``UNSEEN_S`` (the detector loses a person bent over a counter
for a second or more; the tracker keeps their id that long). Unknown sightings neither extend nor
end a run. Times are the frames' timestamps.

Measured (the report of issue 5, default detector, eval/counter.py on ../shared/data): on the
Fatehpur CCTV clip the customer's reach from 10.8-13.8 s is seen from 10.6 to 13.4 s (box share
0.13-0.56, one wrist at 13.4 s); his reach at 5.5-6.5 s is not (the detector loses both people
then), nor the one at 17.5-18.5 s (his hand stays on his half of the counter top, outside the drawn
staff area). On the POS clips no customer box reaches the cashier's area (box share 0 throughout).
Wrist-to-wrist distance, as a fraction of the taller box: 0.25 at the cash hand-over of
pos_counter_theft.mp4 (4.8 s) and 0.18 at the earphones handed over in pos_counter_theft2.mp4
(1.4 s); at least 0.37 at every other instant with both wrists found; the cash hand-over of
pos_counter_theft2.mp4 (4.4-5.6 s) is missed: the cashier's wrist is not found while the hands meet.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gemwatch.config.models import Camera
from gemwatch.rules.counter import EPS, PIECES_LOG_S, STAFF_ROLES, CounterLayout, close, people_at
from gemwatch.rules.geometry import box_share_in, points_in_polygon
from gemwatch.types import LEFT_WRIST, RIGHT_WRIST, Event, Observation, Person, Role, Severity

if TYPE_CHECKING:
    from gemwatch.rules.counter import CounterRule

#: A run of "yes" survives this long without a sighting that says yes (the tracker's default
#: ``lost_after_s``: a person hidden this long is still the same person to it).
UNSEEN_S = 2.0

Polygon = Sequence[tuple[float, float]]


# ------------------------------------------------------------------------------ geometry


def found_wrists(person: Person, min_score: float) -> np.ndarray:
    """The wrists the pose found, (k, 2) frame pixels, k = 0..2."""
    kp = person.keypoints
    if kp is None:
        return np.empty((0, 2))
    wrists = np.asarray(kp, dtype=np.float64)[[LEFT_WRIST, RIGHT_WRIST]]
    return wrists[wrists[:, 2] >= min_score, :2]


def reach_verdict(
    person: Person,
    polygons: Sequence[Polygon],
    width: int,
    height: int,
    *,
    min_score: float,
    box_share: float | None,
) -> tuple[bool | None, str]:
    """Whether a hand of ``person`` is inside the ``polygons`` (a staff side), and what says so.

    (True, "wrist"): a found wrist is inside. (False, ...): both wrists found elsewhere, or the
    box (which holds the hands) does not touch the polygons. (True, "box"): no wrist inside and at
    least ``box_share`` of the box is (some of the body is there). (None, ""): not known.
    """
    if not polygons:
        return False, ""
    wrists = found_wrists(person, min_score)
    if len(wrists):
        norm = wrists / np.array([max(width, 1), max(height, 1)])
        if any(points_in_polygon(norm, poly).any() for poly in polygons):
            return True, "wrist"
        if len(wrists) == 2:
            return False, "wrist"
    share = box_share_in(person.box, polygons, width, height)
    if share <= 0.0:
        return False, "box"
    if box_share is not None and share >= box_share - EPS:
        return True, "box"
    return None, ""


def wrist_gap(a: Person, b: Person, min_score: float) -> float | None:
    """Shortest distance between a found wrist of ``a`` and one of ``b``, as a fraction of the
    taller of their boxes (a seated cashier's box is short; the standing customer's sets the
    scale). None when either has no wrist found."""
    wa, wb = found_wrists(a, min_score), found_wrists(b, min_score)
    if not len(wa) or not len(wb):
        return None
    tallest = max(a.box[3] - a.box[1], b.box[3] - b.box[1], 1.0)
    gaps = np.hypot(*(wa[:, None, :] - wb[None, :, :]).transpose(2, 0, 1))
    return float(gaps.min()) / tallest


def reaching_candidates(obs: Observation, layout: CounterLayout) -> list[Person]:
    """People whose hands on the staff side are a reach-over: customers anywhere, and people of
    unknown role standing on this counter's customer side (never staff or guards)."""
    front: set[int] = set()
    for zone in layout.customer:
        front.update(obs.zone_people.get(zone.id, ()))
    return [
        p
        for p in obs.people
        if p.role not in STAFF_ROLES and (p.role == Role.CUSTOMER or p.track_id in front)
    ]


# --------------------------------------------------------------------------------- timing


@dataclass(slots=True)
class Run:
    """One person's (or pair's) current run of sightings that say yes, in seconds."""

    since: float | None = None
    last_true: float | None = None
    event: Event | None = None

    def stops(self, ts: float, verdict: bool | None) -> bool:
        """A running run ends now: a sighting says no, or none said yes for ``UNSEEN_S``."""
        if self.since is None or self.last_true is None:
            return False
        return verdict is False or ts - self.last_true > UNSEEN_S + EPS


def advance(
    run: Run, ts: float, verdict: bool | None, need_s: float, make: Callable[[float], Event]
) -> list[Event]:
    """Step one run: close its event when it stops (at its last "yes"), open one (``make(start)``)
    when it has lasted ``need_s``."""
    events: list[Event] = []
    if run.stops(ts, verdict):
        if run.event is not None and run.last_true is not None:
            events.append(close(run.event, run.last_true, duration_s=run.last_true - run.event.start_ts))
        run.since = run.last_true = None
        run.event = None
    if verdict:
        if run.since is None:
            run.since = ts
        run.last_true = ts
        if run.event is None and ts - run.since >= need_s - EPS:
            run.event = make(run.since)
            run.event.end_ts = ts  # known until now
            events.append(run.event)
    return events


# ----------------------------------------------------------------------------------- rule


class HandsRule:
    """``reach_over`` and ``hand_over`` at one counter with a customer side and a staff area.

    ``counter`` is the counter's CounterRule: a hand-over during its showing session is recorded
    there (``ShowingSession.hand_overs``), also when the session is recognised only after it (a
    session starts before it is known: ``session_min_s``), and both events carry the id of the
    session going on when they are reported.
    """

    def __init__(self, camera: Camera, layout: CounterLayout, counter: CounterRule | None = None) -> None:
        self.camera = camera
        self.layout = layout
        self.counter = counter
        self.p = layout.protocol
        self._reach: dict[int, Run] = {}
        self._pairs: dict[tuple[int, int], Run] = {}
        self._handed: deque[float] = deque()  # recent hand-overs, for a session recognised later

    def update(self, obs: Observation) -> list[Event]:
        events = self._reach_over(obs) + self._hand_over(obs)
        self._file_hand_overs(obs.ts)
        return events

    def finish(self, ts: float) -> list[Event]:
        events: list[Event] = []
        for run in [*self._reach.values(), *self._pairs.values()]:
            if run.event is not None and run.last_true is not None:
                events.append(close(run.event, run.last_true, duration_s=run.last_true - run.event.start_ts))
        self._reach.clear()
        self._pairs.clear()
        return events

    # -- reach over

    def _reach_over(self, obs: Observation) -> list[Event]:
        polygons = [z.polygon for z in self.layout.staff]
        seen: dict[int, tuple[bool | None, str]] = {}
        for person in reaching_candidates(obs, self.layout):
            seen[person.track_id] = reach_verdict(
                person, polygons, obs.width, obs.height,
                min_score=self.p.wrist_score, box_share=self.p.reach_over_box,
            )  # fmt: skip
        events: list[Event] = []
        for tid in sorted(set(self._reach) | set(seen)):
            verdict, evidence = seen.get(tid, (None, ""))
            run = self._reach.setdefault(tid, Run())

            def make(start: float, tid: int = tid, evidence: str = evidence) -> Event:
                how = "a wrist seen there" if evidence == "wrist" else "part of the body there, no wrist seen"
                return self._event(
                    "reach_over", start, self.p.reach_over_severity,
                    f"Customer #{tid} reached over {self.layout.label} into the staff side ({how})",
                    (tid,), evidence=evidence, threshold_s=self.p.reach_over_s,
                )  # fmt: skip

            events += advance(run, obs.ts, verdict, self.p.reach_over_s, make)
            if run.since is None:
                del self._reach[tid]
        return events

    # -- hand over

    def _hand_over(self, obs: Observation) -> list[Event]:
        who = people_at(obs, self.layout)
        seen: dict[tuple[int, int], tuple[bool | None, float | None]] = {}
        for c in who.customers:
            for s in who.staff:
                pc, ps = obs.person(c), obs.person(s)
                if pc is None or ps is None:
                    continue
                gap = wrist_gap(pc, ps, self.p.wrist_score)
                seen[(c, s)] = (None if gap is None else gap <= self.p.hand_over_distance + EPS, gap)
        events: list[Event] = []
        for pair in sorted(set(self._pairs) | set(seen)):
            verdict, gap = seen.get(pair, (None, None))
            run = self._pairs.setdefault(pair, Run())

            def make(start: float, pair: tuple[int, int] = pair, gap: float | None = gap) -> Event:
                c, s = pair
                ev = self._event(
                    "hand_over", start, Severity.INFO,
                    f"Hand-over at {self.layout.label} between customer #{c} and staff #{s}",
                    pair, gap=gap if gap is not None else 0.0, threshold=self.p.hand_over_distance,
                )  # fmt: skip
                self._handed.append(start)
                return ev

            events += advance(run, obs.ts, verdict, self.p.hand_over_s, make)
            if run.since is None:
                del self._pairs[pair]
        return events

    def _file_hand_overs(self, ts: float) -> None:
        """Record the hand-overs since the current session began on it (once each)."""
        while self._handed and ts - self._handed[0] > PIECES_LOG_S:
            self._handed.popleft()
        session = self.counter.session if self.counter is not None else None
        if session is None:
            return
        new = [t for t in self._handed if t >= session.start_ts - EPS and t not in session.hand_overs]
        if new:
            session.hand_overs[:] = sorted([*session.hand_overs, *new])

    def _event(
        self, kind: str, start: float, severity: Severity, text: str, people: Iterable[int],
        evidence: str | None = None, **scores: float,
    ) -> Event:  # fmt: skip
        extra: dict[str, object] = {"counter": self.layout.id}
        if evidence is not None:
            extra["evidence"] = evidence
        session = self.counter.session if self.counter is not None else None
        if session is not None and session.event is not None:
            extra["session_id"] = session.event.id
        return Event(
            type=kind,
            severity=severity,
            camera_id=self.camera.id,
            start_ts=start,
            end_ts=start,
            description=text,
            zone_id=self.layout.zone_id,
            people=tuple(sorted(people)),
            scores={k: round(v, 3) for k, v in scores.items()},
            extra=extra,
        )
