"""The outbox on real SQLite and PostgreSQL: enqueue is idempotent, one row per target at a time,
oldest first, retries wait for their time, and state survives a new connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from gemwatch.alerts.outbox import NewDelivery, Outbox, enqueue
from gemwatch.alerts.routing import Target, idempotency_key
from gemwatch.events.store import EventStore

A = Target("manager", "apprise", "aaa")
B = Target("manager", "webhook", "bbb")


def _new(event_id: str, stage: str, target: Target) -> NewDelivery:
    key = idempotency_key(event_id, stage, 0, target)
    return NewDelivery(key, event_id, "r", stage, 0, target, {"n": stage}, frame_ts=100.0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def outbox(request, tmp_path: Path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gemwatch.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = EventStore(url)
    yield Outbox(store.engine)
    store.close()


def test_enqueue_is_idempotent(outbox: Outbox) -> None:
    with outbox.sessions.begin() as s:
        assert enqueue(s, [_new("e1", "alert", A), _new("e1", "alert", B)], now=1000.0) == 2
    with outbox.sessions.begin() as s:  # a replay after a crash adds nothing
        assert enqueue(s, [_new("e1", "alert", A), _new("e1", "clip", A)], now=1001.0) == 1
    assert outbox.pending_count() == 3


def test_one_in_flight_per_target_oldest_first(outbox: Outbox) -> None:
    with outbox.sessions.begin() as s:
        enqueue(s, [_new("e1", "alert", A), _new("e1", "clip", A), _new("e1", "alert", B)], now=1000.0)
    due = outbox.due(1000.0, busy=set())
    assert [(d.target.channel, d.stage) for d in due] == [("apprise", "alert"), ("webhook", "alert")]
    # the apprise target is busy: only the webhook is handed out
    assert [d.target for d in outbox.due(1000.0, busy={("manager", "apprise", "aaa")})] == [B]
    first = due[0]
    outbox.mark_retry(first.id, next_ts=1010.0, attempts=1, error="HTTP 500")
    # the failed snapshot holds back its clip: a clip never overtakes its snapshot
    assert [d.target for d in outbox.due(1005.0, busy=set())] == [B]
    [again, _] = outbox.due(1010.0, busy=set())
    assert again.id == first.id and again.attempts == 1
    outbox.mark_sent(first.id, sent_ts=1011.0, latency_s=911.0, attempts=2)
    nxt = outbox.due(1011.0, busy=set())
    assert [(d.target, d.stage) for d in nxt] == [(A, "clip"), (B, "alert")]


def test_retry_now_and_states(outbox: Outbox) -> None:
    with outbox.sessions.begin() as s:
        enqueue(s, [_new("e1", "alert", A), _new("e1", "alert", Target("b", "mqtt", "broker"))], now=1000.0)
    rows = outbox.due(1000.0, busy=set())
    for d in rows:
        outbox.mark_retry(d.id, next_ts=2000.0, attempts=1, error="down")
    assert outbox.due(1500.0, busy=set()) == [] and outbox.next_due_ts() == 2000.0
    assert outbox.retry_now("mqtt", now=1500.0) == 1
    assert [d.target.channel for d in outbox.due(1500.0, busy=set())] == ["mqtt"]
    mqtt = next(d for d in rows if d.target.channel == "mqtt")
    outbox.mark_failed(mqtt.id, attempts=2, error="gone")
    states = {s.channel: (s.state, s.attempts, s.last_error) for s in outbox.states("e1")}
    assert states == {"apprise": ("pending", 1, "down"), "mqtt": ("failed", 2, "gone")}
    assert outbox.pending_count() == 1
