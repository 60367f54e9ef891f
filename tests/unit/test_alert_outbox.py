"""The outbox on real SQLite and PostgreSQL: enqueue is idempotent, rows go oldest first, a few
per target and one at a time per event and target, retries wait for their time."""

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


def test_order_per_event_and_target_and_backoff(outbox: Outbox) -> None:
    with outbox.sessions.begin() as s:
        enqueue(s, [_new("e1", "alert", A), _new("e1", "clip", A), _new("e1", "alert", B)], now=1000.0)
    due = outbox.due(1000.0, busy=set())
    # the clip waits for its own event's snapshot stage on the same target
    assert [(d.target.channel, d.stage) for d in due] == [("apprise", "alert"), ("webhook", "alert")]
    # while the apprise snapshot is in flight, only the webhook is handed out
    busy = {("manager", "apprise", "aaa", "e1")}
    assert [d.target for d in outbox.due(1000.0, busy=busy)] == [B]
    first = due[0]
    outbox.mark_retry(first.id, next_ts=1010.0, attempts=1, error="HTTP 500")
    # the target waits for its retry: nothing else goes to it meanwhile
    assert [d.target for d in outbox.due(1005.0, busy=set())] == [B]
    [again, _] = outbox.due(1010.0, busy=set())
    assert again.id == first.id and again.attempts == 1
    outbox.mark_sent(first.id, sent_ts=1011.0, latency_s=911.0, attempts=2)
    nxt = outbox.due(1011.0, busy=set())
    assert [(d.target, d.stage) for d in nxt] == [(A, "clip"), (B, "alert")]


def test_a_burst_goes_out_a_few_at_a_time(outbox: Outbox) -> None:
    with outbox.sessions.begin() as s:
        enqueue(s, [_new(f"e{i}", "alert", A) for i in range(5)], now=1000.0)
    first = outbox.due(1000.0, busy=set(), per_target=3)
    assert [d.event_id for d in first] == ["e0", "e1", "e2"]
    busy = {("manager", "apprise", "aaa", d.event_id) for d in first}
    assert outbox.due(1000.0, busy=busy, per_target=3) == []
    outbox.mark_sent(first[0].id, sent_ts=1001.0, latency_s=1.0, attempts=1)
    busy.discard(("manager", "apprise", "aaa", "e0"))
    assert [d.event_id for d in outbox.due(1001.0, busy=busy, per_target=3)] == ["e3"]


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


def test_prune_drops_finished_rows_past_retention_and_keeps_pending(outbox: Outbox) -> None:
    with outbox.sessions.begin() as s:
        enqueue(s, [_new("old", "alert", A), _new("old", "alert", B)], now=1000.0)
        enqueue(s, [_new("new", "alert", A)], now=5000.0)
    sent_old, _pending_old = outbox.due(1000.0, busy=set())
    outbox.mark_sent(sent_old.id, sent_ts=1001.0, latency_s=1.0, attempts=1)
    [sent_new] = [d for d in outbox.due(5000.0, busy=set()) if d.event_id == "new"]
    outbox.mark_sent(sent_new.id, sent_ts=5001.0, latency_s=1.0, attempts=1)
    assert outbox.prune(before_ts=2000.0) == 1  # only the old row that was sent
    assert [d.state for d in outbox.states("old")] == ["pending"]  # a pending row is never dropped
    assert [d.state for d in outbox.states("new")] == ["sent"]
    assert outbox.pending_count() == 1
