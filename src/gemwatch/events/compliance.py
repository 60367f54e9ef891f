"""Compliance records of the counter: every showing session and every protocol violation, kept
in SQL for the reports (per staff member and shift: sessions, violations by kind, median time
to serve).

``ComplianceSink`` listens on the bus beside the event store: a session is written when its
final report arrives (it carries the pieces out over time and the staff member), a violation on
its first report and updated when it ends. ``compliance_summary`` answers the reports' question
straight from these tables. Migration 0005 creates them.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, DateTime, Engine, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from gemwatch.events.schema import Base
from gemwatch.types import Event

#: Events that mean a counter procedure was not followed (DOMAIN.md, the showing rules).
VIOLATIONS = frozenset(
    {
        "too_many_pieces",
        "tray_on_counter",
        "customer_alone",
        "case_open_too_long",
        "case_unattended",
        "counter_obstruction",
        "item_outside_boundary",
        "not_served",
        "item_missing",
        "tray_removed",
        "item_unattended",
    }
)


class ShowingSessionRow(Base):
    """One showing: who served whom, for how long, how many pieces were out, what went wrong."""

    __tablename__ = "showing_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the showing_session event's id
    camera_id: Mapped[str] = mapped_column(String(64))
    counter_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    zone_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    start_ts: Mapped[float] = mapped_column(Float)
    end_ts: Mapped[float] = mapped_column(Float)
    start_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    start_local: Mapped[str] = mapped_column(String(40))
    arrived_ts: Mapped[float | None] = mapped_column(Float, nullable=True)
    time_to_serve_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    staff_track: Mapped[int | None] = mapped_column(Integer, nullable=True)
    staff_identity: Mapped[str | None] = mapped_column(String(64), nullable=True)
    customers: Mapped[list[int]] = mapped_column(JSON, default=list)
    max_pieces: Mapped[int] = mapped_column(Integer, default=0)
    pieces: Mapped[list[list[float]]] = mapped_column(JSON, default=list)
    violations: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProtocolViolationRow(Base):
    """A protocol event, linked to the showing it happened in when there was one."""

    __tablename__ = "protocol_violations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the event's id
    type: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64))
    zone_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    start_ts: Mapped[float] = mapped_column(Float)
    end_ts: Mapped[float | None] = mapped_column(Float, nullable=True)
    start_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    start_local: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class ComplianceSink:
    """Bus listener that writes sessions and violations (commits before returning)."""

    def __init__(self, engine: Engine, tz: ZoneInfo) -> None:
        self.tz = tz
        self._session = sessionmaker(engine, expire_on_commit=False)

    def _local(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.tz).isoformat(timespec="seconds")

    def event(self, ev: Event) -> None:
        if ev.type == "showing_session" and ev.ended:
            self._session_row(ev)
        elif ev.type in VIOLATIONS:
            self._violation_row(ev)

    def _session_row(self, ev: Event) -> None:
        x = ev.extra
        end = ev.end_ts if ev.end_ts is not None else ev.start_ts
        arrived = x.get("arrived_ts")
        staff = x.get("staff")
        with self._session.begin() as db:
            row = db.get(ShowingSessionRow, ev.id) or ShowingSessionRow(
                id=ev.id, created_at=datetime.now(UTC)
            )
            row.camera_id = ev.camera_id
            row.counter_id = x.get("counter")
            row.zone_id = ev.zone_id
            row.start_ts, row.end_ts = ev.start_ts, end
            row.start_utc, row.end_utc = _utc(ev.start_ts), _utc(end)
            row.start_local = self._local(ev.start_ts)
            row.arrived_ts = arrived
            row.time_to_serve_s = None if arrived is None else max(0.0, ev.start_ts - float(arrived))
            row.staff_track = int(staff) if staff is not None else None
            row.staff_identity = x.get("staff_identity")
            row.customers = [int(c) for c in x.get("customers", [])]
            row.max_pieces = int(ev.scores.get("max_pieces", 0))
            row.pieces = [list(p) for p in x.get("pieces", [])]
            row.violations = {str(k): int(v) for k, v in (x.get("violations") or {}).items()}
            db.add(row)

    def _violation_row(self, ev: Event) -> None:
        with self._session.begin() as db:
            row = db.get(ProtocolViolationRow, ev.id)
            if row is None:
                row = ProtocolViolationRow(
                    id=ev.id,
                    type=ev.type,
                    camera_id=ev.camera_id,
                    zone_id=ev.zone_id,
                    session_id=ev.extra.get("session_id"),
                    start_ts=ev.start_ts,
                    start_utc=_utc(ev.start_ts),
                    start_local=self._local(ev.start_ts),
                    severity=str(ev.severity),
                    description=ev.description,
                    created_at=datetime.now(UTC),
                )
            row.end_ts = ev.end_ts
            row.description = ev.description
            db.add(row)


# ------------------------------------------------------------------------------------ reports


@dataclass(frozen=True, slots=True)
class Shift:
    """A named part of the store's day in local hours; ``end`` ≤ ``start`` crosses midnight."""

    name: str
    start_hour: int
    end_hour: int

    def contains(self, hour: int) -> bool:
        if self.start_hour < self.end_hour:
            return self.start_hour <= hour < self.end_hour
        return hour >= self.start_hour or hour < self.end_hour


WHOLE_DAY = (Shift("day", 0, 24),)


@dataclass(slots=True)
class StaffShift:
    """What one staff member did in one shift."""

    staff: str
    date: str  # local date the shift started on
    shift: str
    sessions: int = 0
    violations: dict[str, int] = field(default_factory=dict)
    times_to_serve: list[float] = field(default_factory=list)
    showing_s: float = 0.0

    @property
    def median_time_to_serve_s(self) -> float | None:
        return statistics.median(self.times_to_serve) if self.times_to_serve else None


def compliance_summary(
    engine: Engine, tz: ZoneInfo, since_ts: float, until_ts: float, shifts: tuple[Shift, ...] = WHOLE_DAY
) -> list[StaffShift]:
    """Sessions, violations by kind (those of their sessions) and median time to serve, per
    staff member and shift. A staff member is their enrolled identity when faces knew them,
    else ``track <id>@<camera>``; violations outside any session are listed under ``(no showing)``."""
    out: dict[tuple[str, str, str], StaffShift] = {}

    def bucket(staff: str, ts: float) -> StaffShift:
        local = datetime.fromtimestamp(ts, tz)
        shift = next((s for s in shifts if s.contains(local.hour)), Shift("other", 0, 0))
        day = local.date()
        if shift.end_hour <= shift.start_hour and local.hour < shift.end_hour:
            day = datetime.fromtimestamp(ts - 86400, tz).date()  # the night shift started yesterday
        key = (staff, day.isoformat(), shift.name)
        if key not in out:
            out[key] = StaffShift(staff, day.isoformat(), shift.name)
        return out[key]

    session_owner: dict[str, StaffShift] = {}
    with Session(engine) as db:
        rows = db.scalars(
            select(ShowingSessionRow)
            .where(ShowingSessionRow.start_ts >= since_ts, ShowingSessionRow.start_ts < until_ts)
            .order_by(ShowingSessionRow.start_ts)
        ).all()
        for r in rows:
            who = r.staff_identity or (
                f"track {r.staff_track}@{r.camera_id}" if r.staff_track is not None else "?"
            )
            b = bucket(who, r.start_ts)
            b.sessions += 1
            b.showing_s += r.end_ts - r.start_ts
            if r.time_to_serve_s is not None:
                b.times_to_serve.append(r.time_to_serve_s)
            session_owner[r.id] = b
        vs = db.scalars(
            select(ProtocolViolationRow).where(
                ProtocolViolationRow.start_ts >= since_ts, ProtocolViolationRow.start_ts < until_ts
            )
        ).all()
        for v in vs:
            b = session_owner.get(v.session_id or "") or bucket("(no showing)", v.start_ts)
            b.violations[v.type] = b.violations.get(v.type, 0) + 1
    return sorted(out.values(), key=lambda s: (s.date, s.shift, s.staff))


def session_rows(engine: Engine) -> list[dict[str, Any]]:
    """All showing sessions as plain dicts, oldest first (for exports and tests)."""
    with Session(engine) as db:
        rows = db.scalars(select(ShowingSessionRow).order_by(ShowingSessionRow.start_ts)).all()
        return [{c.name: getattr(r, c.name) for c in ShowingSessionRow.__table__.columns} for r in rows]


def violations_by_kind(engine: Engine) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    with Session(engine) as db:
        for v in db.scalars(select(ProtocolViolationRow)).all():
            counts[v.type] += 1
    return dict(counts)
