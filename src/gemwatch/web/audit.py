"""The audit log: who did what to which thing, appended and never changed.

No FastAPI here, so alerts, the CLI and the node can record too. Actions are short dotted
verbs (``auth.login``, ``auth.login_failed``, ``clip.view``, ``clip.export``, ``event.ack``,
``config.zones``, ``user.create``, …); ``target`` names the object (``event:<id>``,
``camera:<id>``, ``user:<name>``); ``detail`` is a small JSON object (client address, reason,
changed fields). Rows cannot be updated or deleted: the migration installs triggers that
refuse it.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gemwatch.web.schema import AuditRow

_MAX_TARGET = 255
_MAX_FIELD = 64


def _row(actor: str, action: str, target: str, detail: dict[str, Any] | None) -> AuditRow:
    now = time.time()
    return AuditRow(
        at_utc=datetime.fromtimestamp(now, UTC),
        ts=now,
        actor=(actor or "-")[:_MAX_FIELD],
        action=action[:_MAX_FIELD],
        target=(target or "")[:_MAX_TARGET],
        detail=dict(detail or {}),
    )


def record(
    session_or_engine: Session | Engine,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit line.

    With a ``Session`` the line joins the caller's transaction (it commits or rolls back with
    the change it describes); with an ``Engine`` it is committed before this returns.
    """
    row = _row(actor, action, target, detail)
    if isinstance(session_or_engine, Session):
        session_or_engine.add(row)
        session_or_engine.flush()
        return
    with Session(session_or_engine) as s, s.begin():
        s.add(row)


def query(
    session: Session,
    *,
    action: str | None = None,
    actor: str | None = None,
    since_ts: float | None = None,
    until_ts: float | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[AuditRow]:
    """Newest first, filtered by exact action/actor and a [since, until) time range."""
    q = select(AuditRow)
    if action:
        q = q.where(AuditRow.action == action)
    if actor:
        q = q.where(AuditRow.actor == actor)
    if since_ts is not None:
        q = q.where(AuditRow.ts >= since_ts)
    if until_ts is not None:
        q = q.where(AuditRow.ts < until_ts)
    q = q.order_by(AuditRow.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(q))


CSV_FIELDS = ("id", "time_local", "time_utc", "actor", "action", "target", "detail")


def _csv_safe(value: str) -> str:
    """Defuse spreadsheet formulas: an auditor opens this in Excel (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_lines(rows: Iterable[AuditRow], tz: ZoneInfo) -> Iterator[str]:
    """The rows as CSV text, header first, times in the store's timezone and in UTC."""
    import json

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    yield buf.getvalue()
    for r in rows:
        buf.seek(0)
        buf.truncate()
        writer.writerow(
            [
                r.id,
                datetime.fromtimestamp(r.ts, tz).isoformat(timespec="seconds"),
                datetime.fromtimestamp(r.ts, UTC).isoformat(timespec="seconds"),
                _csv_safe(r.actor),
                _csv_safe(r.action),
                _csv_safe(r.target),
                _csv_safe(json.dumps(r.detail, sort_keys=True, ensure_ascii=False)),
            ]
        )
        yield buf.getvalue()
