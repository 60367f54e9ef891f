"""customer_alone when the associate turns their back (rules/counter.py with rules/facing.py),
through CounterRule on hand-built Observations: staff on the left of the picture, the customer
on the right, a piece on the pad, the staff member's shoulders facing right (toward the
customer) or left (away), or unknown."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest

from gemwatch.config.counter import CounterProtocol
from gemwatch.config.models import Camera, Zone
from gemwatch.rules.counter import CounterRule, counters_of
from gemwatch.types import LEFT_SHOULDER, RIGHT_SHOULDER, Event, Observation, Person, Role, ZoneState

W, H = 1000, 1000
SQUARE = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
CUSTOMER, STAFF = 1, 2
DT = 0.2
ALONE_S, TURNED_S = 3.0, 2.0
PAD = {"pad": ZoneState("pad", measured=True, change=0.0, count=1, reference_count=0, count_confidence=1.0)}


def shoulders(facing: str | None) -> np.ndarray | None:
    """Staff keypoints: 'customer' (front to the right), 'away' (front to the left), 'unsure'
    (shoulders below the score threshold), None (no pose)."""
    if facing is None:
        return None
    kp = np.zeros((17, 3), dtype=np.float32)
    kp[:5, 2] = 0.5
    top, bottom = (200.0, 220.0), (200.0, 380.0)  # a shoulder line down the picture, 160 px
    # front = (S_y, -S_x), S = right - left: right shoulder below the left → front to the right
    left, right = (top, bottom) if facing in ("customer", "unsure") else (bottom, top)
    kp[LEFT_SHOULDER] = (*left, 0.6)
    kp[RIGHT_SHOULDER] = (*right, 0.6)
    if facing == "unsure":
        kp[[LEFT_SHOULDER, RIGHT_SHOULDER], 2] = 0.1
    return kp


def obs(ts: float, facing: str | None, *, staff: bool = True) -> Observation:
    people = [Person(CUSTOMER, (600.0, 100.0, 800.0, 900.0), 0.9, Role.CUSTOMER)]
    zone_people = {"front": (CUSTOMER,)}
    if staff:
        people.append(Person(STAFF, (100.0, 100.0, 300.0, 900.0), 0.9, Role.STAFF, shoulders(facing)))
        zone_people["behind"] = (STAFF,)
    return Observation("cam", ts, W, H, people=tuple(people), zone_people=zone_people, zones=PAD)


def rule(turned_away_s: float | None = TURNED_S) -> CounterRule:
    protocol = CounterProtocol(alone_s=ALONE_S, turned_away_s=turned_away_s, session_min_s=2.0)
    cam = Camera(
        id="cam",
        url="x.mp4",
        zones=[
            Zone(id="front", kind="counter", polygon=SQUARE, protocol=protocol),
            Zone(id="behind", kind="staff_area", polygon=SQUARE),
            Zone(id="pad", kind="showing_area", polygon=SQUARE),
        ],
    )
    return CounterRule(cam, counters_of(cam)[0])


def span(seconds: float, start: float = 0.0) -> list[float]:
    return [round(start + i * DT, 6) for i in range(round(seconds / DT) + 1)]


def run(r: CounterRule, frames: Iterable[Observation]) -> list[Event]:
    out: list[Event] = []
    last = 0.0
    for o in frames:
        last = o.ts
        out.extend(r.update(o))
    return out + r.finish(last)


def alone(events: list[Event]) -> list[Event]:
    return [e for e in events if e.type == "customer_alone" and not e.ended]


def served_then(facing: str | None, seconds: float) -> list[Observation]:
    """3 s of a showing facing the customer, then ``seconds`` of ``facing`` (first to last
    sighting), then facing the customer again."""
    turn = 3.0 + DT
    frames = [obs(t, "customer") for t in span(3.0)]
    frames += [obs(t, facing) for t in span(seconds, turn)]
    frames += [obs(t, "customer") for t in span(2.0, round(turn + seconds + DT, 6))]
    return frames


@pytest.mark.parametrize(
    ("away_for", "expected"),
    [(TURNED_S + ALONE_S - DT, 0), (TURNED_S + ALONE_S, 1), (TURNED_S + ALONE_S + 4.0, 1)],
)
def test_staff_turned_away_leaves_the_customer_alone(away_for: float, expected: int) -> None:
    """Turned away for turned_away_s counts as away; then alone_s as for walking off."""
    events = alone(run(rule(), served_then("away", away_for)))
    assert len(events) == expected
    if expected:
        ev = events[0]
        assert "staff #2 turned away" in ev.description
        assert ev.people == (CUSTOMER, STAFF)
        # seen away from 3.2; counted as away turned_away_s later; alone for alone_s after that
        assert ev.start_ts == pytest.approx(3.0 + DT + TURNED_S)


def test_glances_shorter_than_the_grace_are_normal() -> None:
    frames = [obs(t, "customer") for t in span(3.0)]
    t = 3.0
    for _ in range(6):  # turned to the till for just under the grace, back for 0.4 s, six times
        frames += [obs(u, "away") for u in span(TURNED_S - DT, round(t + DT, 6))]
        t = round(t + TURNED_S, 6)
        frames += [obs(u, "customer") for u in span(DT, round(t + DT, 6))]
        t = round(t + 2 * DT, 6)
    assert t > 3.0 + TURNED_S + ALONE_S + 5.0
    assert alone(run(rule(), frames)) == []


@pytest.mark.parametrize("facing", [None, "unsure"])
def test_unknown_facing_never_counts_as_turned_away(facing: str | None) -> None:
    assert alone(run(rule(), served_then(facing, 20.0))) == []


def test_facing_off_in_config() -> None:
    assert alone(run(rule(turned_away_s=None), served_then("away", 20.0))) == []


def test_walking_off_says_no_staff_within_reach() -> None:
    frames = [obs(t, "customer") for t in span(3.0)]
    frames += [obs(t, None, staff=False) for t in span(ALONE_S + 1.0, 3.2)]
    events = alone(run(rule(), frames))
    assert len(events) == 1 and "no staff within reach" in events[0].description
