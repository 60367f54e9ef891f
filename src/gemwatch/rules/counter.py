"""The counter: which zones form a counter, who is where, and the showing protocol.

A counter is its customer side (``counter`` zone), its staff side (``staff_area``), the
showing pad (``showing_area``) and the trays and cases behind it; zones are grouped by their
``counter`` key (or all of a camera's zones form one counter). ``CounterRule`` turns each
Observation into showing sessions and the protocol events the trade's security bodies and
insurers prescribe (Jewelers' Security Alliance, Jewelers Mutual; DOMAIN.md):

- ``showing_session`` (info): a customer on the customer side and staff on the staff side
  within reach; updated when it ends, with the pieces out over time and the staff member;
- ``too_many_pieces``: more than ``max_pieces`` out of the case at once;
- ``tray_on_counter``: a whole tray out of its place during a showing (strict) or still out
  after it (lenient);
- ``customer_alone``: a piece out while no staff member is within reach, or every one within
  reach has turned their back for longer than ``turned_away_s`` (``rules/facing.py``);
- ``not_served``: a customer at the counter with no staff within reach for ``not_served_s``;
- ``item_outside_boundary``: a piece outside the showing pad while a customer is present;
- ``counter_obstruction``: a bag or package next to the pad, hiding it from the associate;
- ``item_placed`` / ``item_removed`` (info): something put on / taken off the showing pad;
- ``item_unattended``: something lies on the pad with nobody at the counter;
- ``reach_over`` and ``hand_over`` (info): hands across the counter, from the pose keypoints
  (``rules/hands.py``, a rule of its own that records hand-overs on the session here).

Pure state machine over Observations; thresholds in seconds from config.
"""

from __future__ import annotations

import math
from collections import Counter as Tally
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from gemwatch.config.counter import CounterProtocol
from gemwatch.config.models import Camera, Zone, ZoneKind
from gemwatch.rules.base import format_duration
from gemwatch.rules.facing import TurnWatch, chest_point, turned_away
from gemwatch.types import Event, Observation, Role, Severity, ZoneState

if TYPE_CHECKING:
    from gemwatch.rules.cases import CaseRule
    from gemwatch.rules.hands import HandsRule
    from gemwatch.rules.trays import TrayRule

BAG_LABELS = frozenset({"handbag", "backpack", "suitcase"})
STAFF_ROLES = frozenset({Role.STAFF, Role.GUARD})
DEFAULT_COUNTER = "counter"
#: Counts less sure than this are not used (a textured surface, a blob of borderline size).
MIN_COUNT_CONFIDENCE = 0.5
EPS = 1e-6
#: How far back the pieces-out history reaches (a session is recognised after it began).
PIECES_LOG_S = 60.0
#: Fewer pieces counted is not "taken" while more than this share of the cells where something
#: was put on the pad are hidden (a sleeve over the piece hides it, it does not take it).
PAD_HIDDEN_MAX = 0.1
#: Something must be seen on (or off) the pad this long before item_placed (item_removed).
PAD_CONFIRM_S = 0.6  # timestamps are floats: 0.2 + 0.2 is not quite 0.4
#: "Nobody at the counter" survives someone seen for less than this (the grace every counter
#: condition has): on the classroom clip the detector puts a false person on the empty desk for
#: single frames at 5.1, 5.7 and 6.3 s.
UNATTENDED_GRACE_S = 1.0


# ------------------------------------------------------------------------------------- layout


@dataclass(frozen=True, slots=True)
class CounterLayout:
    """The zones of one counter."""

    id: str
    customer: tuple[Zone, ...] = ()
    staff: tuple[Zone, ...] = ()
    showing: tuple[Zone, ...] = ()
    trays: tuple[Zone, ...] = ()
    cases: tuple[Zone, ...] = ()

    @property
    def protocol(self) -> CounterProtocol:
        return self.customer[0].protocol_params() if self.customer else CounterProtocol()

    @property
    def label(self) -> str:
        return self.customer[0].label if self.customer else self.id

    @property
    def zone_id(self) -> str | None:
        return self.customer[0].id if self.customer else None


def counters_of(camera: Camera) -> list[CounterLayout]:
    """Group a camera's counter-related zones by their ``counter`` key."""
    groups: dict[str, dict[ZoneKind, list[Zone]]] = {}
    wanted = {ZoneKind.COUNTER, ZoneKind.STAFF_AREA, ZoneKind.SHOWING_AREA, ZoneKind.TRAY, ZoneKind.CASE}
    for zone in camera.zones:
        if zone.kind in wanted:
            groups.setdefault(zone.counter or DEFAULT_COUNTER, {}).setdefault(zone.kind, []).append(zone)
    return [
        CounterLayout(
            cid,
            tuple(kinds.get(ZoneKind.COUNTER, [])),
            tuple(kinds.get(ZoneKind.STAFF_AREA, [])),
            tuple(kinds.get(ZoneKind.SHOWING_AREA, [])),
            tuple(kinds.get(ZoneKind.TRAY, [])),
            tuple(kinds.get(ZoneKind.CASE, [])),
        )
        for cid, kinds in groups.items()
    ]


@dataclass(frozen=True, slots=True)
class CounterPeople:
    """Who is at one counter at one instant."""

    customers: frozenset[int]
    staff: frozenset[int]
    served: frozenset[int]  # customers with a staff member within reach

    @property
    def staff_within_reach(self) -> bool:
        return bool(self.staff)


def people_at(obs: Observation, layout: CounterLayout) -> CounterPeople:
    """Customers on the customer side (anyone there who is not staff), staff on the staff side
    (or anywhere in view when the counter has no staff_area), and which customers are served."""
    customers: set[int] = set()
    for zone in layout.customer:
        customers.update(obs.zone_people.get(zone.id, ()))
    staff: set[int] = set()
    if layout.staff:
        for zone in layout.staff:
            staff.update(t for t in obs.zone_people.get(zone.id, ()) if _role(obs, t) in STAFF_ROLES)
    else:
        staff.update(p.track_id for p in obs.people if p.role in STAFF_ROLES)
    customers = {t for t in customers if _role(obs, t) not in STAFF_ROLES}
    reach = layout.protocol.reach
    served: set[int] = set()
    for c in customers:
        if any(_within(obs, c, s, reach) for s in staff):
            served.add(c)
    return CounterPeople(frozenset(customers), frozenset(staff), frozenset(served))


def _role(obs: Observation, track_id: int) -> Role:
    p = obs.person(track_id)
    return p.role if p is not None else Role.UNKNOWN


def _within(obs: Observation, a: int, b: int, reach: float | None) -> bool:
    if reach is None:
        return True
    pa, pb = obs.person(a), obs.person(b)
    if pa is None or pb is None:
        return False
    (ax, ay), (bx, by) = pa.foot, pb.foot
    return math.hypot(ax - bx, ay - by) / max(obs.width, 1) <= reach


def pieces_out(states: dict[str, ZoneState], layout: CounterLayout) -> int | None:
    """Pieces out of the case: the trays' shortfall against their armed counts, or the pieces
    lying on the pad, whichever is larger (a piece in a hand is only seen as a tray's shortfall).
    None while nothing has been counted."""
    shortfall = None
    for zone in layout.trays:
        s = states.get(zone.id)
        if s is not None and s.count is not None and s.reference_count is not None and _sure(s):
            shortfall = (shortfall or 0) + max(0, s.reference_count - s.count)
    on_pad = None
    for zone in layout.showing:
        s = states.get(zone.id)
        if s is not None and s.count is not None and _sure(s):
            on_pad = (on_pad or 0) + max(0, s.count - (s.reference_count or 0))
    if shortfall is None and on_pad is None:
        return None
    return max(shortfall or 0, on_pad or 0)


def _sure(state: ZoneState) -> bool:
    return state.count_confidence >= MIN_COUNT_CONFIDENCE


# ----------------------------------------------------------------------------------- timing


@dataclass(slots=True)
class Hold:
    """A condition that must hold ``need_s`` before it counts and be false ``grace_s`` before it
    stops; ``None`` (not measured: occluded, out of view) neither advances nor resets it."""

    since: float | None = None
    last_true: float | None = None
    event: Event | None = None

    def started(self, default: float) -> float:
        """When the current run began (``default`` when none is running)."""
        return self.since if self.since is not None else default

    def step(self, ts: float, cond: bool | None, need_s: float, grace_s: float = 0.0) -> str | None:
        """'start' when the condition has just held long enough, 'end' when a counted run stops."""
        if cond is None:
            return None
        if cond:
            if self.since is None:
                self.since = ts
            self.last_true = ts
            if self.event is None and ts - self.since >= need_s - EPS:
                return "start"
            return None
        if self.since is not None and (self.last_true is None or ts - self.last_true >= grace_s - EPS):
            counted = self.event is not None
            self.since = None
            return "end" if counted else None
        return None


def close(event: Event, end_ts: float, description: str | None = None, **scores: float) -> Event:
    """The final update of an open event (same id)."""
    return Event(
        type=event.type,
        severity=event.severity,
        camera_id=event.camera_id,
        start_ts=event.start_ts,
        description=description or event.description,
        zone_id=event.zone_id,
        end_ts=end_ts,
        ended=True,
        people=event.people,
        scores={**event.scores, **scores},
        id=event.id,
        extra=dict(event.extra),
    )


# -------------------------------------------------------------------------------- the counter


@dataclass(slots=True)
class ShowingSession:
    """One showing: customer and staff facing each other across the counter."""

    start_ts: float
    last_ts: float
    arrived_ts: float  # when the first of its customers reached the counter
    customers: set[int] = field(default_factory=set)
    staff_seen: Tally[int] = field(default_factory=Tally)
    pieces: list[tuple[float, int]] = field(default_factory=list)
    violations: Tally[str] = field(default_factory=Tally)
    identities: dict[int, str] = field(default_factory=dict)  # staff track → enrolled identity (faces)
    # When a piece or note passed hands (rules/hands.py).
    hand_overs: list[float] = field(default_factory=list)
    event: Event | None = None

    @property
    def staff_member(self) -> int | None:
        return self.staff_seen.most_common(1)[0][0] if self.staff_seen else None

    @property
    def max_pieces(self) -> int:
        return max((n for _, n in self.pieces), default=0)


@dataclass(slots=True)
class _Visit:
    first_ts: float
    last_ts: float
    served: bool = False
    hold: Hold = field(default_factory=Hold)


@dataclass(slots=True)
class _PadWatch:
    """What lies on one showing pad, from its measured appearance."""

    zone: Zone
    present: bool = False
    disturbed_since: float | None = None  # start of the interaction going on (pad not measured)
    last_disturbance: float | None = None  # start of the last interaction, once it ended
    level_added: float = 0.0  # settled share of cells that gained structure against the armed look
    level_removed: float = 0.0
    pieces: int = 0  # settled count of new pieces on the pad
    candidate: str | None = None  # item_placed / item_removed being confirmed
    candidate_since: float | None = None
    candidate_start: float | None = None  # when the interaction that changed it began
    placed_at: float | None = None  # start of the placement that made it present
    nobody: Hold = field(default_factory=Hold)  # nobody at the counter or moving on the pad
    outside: Hold = field(default_factory=Hold)
    obstruction: Hold = field(default_factory=Hold)
    unattended: Hold = field(default_factory=Hold)


class CounterRule:
    """Showing sessions and protocol events at one counter."""

    def __init__(self, camera: Camera, layout: CounterLayout) -> None:
        self.camera = camera
        self.layout = layout
        self.p = layout.protocol
        self.session: ShowingSession | None = None
        self.sessions: list[ShowingSession] = []
        self._pair = Hold()
        self._visits: dict[int, _Visit] = {}
        self._last_customer_ts: float | None = None
        self._pieces = Hold()
        self._alone = Hold()
        self._turns: dict[int, TurnWatch] = {}  # staff track → its run of being turned away
        self._tray_out = Hold()
        self._last_session_end: float | None = None
        self._states: dict[str, ZoneState] = {}
        self._pieces_log: deque[tuple[float, int]] = deque()  # (ts, pieces out) at each change
        self._pads = [_PadWatch(z) for z in layout.showing]

    # -- helpers

    def _event(
        self, kind: str, ts: float, text: str, *, severity: Severity | None = None, zone: Zone | None = None,
        people: Iterable[int] = (), **scores: float,
    ) -> Event:  # fmt: skip
        extra: dict[str, object] = {"counter": self.layout.id}
        if self.session is not None and self.session.event is not None and kind != "showing_session":
            extra["session_id"] = self.session.event.id  # compliance: which showing it happened in
        return Event(
            type=kind,
            severity=severity or self.p.severity,
            camera_id=self.camera.id,
            start_ts=ts,
            end_ts=ts,
            description=text,
            zone_id=zone.id if zone is not None else self.layout.zone_id,
            people=tuple(sorted(people)),
            scores={k: round(v, 3) for k, v in scores.items()},
            extra=extra,
        )

    def _remember(self, obs: Observation) -> None:
        """Keep the last measured state of each zone (a hidden tray keeps its last count)."""
        for zid, st in obs.zones.items():
            old = self._states.get(zid)
            if st.measured or old is None:
                self._states[zid] = st
            else:
                self._states[zid] = ZoneState(
                    zone_id=zid,
                    armed=st.armed,
                    reference_count=st.reference_count,
                    count=old.count,
                    count_confidence=old.count_confidence,
                    change=old.change,
                    open=st.open,
                    open_source=st.open_source,
                    outside_count=old.outside_count,
                    outside_change=old.outside_change,
                )

    def _tray_removed(self) -> bool | None:
        known = False
        for zone in self.layout.trays:
            s = self._states.get(zone.id)
            if s is None or s.change is None:
                continue
            known = True
            if s.change >= zone.tray_params().removed_change:
                return True
        return False if known else None

    # -- the state machine

    def update(self, obs: Observation) -> list[Event]:
        ts = obs.ts
        self._remember(obs)
        who = people_at(obs, self.layout)
        events: list[Event] = []
        if who.customers:
            self._last_customer_ts = ts
        pieces = pieces_out(self._states, self.layout)
        if pieces is not None and (not self._pieces_log or self._pieces_log[-1][1] != pieces):
            self._pieces_log.append((ts, pieces))
        while len(self._pieces_log) > 1 and ts - self._pieces_log[1][0] > PIECES_LOG_S:
            self._pieces_log.popleft()
        events += self._not_served(obs, who)
        events += self._sessions(obs, who)
        s = self.session
        if s is not None and pieces is not None and (not s.pieces or s.pieces[-1][1] != pieces):
            s.pieces.append((ts, pieces))
        events += self._too_many(ts, pieces)
        events += self._alone_with_piece(obs, who, pieces, self._turned_away(obs, who))
        events += self._tray_policy(ts)
        for pad in self._pads:
            events += self._pad(obs, pad, who)
        for ev in events:  # an open event is known until now (its start may lie in the past)
            if not ev.ended and (ev.end_ts is None or ev.end_ts < ts):
                ev.end_ts = ts
        return events

    def finish(self, ts: float) -> list[Event]:
        events: list[Event] = []
        for tid in list(self._visits):
            events += self._end_visit(tid, ts)
        if self.session is not None:
            events += self._end_session(ts)
        for hold in (self._pieces, self._alone, self._tray_out):
            if hold.event is not None:
                events.append(close(hold.event, ts))
                hold.event = None
        for pad in self._pads:
            for hold in (pad.outside, pad.obstruction, pad.unattended):
                if hold.event is not None:
                    events.append(close(hold.event, ts))
                    hold.event = None
        return events

    # not served: a customer at the counter with nobody to serve them

    def _not_served(self, obs: Observation, who: CounterPeople) -> list[Event]:
        ts = obs.ts
        events: list[Event] = []
        for tid in who.customers:
            visit = self._visits.setdefault(tid, _Visit(ts, ts))
            visit.last_ts = ts
            served = tid in who.served
            visit.served = visit.served or served
            what = visit.hold.step(ts, not served, self.p.not_served_s, grace_s=0.0)
            if what == "start":
                since = visit.hold.started(ts)
                visit.hold.event = self._event(
                    "not_served", since,
                    f"Customer #{tid} at {self.layout.label} for {format_duration(ts - since)} with no staff within reach",
                    people=[tid], waited_s=ts - since, threshold_s=self.p.not_served_s,
                )  # fmt: skip
                events.append(visit.hold.event)
            elif what == "end" and visit.hold.event is not None:
                ev = visit.hold.event
                events.append(close(ev, ts, f"Customer #{tid} waited {format_duration(ts - ev.start_ts)} at {self.layout.label} before staff came", waited_s=ts - ev.start_ts))  # fmt: skip
                visit.hold.event = None
        for tid in list(self._visits):
            if tid not in who.customers and ts - self._visits[tid].last_ts > self.p.session_grace_s:
                events += self._end_visit(tid, ts)
        return events

    def _end_visit(self, tid: int, ts: float) -> list[Event]:
        visit = self._visits.pop(tid)
        ev = visit.hold.event
        if ev is None:
            return []
        end = visit.last_ts
        return [close(ev, end, f"Customer #{tid} left {self.layout.label} unserved after {format_duration(end - ev.start_ts)}", waited_s=end - ev.start_ts)]  # fmt: skip

    # showing sessions

    def _sessions(self, obs: Observation, who: CounterPeople) -> list[Event]:
        ts = obs.ts
        events: list[Event] = []
        paired = bool(who.served)
        if self.session is None:
            what = self._pair.step(ts, paired, self.p.session_min_s, grace_s=1.0)
            if what == "start":
                start = self._pair.started(ts)
                # when the customer was first seen at the counter; the pair's start is backdated
                # and can precede it (staff and customer seen together before the visit counts)
                arrived = min(
                    (self._visits[c].first_ts for c in who.served if c in self._visits), default=start
                )
                arrived = min(arrived, start)
                s = ShowingSession(start, ts, arrived)
                s.customers.update(who.served)
                # the pieces out since the session began (it is known to have begun only now)
                before = [(t, n) for t, n in self._pieces_log if t <= start]
                s.pieces = [(start, before[-1][1])] if before else []
                s.pieces += [(t, n) for t, n in self._pieces_log if t > start]
                s.event = self._event(
                    "showing_session", start,
                    f"Showing at {self.layout.label}: customer {_ids(who.served)} served by staff {_ids(who.staff)}",
                    severity=Severity.INFO, people=who.served | who.staff, time_to_serve_s=start - arrived,
                )  # fmt: skip
                self._pair.event = s.event
                self.session = s
                events.append(s.event)
            return events
        s = self.session
        if who.customers & s.customers or who.served:
            s.last_ts = ts
            s.customers.update(who.served)
            for st in who.staff:
                s.staff_seen[st] += 1
                person = obs.person(st)
                identity = getattr(person, "identity", None) if person is not None else None
                if identity:
                    s.identities[st] = str(identity)
        elif ts - s.last_ts > self.p.session_grace_s:
            events += self._end_session(ts)
        return events

    def _end_session(self, ts: float) -> list[Event]:
        s = self.session
        assert s is not None and s.event is not None
        self.session = None
        self._pair = Hold()
        self.sessions.append(s)
        self._last_session_end = s.last_ts
        staff = s.staff_member
        ev = close(
            s.event, s.last_ts,
            f"Showing at {self.layout.label} for {format_duration(s.last_ts - s.start_ts)}: customer "
            f"{_ids(s.customers)}, staff {_ids([staff]) if staff is not None else '?'}, at most {s.max_pieces} piece(s) out"
            + (f", {len(s.hand_overs)} hand-over(s)" if s.hand_overs else "")
            + (f", {sum(s.violations.values())} protocol event(s)" if s.violations else ""),
            duration_s=s.last_ts - s.start_ts, max_pieces=float(s.max_pieces),
            violations=float(sum(s.violations.values())), hand_overs=float(len(s.hand_overs)),
        )  # fmt: skip
        ev.people = tuple(sorted(s.customers | set(s.staff_seen)))
        ev.extra = {
            "counter": self.layout.id,
            "customers": sorted(s.customers),
            "staff": staff,
            "staff_identity": s.identities.get(staff) if staff is not None else None,
            "arrived_ts": s.arrived_ts,
            "pieces": [[round(t, 2), n] for t, n in s.pieces],
            "hand_overs": [round(t, 2) for t in s.hand_overs],
            "violations": dict(s.violations),
        }
        return [ev]

    def _violation(self, kind: str) -> None:
        if self.session is not None:
            self.session.violations[kind] += 1

    # protocol

    def _too_many(self, ts: float, pieces: int | None) -> list[Event]:
        cond = None if pieces is None else pieces > self.p.max_pieces
        what = self._pieces.step(ts, cond, self.p.max_pieces_s)
        if what == "start":
            self._violation("too_many_pieces")
            self._pieces.event = self._event(
                "too_many_pieces", self._pieces.started(ts),
                f"{pieces} pieces out at {self.layout.label} (at most {self.p.max_pieces})",
                pieces=float(pieces or 0), limit=float(self.p.max_pieces),
            )  # fmt: skip
            return [self._pieces.event]
        if what == "end" and self._pieces.event is not None:
            ev, self._pieces.event = self._pieces.event, None
            return [close(ev, ts)]
        return []

    def _turned_away(self, obs: Observation, who: CounterPeople) -> frozenset[int]:
        """Staff within reach of a customer who have been seen turned away from every customer
        they could serve for ``turned_away_s``; unknown facing never counts (rules/facing.py)."""
        grace = self.p.turned_away_s
        if grace is None:
            return frozenset()
        ts = obs.ts
        away: set[int] = set()
        for sid in who.staff:
            staff = obs.person(sid)
            near = [obs.person(c) for c in who.customers if _within(obs, c, sid, self.p.reach)]
            targets = [c for c in near if c is not None]
            if staff is None or not targets:
                self._turns.pop(sid, None)  # serving nobody: a turn now means nothing
                continue
            verdicts = [turned_away(staff, chest_point(c)) for c in targets]
            verdict = False if False in verdicts else (True if all(verdicts) else None)
            watch = self._turns.setdefault(sid, TurnWatch())
            watch.update(ts, verdict)
            if watch.away_for(ts) >= grace - EPS:
                away.add(sid)
        for sid, watch in list(self._turns.items()):
            if sid not in who.staff:
                watch.update(ts, None)
                if watch.away_for(ts) <= 0.0:
                    del self._turns[sid]
        return frozenset(away)

    def _alone_with_piece(
        self, obs: Observation, who: CounterPeople, pieces: int | None, away: frozenset[int]
    ) -> list[Event]:
        """A piece out while no customer has a staff member within reach who is not turned away."""
        ts = obs.ts
        out = (pieces is not None and pieces > 0) or any(p.present for p in self._pads)
        reach = self.p.reach
        attended = {
            c for c in who.served if any(s not in away and _within(obs, c, s, reach) for s in who.staff)
        }
        cond = bool(who.customers) and out and not attended
        what = self._alone.step(ts, cond, self.p.alone_s, grace_s=1.0)
        if what == "start":
            self._violation("customer_alone")
            why = f"staff {_ids(away)} turned away" if who.served else "no staff within reach"
            self._alone.event = self._event(
                "customer_alone", self._alone.started(ts),
                f"Customer {_ids(who.customers)} alone with a piece at {self.layout.label}: {why}",
                severity=Severity.HIGH, people=who.customers | away, threshold_s=self.p.alone_s,
            )  # fmt: skip
            return [self._alone.event]
        if what == "end" and self._alone.event is not None:
            ev, self._alone.event = self._alone.event, None
            return [close(ev, ts)]
        return []

    def _tray_policy(self, ts: float) -> list[Event]:
        if self.p.tray_policy == "off" or not self.layout.trays:
            return []
        removed = self._tray_removed()
        if self.p.tray_policy == "strict":
            cond = None if removed is None else removed and self.session is not None
            need = 0.0
        else:
            ended = self._last_session_end
            late = self.session is None and ended is not None and ts - ended >= self.p.tray_grace_s - EPS
            cond = None if removed is None else removed and late
            need = 0.0
        what = self._tray_out.step(ts, cond, need)
        if what == "start":
            self._violation("tray_on_counter")
            when = "during a showing" if self.p.tray_policy == "strict" else "after the showing ended"
            self._tray_out.event = self._event(
                "tray_on_counter",
                self._tray_out.started(ts),
                f"A whole tray is out at {self.layout.label} {when}",
            )
            return [self._tray_out.event]
        if what == "end" and self._tray_out.event is not None:
            ev, self._tray_out.event = self._tray_out.event, None
            return [close(ev, ts)]
        return []

    # the showing pad

    def _pad(self, obs: Observation, pad: _PadWatch, who: CounterPeople) -> list[Event]:
        ts = obs.ts
        zone = pad.zone
        params = zone.showing_params()
        st = obs.zones.get(zone.id)
        events: list[Event] = []
        measured = st is not None and st.measured and st.change is not None
        if not measured and pad.disturbed_since is None:
            pad.disturbed_since = ts
        if measured:
            assert st is not None
            if pad.disturbed_since is not None:
                pad.last_disturbance = pad.disturbed_since
                pad.disturbed_since = None
            events += self._pad_transition(pad, st, ts, params.placed_change)
        # a piece outside the boundary while a customer is present
        outside = None
        if st is not None and st.measured and st.outside_count is not None:
            outside = st.outside_count > 0 and bool(who.customers)
        events += self._timed(
            pad.outside, ts, outside, params.outside_confirm_s, "item_outside_boundary",
            f"A piece lies outside {zone.label} while a customer is at the counter", zone, Severity.HIGH,
        )  # fmt: skip
        # a bag or package next to the pad, during a visit (a classic distraction set-up)
        blocked = self._obstructed(obs, zone, st) if who.customers else False
        events += self._timed(
            pad.obstruction, ts, blocked, params.obstruction_s, "counter_obstruction",
            f"A bag or package next to {zone.label} hides it from the associate", zone, self.p.severity,
        )  # fmt: skip
        # something lying on the pad with nobody at the counter; motion on the pad is someone
        # there too (a person close to the camera is often not detected in every frame)
        nobody = not who.customers and not who.staff and not obs.people and not (st is not None and st.moving)
        pad.nobody.step(ts, nobody, 0.0, grace_s=UNATTENDED_GRACE_S)  # a one-frame false box is nobody
        if pad.present and nobody and pad.unattended.since is None and pad.placed_at is not None:
            # a placement is confirmed once the pad is seen clearly, often seconds after the
            # owner walked off: it lay there unattended since both were so, not since it was seen
            pad.unattended.since = max(pad.nobody.started(ts), pad.placed_at)
        events += self._timed(
            pad.unattended, ts, pad.present and nobody, params.unattended_s, "item_unattended",
            f"Something lies on {zone.label} with nobody at the counter", zone, self.p.severity,
        )  # fmt: skip
        return events

    def _pad_transition(self, pad: _PadWatch, st: ZoneState, ts: float, threshold: float) -> list[Event]:
        """Something put on or taken off the pad: the share of cells that gained (or lost)
        structure against the armed look moved by ``threshold`` from its last settled level,
        or the count of pieces changed, and stayed so for PAD_CONFIRM_S."""
        added, removed = st.added or 0.0, st.removed or 0.0
        new_pieces = (st.count - (st.reference_count or 0)) if st.count is not None and _sure(st) else None
        kind: str | None = None
        # something put down gains structure where it lies and hides what was there; taking it
        # away undoes both, so both shares fall: the larger movement says which happened (a bag
        # lifted off a desk: gained 0.40 -> 0.04, lost 0.20 -> 0.02 is a removal, not a return)
        placed = max(added - pad.level_added, pad.level_removed - removed)
        taken = max(pad.level_added - added, removed - pad.level_removed)
        if max(placed, taken) >= threshold:
            kind = "item_placed" if placed >= taken else "item_removed"
        elif new_pieces is not None and new_pieces > pad.pieces:
            kind = "item_placed"
        elif new_pieces is not None and new_pieces < pad.pieces and st.hidden_added <= PAD_HIDDEN_MAX:
            kind = "item_removed"  # fewer counted is fewer only when nothing put there is hidden now
        if kind is None or kind != pad.candidate:
            pad.candidate = kind
            pad.candidate_since = ts if kind is not None else None
            # the change happened during the interaction that ended just now
            pad.candidate_start = pad.last_disturbance if pad.last_disturbance is not None else ts
            return []
        if pad.candidate_since is None or ts - pad.candidate_since < PAD_CONFIRM_S - EPS:
            return []
        pad.level_added, pad.level_removed = added, removed
        if new_pieces is not None:
            pad.pieces = new_pieces
        pad.present = pad.level_added >= threshold or pad.pieces > 0
        start = pad.candidate_start if pad.candidate_start is not None else ts
        pad.placed_at = start if kind == "item_placed" else (pad.placed_at if pad.present else None)
        pad.candidate = pad.candidate_since = pad.candidate_start = None
        verb = "placed on" if kind == "item_placed" else "taken off"
        ev = self._event(kind, start, f"Something {verb} {pad.zone.label}", severity=Severity.INFO, zone=pad.zone,
                         added=added, removed=removed)  # fmt: skip
        ev.end_ts, ev.ended = ts, True  # complete when reported: nothing stays open (live view, console)
        return [ev]

    def _obstructed(self, obs: Observation, zone: Zone, st: ZoneState | None) -> bool | None:
        params = zone.showing_params()
        if obs.objects:
            poly = np.asarray(zone.polygon)
            (x1, y1), (x2, y2) = poly.min(0), poly.max(0)
            g = params.boundary_margin * max(x2 - x1, y2 - y1)
            for ob in obs.objects:
                if ob.label not in BAG_LABELS:
                    continue
                bx1, by1, bx2, by2 = (
                    ob.box[0] / obs.width, ob.box[1] / obs.height, ob.box[2] / obs.width, ob.box[3] / obs.height
                )  # fmt: skip
                if bx1 < x2 + g and bx2 > x1 - g and by1 < y2 + g and by2 > y1 - g:
                    return True
        if st is None or not st.measured or st.outside_change is None:
            return None if obs.objects == () and (st is None or not st.measured) else False
        return st.outside_change >= params.obstruction_fraction

    def _timed(
        self, hold: Hold, ts: float, cond: bool | None, need_s: float, kind: str, text: str, zone: Zone,
        severity: Severity,
    ) -> list[Event]:  # fmt: skip
        what = hold.step(ts, cond, need_s, grace_s=UNATTENDED_GRACE_S)
        if what == "start":
            self._violation(kind)
            hold.event = self._event(kind, hold.started(ts), text, severity=severity, zone=zone)
            return [hold.event]
        if what == "end" and hold.event is not None:
            ev, hold.event = hold.event, None
            return [close(ev, ts)]
        return []


def _ids(ids: Iterable[int]) -> str:
    """Track numbers as '#2, #5' ('staff #0', not 'staff 0', which reads as nobody)."""
    return ", ".join(f"#{i}" for i in sorted(ids)) or "?"


def customer_at_counter(obs: Observation, layout: CounterLayout) -> bool:
    """Any non-staff person on the counter's customer side (used by the tray rule)."""
    return bool(people_at(obs, layout).customers)


def build_counter_rules(camera: Camera) -> list[CounterRule | HandsRule | TrayRule | CaseRule]:
    """One CounterRule per counter that has a customer side or a showing pad, a HandsRule per
    counter with both sides (reach_over, hand_over: rules/hands.py), and one rule per tray and
    case zone."""
    from gemwatch.rules.cases import CaseRule
    from gemwatch.rules.hands import HandsRule
    from gemwatch.rules.trays import TrayRule

    rules: list[CounterRule | HandsRule | TrayRule | CaseRule] = []
    for layout in counters_of(camera):
        if layout.customer or layout.showing:
            counter = CounterRule(camera, layout)
            rules.append(counter)
            if layout.customer and layout.staff:
                rules.append(HandsRule(camera, layout, counter))
        rules.extend(TrayRule(camera, z, layout) for z in layout.trays)
        rules.extend(CaseRule(camera, z, layout) for z in layout.cases)
    return rules
