"""The loitering rule as a pure state machine: times in seconds, one event per visit."""

from __future__ import annotations

from gemwatch.config.models import Camera, LoiteringParams, Zone, ZoneKind
from gemwatch.rules.loitering import LoiteringRule
from gemwatch.types import Observation

T0 = 1_700_000_000.0


def camera(dwell: float = 10.0, grace: float = 2.0, kind: ZoneKind = ZoneKind.ENTRANCE) -> Camera:
    zone = Zone(
        id="door",
        name="Door",
        kind=kind,
        polygon=[(0, 0), (1, 0), (1, 1)],
        loitering=LoiteringParams(dwell_s=dwell, grace_s=grace),
    )
    return Camera(id="cam", url="x.mp4", zones=[zone])


def obs(t: float, *inside: int) -> Observation:
    return Observation("cam", T0 + t, 640, 480, zone_people={"door": inside} if inside else {})


def run(rule: LoiteringRule, timeline: list[tuple[float, tuple[int, ...]]]) -> list:
    events = []
    for t, ids in timeline:
        events.extend(rule.update(obs(t, *ids)))
    return events


def steps(
    start: float, end: float, ids: tuple[int, ...], dt: float = 0.2
) -> list[tuple[float, tuple[int, ...]]]:
    n = round((end - start) / dt)
    return [(start + i * dt, ids) for i in range(n + 1)]


def test_fires_once_when_dwell_crosses_threshold_and_closes_with_final_duration() -> None:
    rule = LoiteringRule(camera(dwell=10))
    events = run(rule, steps(0, 15, (7,)) + steps(15.2, 20, ()))
    assert [e.ended for e in events] == [False, True]
    first, final = events
    assert first.id == final.id
    assert first.start_ts == T0
    assert abs(first.end_ts - (T0 + 10.0)) < 1e-6
    assert abs(final.duration_s - 15.0) < 1e-6
    assert "Person 7" in final.description and "Door" in final.description and "15 s" in final.description


def test_below_threshold_no_event() -> None:
    rule = LoiteringRule(camera(dwell=10))
    assert run(rule, steps(0, 9.8, (1,)) + steps(10, 20, ())) == []


def test_exactly_at_threshold_fires() -> None:
    rule = LoiteringRule(camera(dwell=10))
    events = run(rule, steps(0, 10, (1,)))
    assert len(events) == 1 and not events[0].ended


def test_short_gap_under_grace_does_not_reset_timer() -> None:
    rule = LoiteringRule(camera(dwell=10, grace=2))
    timeline = steps(0, 6, (3,)) + steps(6.2, 7.6, ()) + steps(7.8, 11, (3,))
    events = run(rule, timeline)
    assert len(events) == 1
    assert events[0].start_ts == T0


def test_gap_longer_than_grace_starts_a_new_visit() -> None:
    rule = LoiteringRule(camera(dwell=10, grace=2))
    timeline = steps(0, 6, (3,)) + steps(6.2, 9, ()) + steps(9.2, 16, (3,))
    assert run(rule, timeline) == []


def test_two_people_two_events() -> None:
    rule = LoiteringRule(camera(dwell=5))
    events = run(rule, steps(0, 6, (1, 2)))
    assert sorted(e.people for e in events) == [(1,), (2,)]


def test_finish_closes_open_visits() -> None:
    rule = LoiteringRule(camera(dwell=5))
    run(rule, steps(0, 8, (4,)))
    final = rule.finish(T0 + 8)
    assert len(final) == 1 and final[0].ended and abs(final[0].duration_s - 8.0) < 1e-6


def test_zone_without_loitering_kind_is_ignored() -> None:
    zone = Zone(id="door", kind=ZoneKind.NO_GO, polygon=[(0, 0), (1, 0), (1, 1)])
    rule = LoiteringRule(Camera(id="cam", url="x", zones=[zone]))
    assert run(rule, steps(0, 600, (1,), dt=5)) == []


def test_default_dwell_for_counter_is_used() -> None:
    zone = Zone(id="door", kind=ZoneKind.COUNTER, polygon=[(0, 0), (1, 0), (1, 1)])
    rule = LoiteringRule(Camera(id="cam", url="x", zones=[zone]))
    assert run(rule, steps(0, 119, (1,), dt=1)) == []
    assert len(run(rule, steps(120, 121, (1,), dt=1))) == 1


def test_durations_read_as_measured() -> None:
    """A drawer open 1.4 s was described as 'open for 1 s'; long stays stay short to read."""
    from gemwatch.rules.base import format_duration

    assert [format_duration(s) for s in (1.4, 0.04, 9.9, 10.2, 59.6, 270, 3900)] == [
        "1.4 s", "0.0 s", "9.9 s", "10 s", "1 min", "4 min 30 s", "1 h 5 min",
    ]  # fmt: skip
