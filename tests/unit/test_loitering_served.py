"""Loitering refined for a jeweller: staff never loiter, and at a counter only the time nobody
serves the customer counts (the clock pauses while served). Thresholds at, below and above, on
hand-built Observations; the counter's notion of served is rules.counter.people_at."""

from __future__ import annotations

import pytest

from gemwatch.config.counter import CounterProtocol
from gemwatch.config.models import Camera, LoiteringParams, Zone, ZoneKind
from gemwatch.rules.loitering import LoiteringRule
from gemwatch.types import Event, Observation, Person, Role

W, H = 1000, 1000
SQUARE = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
CUSTOMER, STAFF = 1, 2
DT = 0.2
DWELL = 10.0


def camera(
    kind: ZoneKind = ZoneKind.COUNTER, *, staff_area: bool = True, reach: float | None = None, **loiter: bool
) -> Camera:
    zones = [
        Zone(
            id="front",
            name="Counter 2",
            kind=kind,
            polygon=SQUARE,
            loitering=LoiteringParams(dwell_s=DWELL, grace_s=2.0, **loiter),
            protocol=CounterProtocol(reach=reach) if kind == ZoneKind.COUNTER else None,
        )
    ]
    if staff_area:
        zones.append(Zone(id="behind", kind=ZoneKind.STAFF_AREA, polygon=SQUARE))
    return Camera(id="cam", url="x.mp4", zones=zones)


def obs(
    ts: float, *, served: bool = False, role: Role = Role.CUSTOMER, staff_x: float = 150.0
) -> Observation:
    """The watched person in the zone; with ``served`` a staff member on the staff side, feet at
    ``staff_x`` (the customer's feet are at x = 700)."""
    people = [Person(CUSTOMER, (600.0, 100.0, 800.0, 900.0), 0.9, role)]
    zone_people = {"front": (CUSTOMER,)}
    if served:
        people.append(Person(STAFF, (staff_x - 100.0, 100.0, staff_x + 100.0, 900.0), 0.9, Role.STAFF))
        zone_people["behind"] = (STAFF,)
    return Observation("cam", ts, W, H, people=tuple(people), zone_people=zone_people)


def span(seconds: float, start: float = 0.0) -> list[float]:
    return [round(start + i * DT, 6) for i in range(round(seconds / DT) + 1)]


def run(rule: LoiteringRule, frames: list[Observation]) -> list[Event]:
    out: list[Event] = []
    for o in frames:
        out.extend(rule.update(o))
    return out + rule.finish(frames[-1].ts)


def opened(events: list[Event]) -> list[Event]:
    return [e for e in events if not e.ended]


def wait_serve_wait(after: float) -> list[Observation]:
    """4 s unserved, 20 s served, then ``after`` s unserved (sightings every DT)."""
    frames = [obs(t) for t in span(3.8)]  # 0 … 3.8; the step to 4.0 is still unserved
    frames += [obs(t, served=True) for t in span(19.8, 4.0)]  # 4.0 … 23.8, and the step to 24.0
    frames += [obs(t) for t in span(after, 24.0)]  # 24.0 … 24.0 + after
    return frames


# ------------------------------------------------------------------------------- staff


@pytest.mark.parametrize("kind", [ZoneKind.ENTRANCE, ZoneKind.COUNTER])
@pytest.mark.parametrize("role", [Role.STAFF, Role.GUARD])
def test_staff_and_guards_never_loiter(kind: ZoneKind, role: Role) -> None:
    assert run(LoiteringRule(camera(kind)), [obs(t, role=role) for t in span(60.0)]) == []


def test_staff_loiter_when_the_store_says_so() -> None:
    rule = LoiteringRule(camera(ZoneKind.ENTRANCE, ignore_staff=False))
    assert len(opened(run(rule, [obs(t, role=Role.STAFF) for t in span(DWELL)]))) == 1


def test_unknown_role_is_not_staff() -> None:
    rule = LoiteringRule(camera(ZoneKind.ENTRANCE))
    assert len(opened(run(rule, [obs(t, role=Role.UNKNOWN) for t in span(DWELL)]))) == 1


# --------------------------------------------------------------------------- served


def test_customer_being_served_does_not_loiter() -> None:
    assert run(LoiteringRule(camera()), [obs(t, served=True) for t in span(120.0)]) == []


@pytest.mark.parametrize(("after", "expected"), [(DWELL - 4.0 - DT, 0), (DWELL - 4.0, 1), (DWELL, 1)])
def test_served_time_pauses_the_clock(after: float, expected: int) -> None:
    """4 s before and ``after`` s after a 20 s showing: unserved 4 + after against dwell_s 10."""
    events = run(LoiteringRule(camera()), wait_serve_wait(after))
    assert len(opened(events)) == expected
    if expected:
        first = opened(events)[0]
        assert first.start_ts == 0.0  # the visit began at arrival
        assert first.end_ts == pytest.approx(24.0 + DWELL - 4.0)  # raised when unserved time hit 10 s
        assert first.scores["unserved_s"] == pytest.approx(DWELL)
        assert first.scores["dwell_s"] == pytest.approx(24.0 + DWELL - 4.0)
        assert "of it without being served" in first.description
        final = next(e for e in events if e.ended)
        assert final.id == first.id
        assert final.scores["unserved_s"] == pytest.approx(4.0 + after)


def test_never_served_counts_the_whole_stay() -> None:
    for seconds, expected in ((DWELL - DT, 0), (DWELL, 1)):
        events = run(LoiteringRule(camera()), [obs(t) for t in span(seconds)])
        assert len(opened(events)) == expected
    assert "Counter 2 for 10 s without being served" in opened(events)[0].description


def test_old_behaviour_any_stay_counts() -> None:
    rule = LoiteringRule(camera(unserved_only=False))
    events = opened(run(rule, wait_serve_wait(DWELL)))
    assert len(events) == 1
    assert events[0].end_ts == pytest.approx(DWELL)  # plain dwell: 10 s after arrival, mid-showing
    assert "served" not in events[0].description and "unserved_s" not in events[0].scores


def test_entrance_ignores_staff_nearby() -> None:
    """Nobody serves a doorway: a staff member in view does not stop the entrance clock."""
    rule = LoiteringRule(camera(ZoneKind.ENTRANCE))
    events = opened(run(rule, [obs(t, served=True) for t in span(DWELL)]))
    assert len(events) == 1 and events[0].end_ts == pytest.approx(DWELL)
    assert "served" not in events[0].description


@pytest.mark.parametrize(("staff_x", "expected"), [(150.0, 1), (650.0, 0)])
def test_staff_out_of_reach_does_not_serve(staff_x: float, expected: int) -> None:
    """With protocol.reach 0.1 (100 px here) staff 550 px away serve nobody; 50 px away they do."""
    rule = LoiteringRule(camera(reach=0.1))
    assert len(opened(run(rule, [obs(t, served=True, staff_x=staff_x) for t in span(DWELL)]))) == expected


def test_counter_without_staff_area_uses_staff_anywhere_in_view() -> None:
    rule = LoiteringRule(camera(staff_area=False))
    assert run(rule, [obs(t, served=True) for t in span(30.0)]) == []
