"""Tables of the alert outbox, incidents (acknowledgement, escalation) and used one-tap links.

Mapped on the events ``Base`` so one Alembic history (``0003_alerts_outbox``) covers them.
Times are epoch seconds (float): they are compared with frame timestamps for latency.
No secrets are stored: a delivery names its target by a hash of the configured URL, and
the URL (with any token in it) is looked up in the config when the delivery is sent.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gemwatch.events.schema import Base


class OutboxRow(Base):
    """One message to one recipient's channel target, written before anything is sent.

    ``key`` is the idempotency key (unique): enqueuing the same stage of the same event for the
    same target twice is a no-op, and receivers get the key to drop a repeat after a crash.
    ``state``: pending → sent | failed (gave up) | cancelled.
    """

    __tablename__ = "alert_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    route_id: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer, default=0)
    recipient_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_ts: Mapped[float] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_ts: Mapped[float] = mapped_column(Float)
    frame_ts: Mapped[float] = mapped_column(Float)
    sent_ts: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_s: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_alert_outbox_state_next", "state", "next_attempt_ts"),)


class IncidentRow(Base):
    """One event as one route sees it: alerted, folded into another (cooldown), acknowledged.

    ``next_escalation_ts`` is when the next escalation step is due (None: none left, or acked).
    """

    __tablename__ = "alert_incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    route_id: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64))
    zone_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    type: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    folded_into: Mapped[str | None] = mapped_column(String(36), nullable=True)
    level: Mapped[int] = mapped_column(Integer, default=0)
    created_ts: Mapped[float] = mapped_column(Float)
    next_escalation_ts: Mapped[float | None] = mapped_column(Float, nullable=True)
    acked_ts: Mapped[float | None] = mapped_column(Float, nullable=True)
    acked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_alert_incidents_event_route", "event_id", "route_id", unique=True),
        Index("ix_alert_incidents_cooldown", "route_id", "camera_id", "type", "created_ts"),
    )


class RoutedRow(Base):
    """Marks an event as routed (and its clip stage as queued), committed with its outbox rows,
    so recovery after a crash can find events the store has but alerting never saw."""

    __tablename__ = "alert_routed"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    routed_ts: Mapped[float] = mapped_column(Float)
    last_ts: Mapped[float] = mapped_column(Float)
    ended: Mapped[int] = mapped_column(Integer, default=0)
    clip_queued: Mapped[int] = mapped_column(Integer, default=0)


class LinkUseRow(Base):
    """A one-tap action link that was used: the SHA-256 of the token is unique, so a second tap
    (or two taps racing) cannot publish the command twice."""

    __tablename__ = "alert_link_uses"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    recipient_id: Mapped[str] = mapped_column(String(64))
    action_id: Mapped[str] = mapped_column(String(64))
    used_ts: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))


class AlertStateRow(Base):
    """Small key/value facts of the alert subsystem (e.g. since when it has been routing)."""

    __tablename__ = "alert_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
