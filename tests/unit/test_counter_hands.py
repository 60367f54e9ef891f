"""Hands across the counter (rules/hands.py) on hand-built Observations with synthetic keypoints:
the staff side is the left 40 % of a 1000×1000 picture, the customer side the right half."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pytest

from fixtures.counter_runs import run_rules as run
from gemwatch.config.counter import CounterProtocol
from gemwatch.config.models import Camera, Zone
from gemwatch.rules.counter import CounterRule, build_counter_rules, counters_of
from gemwatch.rules.geometry import box_share_in, clip_polygon, polygon_area
from gemwatch.rules.hands import UNSEEN_S, HandsRule, reach_verdict, wrist_gap
from gemwatch.types import Event, Observation, Person, Role, Severity

W = H = 1000
DT = 0.2
CUSTOMER, STAFF, OTHER = 1, 2, 3
STAFF_SIDE = [(0.0, 0.0), (0.4, 0.0), (0.4, 1.0), (0.0, 1.0)]
CUSTOMER_SIDE = [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]
AT_REST = (800.0, 500.0)  # a customer's hand on their own side
OVER = (300.0, 500.0)  # ... and across the counter, on the staff side
STANDING = (600.0, 100.0, 900.0, 900.0)  # a customer's box, 800 px tall
SEATED = (50.0, 300.0, 350.0, 900.0)  # the associate's, 600 px tall


def keypoints(*wrists: tuple[float, float, float]) -> np.ndarray:
    """17 COCO keypoints with nothing found but the given wrists (left, then right)."""
    kp = np.zeros((17, 3), dtype=np.float32)
    for i, w in zip((9, 10), wrists, strict=False):
        kp[i] = w
    return kp


def person(
    tid: int,
    role: Role,
    box: tuple[float, float, float, float] = STANDING,
    wrists: Sequence[tuple[float, float, float]] | None = None,
) -> Person:
    return Person(tid, box, 0.9, role, None if wrists is None else keypoints(*wrists))


def customer(hand: tuple[float, float] | None = AT_REST, score: float = 0.6, **kw) -> Person:
    wrists = None if hand is None else [(hand[0], hand[1], score)]
    return person(CUSTOMER, kw.pop("role", Role.CUSTOMER), kw.pop("box", STANDING), wrists)


def staff(hand: tuple[float, float] = (200.0, 600.0), score: float = 0.6) -> Person:
    return person(STAFF, Role.STAFF, SEATED, [(hand[0], hand[1], score)])


def obs(ts: float, *people: Person, front: Iterable[int] = (), behind: Iterable[int] = ()) -> Observation:
    zone_people = {"front": tuple(front), "behind": tuple(behind)}
    return Observation(
        "cam", ts, W, H, people=people, zone_people={k: v for k, v in zone_people.items() if v}
    )


def camera(protocol: CounterProtocol | None = None, staff_area: bool = True) -> Camera:
    zones = [Zone(id="front", kind="counter", name="Counter 1", polygon=CUSTOMER_SIDE, protocol=protocol)]
    if staff_area:
        zones.append(Zone(id="behind", kind="staff_area", polygon=STAFF_SIDE))
    return Camera(id="cam", url="x.mp4", zones=zones)


def hands(protocol: CounterProtocol | None = None) -> HandsRule:
    cam = camera(protocol)
    return HandsRule(cam, counters_of(cam)[0])


def times(start: float, seconds: float) -> list[float]:
    return [round(start + i * DT, 6) for i in range(round(seconds / DT) + 1)]


def finals(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.type == kind and e.ended]


def reach(hand: tuple[float, float] | None, ts: float, **kw) -> Observation:
    return obs(ts, customer(hand, **kw), front=[CUSTOMER])


# ------------------------------------------------------------------------------ geometry


def test_clip_polygon_keeps_the_part_inside_the_box() -> None:
    triangle = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
    assert polygon_area(clip_polygon(triangle, (0.25, 0.25, 0.75, 0.75))) == pytest.approx(0.125)
    assert polygon_area(clip_polygon(triangle, (0.0, 0.0, 0.5, 0.5))) == pytest.approx(0.25)
    assert polygon_area(clip_polygon(triangle, (0.6, 0.6, 0.9, 0.9))) == 0.0


@pytest.mark.parametrize(
    ("box", "share"),
    [
        ((100.0, 0.0, 300.0, 1000.0), 1.0),  # all on the staff side
        ((400.0, 0.0, 900.0, 1000.0), 0.0),  # touching its edge
        ((200.0, 0.0, 600.0, 500.0), 0.5),
    ],
)
def test_box_share_in_the_staff_side(box, share) -> None:
    assert box_share_in(box, [STAFF_SIDE], W, H) == pytest.approx(share)


def verdict(p: Person, box_share: float | None = 0.1) -> tuple[bool | None, str]:
    return reach_verdict(p, [STAFF_SIDE], W, H, min_score=0.2, box_share=box_share)


def test_a_wrist_on_the_staff_side_is_a_reach() -> None:
    assert verdict(customer(OVER)) == (True, "wrist")
    assert verdict(customer(AT_REST)) == (False, "box")  # one wrist at rest, and the box is not there
    # both wrists found on the customer's side: no hand is over there, whatever the box says
    both = person(
        CUSTOMER, Role.CUSTOMER, (250.0, 100.0, 900.0, 900.0), [(700.0, 500.0, 0.5), (800.0, 500.0, 0.5)]
    )
    assert verdict(both) == (False, "wrist")


@pytest.mark.parametrize(("score", "found"), [(0.19, False), (0.2, True), (0.21, True)])
def test_a_wrist_is_found_at_wrist_score(score: float, found: bool) -> None:
    assert (verdict(customer(OVER, score=score)) == (True, "wrist")) is found


@pytest.mark.parametrize(
    ("x1", "expected"),
    [
        (340.0, (True, "box")),  # 60/600 of the box on the staff side: at reach_over_box
        (330.0, (True, "box")),  # above
        (350.0, (None, "")),  # below: some of the box is there, a hand may or may not be
        (400.0, (False, "box")),  # none of it: the box holds the hands, so no hand is there
    ],
)
def test_without_a_wrist_the_box_decides(x1: float, expected) -> None:
    p = customer(None, box=(x1, 0.0, 940.0, 1000.0))
    assert verdict(p) == expected


def test_box_fallback_off_leaves_it_unknown() -> None:
    p = customer(None, box=(100.0, 0.0, 940.0, 1000.0))
    assert verdict(p, box_share=None) == (None, "")
    assert verdict(p) == (True, "box")


def test_wrist_gap_is_relative_to_the_taller_box() -> None:
    c = customer((500.0, 500.0))
    s = staff((260.0, 500.0))
    assert wrist_gap(c, s, 0.2) == pytest.approx(240.0 / 800.0)
    assert wrist_gap(c, staff((260.0, 500.0), score=0.1), 0.2) is None
    assert wrist_gap(customer(None), s, 0.2) is None


# ---------------------------------------------------------------------------- reach_over


@pytest.mark.parametrize("need", [0.4, 1.0])
@pytest.mark.parametrize(("extra", "events"), [(-DT, 0), (0.0, 1), (DT, 1)])
def test_reach_over_at_below_and_above_its_time(need: float, extra: float, events: int) -> None:
    rule = hands(CounterProtocol(reach_over_s=need))
    over = times(1.0, need + extra)
    frames = [reach(OVER, t) for t in over] + [reach(AT_REST, t) for t in times(over[-1] + DT, 1.0)]
    out = run([rule], frames)
    found = finals(out, "reach_over")
    assert len(found) == events
    if events:
        ev = found[0]
        assert ev.start_ts == pytest.approx(1.0) and ev.end_ts == pytest.approx(over[-1])
        assert ev.severity == Severity.HIGH and ev.people == (CUSTOMER,)
        assert ev.extra["evidence"] == "wrist"
        first = next(e for e in out if e.type == "reach_over")
        assert first.end_ts == pytest.approx(1.0 + need)  # reported once it lasted reach_over_s
        assert first.id == ev.id


def test_reach_over_severity_is_configurable() -> None:
    out = run(
        [hands(CounterProtocol(reach_over_severity=Severity.CRITICAL))], [reach(OVER, t) for t in times(0, 1)]
    )
    assert [e.severity for e in finals(out, "reach_over")] == [Severity.CRITICAL]


def test_one_event_per_reach() -> None:
    frames = (
        [reach(OVER, t) for t in times(0.0, 1.0)]
        + [reach(AT_REST, t) for t in times(1.2, 1.0)]
        + [reach(OVER, t) for t in times(2.4, 1.0)]
    )
    found = finals(run([hands()], frames), "reach_over")
    assert [(e.start_ts, e.end_ts) for e in found] == [(0.0, 1.0), (2.4, 3.4)]


@pytest.mark.parametrize(("hidden", "events"), [(UNSEEN_S - 0.4, 1), (UNSEEN_S + 0.4, 2)])
def test_a_customer_lost_by_the_detector_keeps_the_reach_for_a_while(hidden: float, events: int) -> None:
    """The detector loses a person bent over the counter; the reach survives UNSEEN_S unseen."""
    first = times(0.0, 0.6)
    second = times(first[-1] + hidden, 0.6)
    frames = [reach(OVER, t) for t in first] + [obs(t) for t in times(0.8, hidden - 0.4)]
    frames += [reach(OVER, t) for t in second]
    found = finals(run([hands()], frames), "reach_over")
    assert len(found) == events
    assert found[-1].end_ts == pytest.approx(second[-1])


def test_unknown_sightings_neither_extend_nor_end_a_reach() -> None:
    """No wrist found and only a sliver of the box over there: nothing known; the reach ends at
    its last "yes" once nothing said yes for UNSEEN_S."""
    unsure = customer(None, box=(360.0, 0.0, 940.0, 1000.0))
    frames = [reach(OVER, t) for t in times(0.0, 0.6)]
    frames += [obs(t, unsure, front=[CUSTOMER]) for t in times(0.8, 3.0)]
    found = finals(run([hands()], frames), "reach_over")
    assert [(e.start_ts, e.end_ts) for e in found] == [(0.0, 0.6)]


def test_staff_hands_are_never_a_reach() -> None:
    worker = person(STAFF, Role.STAFF, SEATED, [(200.0, 500.0, 0.9), (300.0, 500.0, 0.9)])
    unsure = person(OTHER, Role.UNKNOWN, SEATED, [(200.0, 500.0, 0.9)])  # in the staff area, no role yet
    frames = [obs(t, worker, unsure, behind=[STAFF, OTHER]) for t in times(0.0, 3.0)]
    assert not run([hands()], frames)


def test_who_counts_as_reaching() -> None:
    """A person of unknown role on the customer side counts; a customer counts wherever their
    foot point lands (a box stretched across the counter pulls it off the customer side)."""
    unknown_front = [obs(t, customer(OVER, role=Role.UNKNOWN), front=[CUSTOMER]) for t in times(0.0, 1.0)]
    assert len(finals(run([hands()], unknown_front), "reach_over")) == 1
    customer_anywhere = [obs(t, customer(OVER)) for t in times(0.0, 1.0)]
    assert len(finals(run([hands()], customer_anywhere), "reach_over")) == 1
    unknown_elsewhere = [obs(t, customer(OVER, role=Role.UNKNOWN)) for t in times(0.0, 1.0)]
    assert not run([hands()], unknown_elsewhere)


def test_an_open_reach_is_closed_at_the_end_of_the_stream() -> None:
    out = run([hands()], [reach(OVER, t) for t in times(0.0, 2.0)])
    found = finals(out, "reach_over")
    assert len(found) == 1 and found[0].end_ts == pytest.approx(2.0)


# ----------------------------------------------------------------------------- hand_over


def pair(ts: float, gap_px: float, staff_score: float = 0.6) -> Observation:
    """Customer and associate, their wrists ``gap_px`` apart (the taller box is 800 px)."""
    return obs(
        ts,
        customer((500.0, 500.0)),
        staff((500.0 - gap_px, 500.0), score=staff_score),
        front=[CUSTOMER],
        behind=[STAFF],
    )


@pytest.mark.parametrize(("gap_px", "events"), [(239.0, 1), (240.0, 1), (241.0, 0)])
def test_hand_over_at_below_and_above_its_distance(gap_px: float, events: int) -> None:
    """hand_over_distance 0.3 of the taller (800 px) box: 240 px."""
    frames = [pair(t, 400.0) for t in times(0.0, 1.0)] + [pair(2.0, gap_px)]
    frames += [pair(t, 400.0) for t in times(2.2, 1.0)]
    found = finals(run([hands()], frames), "hand_over")
    assert len(found) == events
    if events:
        assert found[0].severity == Severity.INFO and found[0].people == (CUSTOMER, STAFF)
        assert found[0].start_ts == pytest.approx(2.0)


@pytest.mark.parametrize(("close_for", "events"), [(0.2, 0), (0.4, 1), (0.6, 1)])
def test_hand_over_at_below_and_above_its_time(close_for: float, events: int) -> None:
    rule = hands(CounterProtocol(hand_over_s=0.4))
    frames = [pair(t, 100.0) for t in times(1.0, close_for)] + [
        pair(t, 400.0) for t in times(1.2 + close_for, 1.0)
    ]
    assert len(finals(run([rule], frames), "hand_over")) == events


def test_hand_over_needs_both_wrists_found() -> None:
    frames = [pair(t, 50.0, staff_score=0.1) for t in times(0.0, 2.0)]
    assert not run([hands()], frames)


def test_hand_over_is_recorded_on_the_showing_session() -> None:
    cam = camera()
    rules = build_counter_rules(cam)
    assert [type(r).__name__ for r in rules] == ["CounterRule", "HandsRule"]
    counter = rules[0]
    assert isinstance(counter, CounterRule)
    frames = [pair(t, 400.0) for t in times(0.0, 3.0)] + [pair(3.2, 100.0)]
    frames += [pair(t, 400.0) for t in times(3.4, 2.0)]
    out = run(rules, frames)
    session = next(e for e in out if e.type == "showing_session" and e.ended)
    handed = finals(out, "hand_over")
    assert len(handed) == 1
    assert handed[0].extra["session_id"] == session.id
    assert session.extra["hand_overs"] == [3.2] and session.scores["hand_overs"] == 1.0
    assert "1 hand-over(s)" in session.description
    assert counter.sessions[0].hand_overs == [pytest.approx(3.2)]


def test_hands_rule_needs_both_sides_of_the_counter() -> None:
    assert [type(r).__name__ for r in build_counter_rules(camera(staff_area=False))] == ["CounterRule"]


def test_a_hand_over_before_the_session_is_recognised_is_filed_on_it() -> None:
    """A session is known only session_min_s after it began; a hand-over in between belongs to it."""
    rules = build_counter_rules(camera())
    frames = [pair(0.0, 400.0), pair(0.2, 100.0)] + [pair(t, 400.0) for t in times(0.4, 3.0)]
    out = run(rules, frames)
    session = next(e for e in out if e.type == "showing_session" and e.ended)
    assert session.start_ts == pytest.approx(0.0)
    assert session.extra["hand_overs"] == [0.2]
    assert "session_id" not in finals(out, "hand_over")[0].extra  # reported before the session was known
