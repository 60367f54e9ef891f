from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from gemwatch.config.models import Camera, PresenceRule, TimeWindow, Zone, ZoneKind
from gemwatch.rules.presence import PresenceRuleMachine, build_rules
from gemwatch.rules.schedule import in_windows
from gemwatch.types import Observation, Person

LONDON = ZoneInfo("Europe/London")


def ts(y, mo, d, h, mi, s=0.0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=LONDON).timestamp() + s


CAM = Camera(
    id="back",
    url="x",
    zones=[
        Zone(id="vault", kind=ZoneKind.VAULT, polygon=[(0, 0), (0.3, 0), (0.3, 0.3)]),
        Zone(id="floor", kind=ZoneKind.COUNTER, polygon=[(0.3, 0.3), (1, 0.3), (1, 1)]),
    ],
)


def person(tid: int) -> Person:
    return Person(tid, (10, 10, 50, 100), 0.9)


def obs(t: float, zone: dict[str, tuple[int, ...]], people: tuple[int, ...] = ()) -> Observation:
    return Observation("back", t, 640, 480, people=tuple(person(p) for p in people), zone_people=zone)


def test_vault_presence_one_episode_with_everyone() -> None:
    rule = PresenceRuleMachine(
        CAM, PresenceRule(id="vault", zone_kinds=[ZoneKind.VAULT], min_s=1, grace_s=2), LONDON
    )
    t0 = ts(2026, 3, 2, 10, 0)
    events = []
    for i in range(0, 30):
        ids = (1,) if i < 15 else (1, 2)
        events += rule.update(obs(t0 + i * 0.2, {"vault": ids}))
    for i in range(30, 50):
        events += rule.update(obs(t0 + i * 0.2, {}))
    assert [e.ended for e in events] == [False, True]
    assert events[1].people == (1, 2)
    assert "up to 2 people" in events[1].description
    assert events[0].type == "presence.vault" and events[0].zone_id == "vault"
    assert abs(events[1].duration_s - 5.8) < 1e-6


def test_min_s_below_threshold_no_event() -> None:
    rule = PresenceRuleMachine(CAM, PresenceRule(id="v", zones=["vault"], min_s=2, grace_s=0.5), LONDON)
    t0 = ts(2026, 3, 2, 10, 0)
    events = [e for i in range(9) for e in rule.update(obs(t0 + i * 0.2, {"vault": (1,)}))]
    events += rule.update(obs(t0 + 3, {}))
    assert events == []


def test_after_hours_whole_frame_only_in_window() -> None:
    rule = PresenceRuleMachine(
        CAM,
        PresenceRule(
            id="after-hours", whole_frame=True, windows=[TimeWindow(start=time(20), end=time(7))], min_s=0
        ),
        LONDON,
    )
    day = ts(2026, 3, 2, 15, 0)
    assert rule.update(obs(day, {}, people=(1,))) == []
    night = ts(2026, 3, 3, 2, 0)
    events = rule.update(obs(night, {}, people=(1,)))
    assert len(events) == 1 and events[0].zone_id is None and "in view" in events[0].description


def test_rule_for_other_camera_zones_does_not_apply() -> None:
    rules = build_rules(CAM, [PresenceRule(id="x", zones=["elsewhere"])], LONDON)
    assert rules == []


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        ((2026, 3, 6, 21, 0), True),  # Friday evening, window starts Friday
        ((2026, 3, 7, 3, 0), True),  # Saturday early, belongs to Friday's window
        ((2026, 3, 7, 21, 0), False),  # Saturday evening: not a listed day
        ((2026, 3, 6, 12, 0), False),
        ((2026, 3, 9, 6, 59), False),  # Monday early: Sunday not listed
    ],
)
def test_windows_cross_midnight_and_belong_to_start_day(when, inside) -> None:
    w = [TimeWindow(days=["mon", "tue", "wed", "thu", "fri"], start=time(20), end=time(7))]
    assert in_windows(ts(*when), w, LONDON) is inside


def test_windows_follow_dst_change() -> None:
    # 29 March 2026: clocks go forward at 01:00 UTC. 07:30 local is 06:30 UTC after the change.
    w = [TimeWindow(start=time(7), end=time(8))]
    after = datetime(2026, 3, 29, 6, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    before = datetime(2026, 3, 28, 7, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    assert in_windows(after, w, LONDON) is True
    assert in_windows(before, w, LONDON) is True
    assert in_windows(after - 3600, w, LONDON) is False
