"""Routing by type, severity, camera, zone and store hours; keys, backoff, cooldown, silence."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gemwatch.alerts.routing import (
    Target,
    backoff_s,
    idempotency_key,
    in_cooldown,
    resolve,
    route_matches,
    silence,
    targets_of,
    trigger_ts,
)
from gemwatch.config.models import AlertRoute, Alerts, TimeWindow
from gemwatch.types import Event, Severity

LONDON = ZoneInfo("Europe/London")
HOURS = [
    TimeWindow(days=["mon", "tue", "wed", "thu", "fri", "sat"], start="09:30", end="17:30"),
    TimeWindow(days=["sun"], start="11:00", end="16:00"),
]


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON).timestamp()


def _event(**kw: object) -> Event:
    base: dict = dict(
        type="loitering", severity=Severity.MEDIUM, camera_id="door", zone_id="entrance", start_ts=0.0
    )
    base.update(kw)
    return Event(description="x", **base)


def _route(**kw: object) -> AlertRoute:
    return AlertRoute.model_validate({"id": "r", "recipients": ["m"], **kw})


@pytest.mark.parametrize(
    ("route", "event", "matches"),
    [
        ({}, {}, True),
        ({"event_types": ["presence.*"]}, {}, False),
        ({"event_types": ["presence.*"]}, {"type": "presence.after-hours"}, True),
        ({"event_types": ["loiter"]}, {}, False),  # patterns match whole types
        ({"min_severity": "high"}, {}, False),
        ({"min_severity": "high"}, {"severity": Severity.CRITICAL}, True),
        ({"min_severity": "medium"}, {"severity": Severity.MEDIUM}, True),
        ({"cameras": ["vault"]}, {}, False),
        ({"cameras": ["vault", "door"]}, {}, True),
        ({"zones": ["counter-1"]}, {}, False),
        ({"zones": ["counter-1"]}, {"zone_id": None}, False),
    ],
)
def test_route_filters(route: dict, event: dict, matches: bool) -> None:
    ts = _ts("2026-03-04T12:00")
    assert route_matches(_route(**route), _event(**event), ts, LONDON, HOURS) is matches


@pytest.mark.parametrize(
    ("when", "schedule", "matches"),
    [
        ("2026-03-04T12:00", "open", True),  # Wednesday noon
        ("2026-03-04T12:00", "closed", False),
        ("2026-03-04T17:31", "closed", True),
        ("2026-03-08T10:00", "closed", True),  # Sunday opens later
        ("2026-03-29T11:15", "open", True),  # the Sunday the clocks go forward (BST)
        ("2026-03-29T10:45", "open", False),
        ("2026-03-04T03:00", "always", True),
    ],
)
def test_schedule_in_store_time(when: str, schedule: str, matches: bool) -> None:
    route = _route(schedule=schedule)
    assert route_matches(route, _event(), _ts(when), LONDON, HOURS) is matches


def test_closed_without_store_hours_means_always_closed() -> None:
    assert route_matches(_route(schedule="closed"), _event(), _ts("2026-03-04T12:00"), LONDON, [])
    assert not route_matches(_route(schedule="open"), _event(), _ts("2026-03-04T12:00"), LONDON, [])


def test_trigger_is_the_frame_that_raised_it() -> None:
    assert trigger_ts(_event(start_ts=10.0, end_ts=130.0)) == 130.0
    assert trigger_ts(_event(start_ts=10.0)) == 10.0


def test_targets_name_urls_by_hash_and_resolve_back() -> None:
    alerts = Alerts.model_validate(
        {
            "mqtt": {},
            "recipients": [
                {
                    "id": "m",
                    "apprise": ["ntfy://secret-token@ntfy.sh/topic", "mailto://u:p@example.com"],
                    "webhooks": [{"url": "https://hooks.example.com/x"}],
                    "mqtt": True,
                }
            ],
        }
    )
    targets = targets_of(alerts.recipients[0])
    assert [t.channel for t in targets] == ["apprise", "apprise", "webhook", "mqtt"]
    assert all("secret" not in t.key for t in targets)
    assert resolve(alerts, targets[0]) == "ntfy://secret-token@ntfy.sh/topic"
    assert resolve(alerts, targets[2]).url == "https://hooks.example.com/x"
    assert resolve(alerts, Target("m", "apprise", "gone")) is None
    assert resolve(alerts, Target("nobody", "mqtt", "broker")) is None


def test_idempotency_key_is_deterministic_and_distinct() -> None:
    t = Target("m", "apprise", "abc")
    k = idempotency_key("ev", "alert", 0, t)
    assert k == idempotency_key("ev", "alert", 0, t)
    others = {
        idempotency_key("ev", "clip", 0, t),
        idempotency_key("ev", "alert", 1, t),
        idempotency_key("ev2", "alert", 0, t),
        idempotency_key("ev", "alert", 0, Target("m", "apprise", "abd")),
        idempotency_key("ev", "alert", 0, Target("o", "apprise", "abc")),
    }
    assert k not in others and len(others) == 5


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    rng = random.Random(1)
    delays = [backoff_s(n, 2.0, 60.0, rng) for n in range(1, 10)]
    assert 1.6 <= delays[0] <= 2.4 and 3.2 <= delays[1] <= 4.8
    assert all(d <= 60.0 for d in delays) and delays[-1] >= 48.0


def test_cooldown() -> None:
    assert in_cooldown(100.0, 130.0, 60.0)
    assert not in_cooldown(100.0, 160.0, 60.0)
    assert not in_cooldown(None, 130.0, 60.0)
    assert not in_cooldown(100.0, 100.5, 0.0)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("tgram://bot/chat", "tgram://bot/chat?silent=yes"),
        ("ntfy://ntfy.sh/topic?tags=x", "ntfy://ntfy.sh/topic?tags=x&priority=low"),
        ("ntfy://ntfy.sh/topic?priority=high", "ntfy://ntfy.sh/topic?priority=high"),  # the user's choice
        ("pover://user@token", "pover://user@token?priority=low"),
        ("mailto://u:p@example.com", "mailto://u:p@example.com"),
        ("json://host/path", "json://host/path"),
    ],
)
def test_silence(url: str, expected: str) -> None:
    assert silence(url) == expected
