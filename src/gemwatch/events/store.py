"""The SQL event store: SQLite (WAL) by default, PostgreSQL by URL; schema by Alembic.

``write`` commits before it returns, so an event reported as written survives ``kill -9``
(SQLite runs WAL with synchronous=FULL: a committed transaction is on disk).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from gemwatch.events.schema import EventRow, RunRow, TrackRow
from gemwatch.types import Event


class StoreError(Exception):
    """The database cannot be opened or written; the message says which and why."""


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TrackSummary:
    camera_id: str
    track_id: int
    role: str
    first_ts: float
    last_ts: float
    observations: int
    max_score: float


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("gemwatch.events") / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class EventStore:
    def __init__(self, url: str, tz: ZoneInfo | str = "UTC") -> None:
        self.url = url
        self.tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        try:
            self.engine = make_engine(url)
            migrate(self.engine)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(
                f"cannot open database {self.safe_url}: {exc.__class__.__name__}: {exc}"
            ) from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True) if hasattr(self, "engine") else self.url

    def close(self) -> None:
        self.engine.dispose()

    def _local(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.tz).isoformat(timespec="seconds")

    # events -----------------------------------------------------------------------------
    def write(self, ev: Event) -> None:
        """Insert or update (same id) one event and commit before returning."""
        now = datetime.now(UTC)
        with self._sessions.begin() as s:
            row = s.get(EventRow, ev.id)
            if row is None:
                row = EventRow(id=ev.id, created_at=now)
                s.add(row)
            row.type = ev.type
            row.severity = str(ev.severity)
            row.camera_id = ev.camera_id
            row.zone_id = ev.zone_id
            row.start_ts = ev.start_ts
            row.end_ts = ev.end_ts
            row.start_utc = _utc(ev.start_ts)
            row.end_utc = None if ev.end_ts is None else _utc(ev.end_ts)
            row.start_local = self._local(ev.start_ts)
            row.end_local = None if ev.end_ts is None else self._local(ev.end_ts)
            row.ended = ev.ended
            row.people = list(ev.people)
            row.description = ev.description
            row.scores = {**(row.scores or {}), **ev.scores}
            if ev.snapshot_path is not None:
                row.snapshot_path = ev.snapshot_path
            if ev.clip_path is not None:
                row.clip_path = ev.clip_path
            row.updated_at = now

    def set_evidence(
        self, event_id: str, *, snapshot_path: str | None = None, clip_path: str | None = None
    ) -> None:
        with self._sessions.begin() as s:
            row = s.get(EventRow, event_id)
            if row is None:
                return
            if snapshot_path is not None:
                row.snapshot_path = snapshot_path
            if clip_path is not None:
                row.clip_path = clip_path
            row.updated_at = datetime.now(UTC)

    def forget_evidence(self, paths: Iterable[str]) -> int:
        """Null the paths of clips/snapshots that retention deleted; returns rows touched."""
        wanted = set(paths)
        if not wanted:
            return 0
        n = 0
        with self._sessions.begin() as s:
            for row in s.scalars(select(EventRow).where(EventRow.clip_path.in_(wanted))):
                row.clip_path = None
                n += 1
            for row in s.scalars(select(EventRow).where(EventRow.snapshot_path.in_(wanted))):
                row.snapshot_path = None
                n += 1
        return n

    def get(self, event_id: str) -> EventRow | None:
        with self._sessions() as s:
            return s.get(EventRow, event_id)

    def events(
        self,
        *,
        camera_id: str | None = None,
        type: str | None = None,
        since_ts: float | None = None,
        until_ts: float | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> Sequence[EventRow]:
        q = select(EventRow)
        if camera_id:
            q = q.where(EventRow.camera_id == camera_id)
        if type:
            q = q.where(EventRow.type == type)
        if since_ts is not None:
            q = q.where(EventRow.start_ts >= since_ts)
        if until_ts is not None:
            q = q.where(EventRow.start_ts < until_ts)
        q = q.order_by(EventRow.start_ts, EventRow.id).limit(limit).offset(offset)
        with self._sessions() as s:
            return list(s.scalars(q))

    # runs and tracks ----------------------------------------------------------------------
    def start_run(self, run_id: str, kind: str, sources: Sequence[str]) -> None:
        with self._sessions.begin() as s:
            s.add(RunRow(id=run_id, kind=kind, started_utc=datetime.now(UTC), sources=list(sources)))

    def end_run(self, run_id: str, status: str, error: str | None = None) -> None:
        with self._sessions.begin() as s:
            row = s.get(RunRow, run_id)
            if row is not None:
                row.ended_utc = datetime.now(UTC)
                row.status = status
                row.error = error

    def save_tracks(self, run_id: str, tracks: Iterable[TrackSummary]) -> None:
        with self._sessions.begin() as s:
            existing = {
                (r.camera_id, r.track_id): r
                for r in s.scalars(select(TrackRow).where(TrackRow.run_id == run_id))
            }
            for t in tracks:
                row = existing.get((t.camera_id, t.track_id))
                if row is None:
                    row = TrackRow(run_id=run_id, camera_id=t.camera_id, track_id=t.track_id)
                    s.add(row)
                row.role = t.role
                row.first_ts = t.first_ts
                row.last_ts = t.last_ts
                row.observations = t.observations
                row.max_score = t.max_score

    def tracks(self, run_id: str) -> list[TrackSummary]:
        with self._sessions() as s:
            rows = s.scalars(select(TrackRow).where(TrackRow.run_id == run_id).order_by(TrackRow.track_id))
            return [
                TrackSummary(
                    r.camera_id, r.track_id, r.role, r.first_ts, r.last_ts, r.observations, r.max_score
                )
                for r in rows
            ]


def row_start_utc(row: EventRow) -> datetime | None:
    return _aware(row.start_utc)
