"""Watchlist tables (migration 0004). Every word about a person and every face is ciphertext
(AES-GCM, key outside the database, see ``crypto``); only workflow fields are plain, so the
console can list, expire and audit without decrypting.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gemwatch.events.schema import Base


class EntryRow(Base):
    """One person on a gallery: ``offender`` (the watchlist) or ``staff`` (staff and guards).

    ``status``: pending (waits for a second person's approval) → active → expired / revoked;
    or rejected. ``origin`` is the store that made and signs it; ``seq`` its version there.
    """

    __tablename__ = "watchlist_entries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    gallery: Mapped[str] = mapped_column(String(16), index=True)
    origin: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    label_enc: Mapped[bytes] = mapped_column(LargeBinary)
    reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    evidence_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    description_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    closed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seq: Mapped[int] = mapped_column(Integer, default=1)


class FaceRow(Base):
    """A face of an entry: ``positive`` (enrolled) or ``negative`` (a 'not this person' lookalike).

    ``embedding_enc`` is empty under the description-only policy (no biometrics kept).
    """

    __tablename__ = "watchlist_faces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("watchlist_entries.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))
    embedding_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    image_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    quality: Mapped[float] = mapped_column(Float, default=0.0)
    source: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HitRow(Base):
    """A live match: the event, the entry, the live face (a match, so kept for human review),
    and the review: open → confirmed, or not_this_person (its face becomes a negative)."""

    __tablename__ = "watchlist_hits"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the event id
    entry_id: Mapped[str] = mapped_column(String(36), index=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[float] = mapped_column(Float)
    distance: Mapped[float] = mapped_column(Float)
    shots: Mapped[int] = mapped_column(Integer)
    chip_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    embedding_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RevocationRow(Base):
    """An entry revoked (or erased) by its origin: remembered so a stale bundle cannot bring it back."""

    __tablename__ = "watchlist_revocations"

    entry_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    origin: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SyncStateRow(Base):
    """The newest bundle accepted from each origin (replay and rollback protection)."""

    __tablename__ = "watchlist_sync"

    origin: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    bundle: Mapped[str | None] = mapped_column(
        Text, nullable=True
    )  # HQ keeps the last signed bundle to relay


class RequestRow(Base):
    """A complaint, subject-access or erasure request and what was done about it."""

    __tablename__ = "watchlist_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # complaint | access | erasure
    subject_enc: Mapped[bytes] = mapped_column(LargeBinary)  # who asked, how to reach them
    details_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    entry_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    outcome_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    received_by: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
