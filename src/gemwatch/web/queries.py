"""Event queries and time formatting for the console (no FastAPI): filters, paging, review.

All times a person types or reads are in the store's timezone. Input like ``2026-03-29`` or
``2026-03-29T01:30`` is read as store-local wall time; a local time that does not exist (the
hour skipped when clocks go forward) is read with the offset before the change, as Python's
zoneinfo does (fold=0); text with an explicit offset is taken as given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gemwatch.events.schema import EventRow
from gemwatch.types import Severity
from gemwatch.web.auth import WATCHLIST_EVENT_PREFIX

SEVERITY_ORDER = [s.value for s in Severity]
STATUSES = ("open", "acknowledged", "resolved", "false_alarm")


def local_text(ts: float | None, tz: ZoneInfo, *, seconds: bool = True) -> str:
    """'2026-03-29 01:59:58 GMT': the zone abbreviation makes a DST change visible."""
    if ts is None:
        return ""
    fmt = "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z"
    return datetime.fromtimestamp(ts, tz).strftime(fmt)


def dt_text(dt: datetime | None, tz: ZoneInfo) -> str:
    if dt is None:
        return ""
    aware = dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
    return aware.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def parse_local(text: str, tz: ZoneInfo, *, end: bool = False) -> float:
    """Epoch seconds of a store-local date or date-time; a bare date with ``end`` means the
    start of the next day (so ``until=2026-03-29`` includes all of the 29th). Raises ValueError."""
    text = text.strip()
    if not text or len(text) > 40:
        raise ValueError("expected a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM)")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), tzinfo=tz).timestamp()
        dt = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"'{text}' is not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


@dataclass(slots=True)
class EventFilter:
    camera: str | None = None
    type: str | None = None
    severity: str | None = None
    zone: str | None = None
    status: str | None = None
    since_ts: float | None = None
    until_ts: float | None = None
    hide_watchlist: bool = False
    cameras: list[str] = field(default_factory=list)

    def apply(self, q: Any) -> Any:
        if self.camera:
            q = q.where(EventRow.camera_id == self.camera)
        if self.cameras:
            q = q.where(EventRow.camera_id.in_(self.cameras))
        if self.type:
            q = q.where(EventRow.type == self.type)
        if self.severity:
            q = q.where(EventRow.severity == self.severity)
        if self.zone:
            q = q.where(EventRow.zone_id == self.zone)
        if self.since_ts is not None:
            q = q.where(EventRow.start_ts >= self.since_ts)
        if self.until_ts is not None:
            q = q.where(EventRow.start_ts < self.until_ts)
        if self.hide_watchlist:
            q = q.where(~EventRow.type.startswith(WATCHLIST_EVENT_PREFIX))
        if self.status == "open":
            q = q.where(EventRow.acknowledged_at.is_(None), EventRow.resolved_at.is_(None))
        elif self.status == "acknowledged":
            q = q.where(EventRow.acknowledged_at.is_not(None), EventRow.resolved_at.is_(None))
        elif self.status == "resolved":
            q = q.where(
                EventRow.resolved_at.is_not(None), or_(EventRow.false_alarm.is_(None), ~EventRow.false_alarm)
            )
        elif self.status == "false_alarm":
            q = q.where(EventRow.false_alarm.is_(True))
        return q


def find_events(
    s: Session, f: EventFilter, *, page: int = 1, per_page: int = 50
) -> tuple[list[EventRow], int]:
    """Newest first; returns (page of rows, total matching)."""
    total = int(s.scalar(f.apply(select(func.count()).select_from(EventRow))) or 0)
    q = f.apply(select(EventRow)).order_by(EventRow.start_ts.desc(), EventRow.id.desc())
    rows = list(s.scalars(q.limit(per_page).offset((page - 1) * per_page)))
    return rows, total


def facets(s: Session) -> dict[str, list[str]]:
    """Distinct values for the filter drop-downs."""
    return {
        "type": sorted(t for t in s.scalars(select(EventRow.type).distinct()) if t),
        "zone": sorted(z for z in s.scalars(select(EventRow.zone_id).distinct()) if z),
        "camera": sorted(c for c in s.scalars(select(EventRow.camera_id).distinct()) if c),
    }


def open_counts(s: Session, *, hide_watchlist: bool = False) -> dict[str, int]:
    """Unacknowledged, unresolved events per camera (info-level events excluded)."""
    q = (
        select(EventRow.camera_id, func.count())
        .where(EventRow.acknowledged_at.is_(None), EventRow.resolved_at.is_(None))
        .where(EventRow.severity != Severity.INFO.value)
    )
    if hide_watchlist:
        q = q.where(~EventRow.type.startswith(WATCHLIST_EVENT_PREFIX))
    return {cam: int(n) for cam, n in s.execute(q.group_by(EventRow.camera_id))}


def review_state(row: EventRow) -> str:
    if row.false_alarm:
        return "false_alarm"
    if row.resolved_at is not None:
        return "resolved"
    if row.acknowledged_at is not None:
        return "acknowledged"
    return "open"


def now_utc() -> datetime:
    return datetime.now(UTC)


def acknowledge(row: EventRow, user: str) -> bool:
    """Mark seen; the first acknowledgement is kept (response times are measured to it)."""
    if row.acknowledged_at is not None:
        return False
    row.acknowledged_by = user
    row.acknowledged_at = now_utc()
    return True


def resolve(row: EventRow, user: str, *, false_alarm: bool) -> None:
    now = now_utc()
    if row.acknowledged_at is None:
        row.acknowledged_by = user
        row.acknowledged_at = now
    row.resolved_by = user
    row.resolved_at = now
    row.false_alarm = false_alarm


def reopen(row: EventRow) -> None:
    row.resolved_by = None
    row.resolved_at = None
    row.false_alarm = None


def add_note(row: EventRow, user: str, text: str, tz: ZoneInfo) -> None:
    """Notes are appended with author and local time, never rewritten."""
    line = f"[{datetime.now(tz).strftime('%Y-%m-%d %H:%M %Z')}] {user}: {text.strip()}"
    row.notes = f"{row.notes}\n{line}" if row.notes else line
