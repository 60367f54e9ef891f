"""The persistent outbox: every delivery is a committed row before anything is sent.

A sender picks due rows oldest first, a few in flight per target, one at a time per event
and target (so a clip never overtakes its snapshot), and none for a target whose oldest row
waits for its retry (a target that is down is one backoff timer, not a flood of retries); the row records attempts, the last error, when it was sent and the latency from
the triggering frame. Rows survive restarts, so a crash between detection and sending only
delays the alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from gemwatch.alerts.routing import Target
from gemwatch.alerts.schema import OutboxRow

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
CANCELLED = "cancelled"

# Sends in flight to one target at a time: a burst of incidents does not queue behind one
# slow SMTP session, and a receiver is never hit by more than this many connections.
PER_TARGET = 3


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row as a channel sees it."""

    id: int
    key: str
    event_id: str
    route_id: str
    stage: str
    level: int
    target: Target
    payload: dict[str, Any]
    attempts: int
    created_ts: float
    frame_ts: float


@dataclass(frozen=True, slots=True)
class NewDelivery:
    key: str
    event_id: str
    route_id: str
    stage: str
    level: int
    target: Target
    payload: dict[str, Any]
    frame_ts: float


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """Delivery state per recipient and channel, for the event detail page."""

    key: str
    stage: str
    level: int
    recipient_id: str
    channel: str
    state: str
    attempts: int
    last_error: str | None
    created_ts: float
    sent_ts: float | None
    latency_s: float | None


def _delivery(row: OutboxRow) -> Delivery:
    return Delivery(
        row.id,
        row.key,
        row.event_id,
        row.route_id,
        row.stage,
        row.level,
        Target(row.recipient_id, row.channel, row.target),
        dict(row.payload),
        row.attempts,
        row.created_ts,
        row.frame_ts,
    )


def enqueue(session: Session, items: Iterable[NewDelivery], now: float) -> int:
    """Insert deliveries in the caller's transaction; a key already present is skipped.
    Returns how many rows were new."""
    values = [
        {
            "key": d.key,
            "event_id": d.event_id,
            "route_id": d.route_id,
            "stage": d.stage,
            "level": d.level,
            "recipient_id": d.target.recipient_id,
            "channel": d.target.channel,
            "target": d.target.key,
            "payload": d.payload,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_ts": now,
            "created_ts": now,
            "frame_ts": d.frame_ts,
        }
        for d in items
    ]
    if not values:
        return 0
    dialect = session.get_bind().dialect.name
    new = 0
    for v in values:
        if dialect == "sqlite":
            stmt: Any = sqlite_insert(OutboxRow).values(**v).on_conflict_do_nothing(index_elements=["key"])
        elif dialect == "postgresql":
            stmt = pg_insert(OutboxRow).values(**v).on_conflict_do_nothing(index_elements=["key"])
        else:
            if session.scalar(select(OutboxRow.id).where(OutboxRow.key == v["key"])) is not None:
                continue
            session.add(OutboxRow(**v))
            new += 1
            continue
        new += session.execute(stmt.returning(OutboxRow.id)).first() is not None
    return new


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    def due(
        self, now: float, busy: set[tuple[str, str, str, str]], per_target: int = PER_TARGET, limit: int = 64
    ) -> list[Delivery]:
        """Rows to send now, oldest first. ``busy`` holds (recipient, channel, target, event)
        of the sends in flight.

        A target takes at most ``per_target`` sends at a time, and none while its oldest row
        waits for a retry (it is down: one probe at the backoff time, not a flood); the rows of
        one event for one target go one after the other (a clip never overtakes its snapshot).
        Only the small columns are scanned (a backlog behind a channel that is down is scanned
        every loop); the payloads are loaded for the rows handed out.
        """
        in_flight: dict[tuple[str, str, str], int] = {}
        for recipient_id, channel, target, _event_id in busy:
            key = (recipient_id, channel, target)
            in_flight[key] = in_flight.get(key, 0) + 1
        with self.sessions() as s:
            scan = s.execute(
                select(
                    OutboxRow.id,
                    OutboxRow.event_id,
                    OutboxRow.recipient_id,
                    OutboxRow.channel,
                    OutboxRow.target,
                    OutboxRow.next_attempt_ts,
                )
                .where(OutboxRow.state == PENDING)
                .order_by(OutboxRow.id)
                .limit(5000)
            )
            seen_targets: set[tuple[str, str, str]] = set()
            blocked: set[tuple[str, str, str]] = set()
            seen_events: set[tuple[str, str, str, str]] = set()
            chosen: list[int] = []
            for row_id, event_id, recipient_id, channel, target, next_ts in scan:
                tkey = (recipient_id, channel, target)
                ekey = (*tkey, event_id)
                first_of_target = tkey not in seen_targets
                seen_targets.add(tkey)
                earlier_of_event = ekey in seen_events
                seen_events.add(ekey)
                if tkey in blocked:
                    continue
                if next_ts > now:
                    if first_of_target:
                        blocked.add(tkey)  # the target is in backoff
                    continue
                if earlier_of_event or ekey in busy or in_flight.get(tkey, 0) >= per_target:
                    continue
                in_flight[tkey] = in_flight.get(tkey, 0) + 1
                chosen.append(row_id)
                if len(chosen) >= limit:
                    break
            if not chosen:
                return []
            rows = s.scalars(select(OutboxRow).where(OutboxRow.id.in_(chosen)).order_by(OutboxRow.id))
            return [_delivery(row) for row in rows]

    def next_due_ts(self) -> float | None:
        with self.sessions() as s:
            return s.scalar(select(func.min(OutboxRow.next_attempt_ts)).where(OutboxRow.state == PENDING))

    def mark_sent(self, row_id: int, sent_ts: float, latency_s: float, attempts: int) -> None:
        with self.sessions.begin() as s:
            s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == row_id)
                .values(state=SENT, sent_ts=sent_ts, latency_s=latency_s, attempts=attempts, last_error=None)
            )

    def mark_retry(self, row_id: int, next_ts: float, attempts: int, error: str) -> None:
        with self.sessions.begin() as s:
            s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == row_id)
                .values(next_attempt_ts=next_ts, attempts=attempts, last_error=error[:2000])
            )

    def mark_failed(self, row_id: int, attempts: int, error: str) -> None:
        with self.sessions.begin() as s:
            s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == row_id)
                .values(state=FAILED, attempts=attempts, last_error=error[:2000])
            )

    def retry_now(self, channel: str, now: float) -> int:
        """Make a channel's waiting rows due at once (its connection just came back)."""
        with self.sessions.begin() as s:
            res = s.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.state == PENDING, OutboxRow.channel == channel, OutboxRow.next_attempt_ts > now
                )
                .values(next_attempt_ts=now)
            )
            return int(getattr(res, "rowcount", 0) or 0)

    def prune(self, before_ts: float) -> int:
        """Delete finished rows (sent, failed, cancelled) created before ``before_ts``; pending
        rows stay whatever their age. Retention runs this with the evidence age limit: the rows
        hold signed links and descriptions of incidents whose clips are gone by then."""
        with self.sessions.begin() as s:
            res = s.execute(
                delete(OutboxRow).where(OutboxRow.state != PENDING, OutboxRow.created_ts < before_ts)
            )
            return int(getattr(res, "rowcount", 0) or 0)

    def pending_count(self) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).where(OutboxRow.state == PENDING)) or 0)

    def states(self, event_id: str) -> list[DeliveryState]:
        """Every delivery of one event, oldest first (shown in the console's event detail)."""
        with self.sessions() as s:
            rows: Sequence[OutboxRow] = list(
                s.scalars(select(OutboxRow).where(OutboxRow.event_id == event_id).order_by(OutboxRow.id))
            )
            return [
                DeliveryState(
                    r.key,
                    r.stage,
                    r.level,
                    r.recipient_id,
                    r.channel,
                    r.state,
                    r.attempts,
                    r.last_error,
                    r.created_ts,
                    r.sent_ts,
                    r.latency_s,
                )
                for r in rows
            ]
