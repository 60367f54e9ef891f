"""The watchlist service: enrollment with four-eyes approval, expiry, revocation, erasure,
'not this person', subject access, and the in-memory gallery the matcher reads.

Every change and every look at a person's data is one audit line in the same transaction as
the change (``gemwatch.web.audit``). Personal data is sealed with ``crypto.Sealer`` before it
reaches SQL; the gallery snapshot holds decrypted embeddings in memory only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from gemwatch.perception.faces import (
    EMBEDDING_DIM,
    FaceAnalyzer,
    FaceShot,
    QualityGate,
    face_distance,
)
from gemwatch.types import uuid7
from gemwatch.watchlist.config import Policy, WatchlistConfig
from gemwatch.watchlist.crypto import (
    KEY_ENV,
    Sealer,
    SigningKey,
    load_or_create_key,
    load_or_create_signing_key,
)
from gemwatch.watchlist.schema import EntryRow, FaceRow, HitRow, RequestRow, RevocationRow
from gemwatch.web import audit

log = logging.getLogger(__name__)

OFFENDER = "offender"
STAFF = "staff"
GALLERIES = (OFFENDER, STAFF)
STAFF_ROLES = ("staff", "guard")
APPROVER_ROLES = frozenset({"owner", "manager", "security"})
PENDING, ACTIVE, REJECTED, EXPIRED, REVOKED = "pending", "active", "rejected", "expired", "revoked"


class WatchlistError(ValueError):
    """A refusal a person can act on (missing reason, same approver, bad photo, policy off)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def pack_embedding(vec: np.ndarray) -> bytes:
    arr = np.asarray(vec, dtype="<f4").reshape(-1)
    if arr.size != EMBEDDING_DIM:
        raise ValueError(f"an embedding has {EMBEDDING_DIM} values, got {arr.size}")
    return arr.tobytes()


def unpack_embedding(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def jpeg(image_bgr: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("cannot encode JPEG")
    return bytes(buf)


def face_picture(image_bgr: np.ndarray, box: Sequence[float], size: int = 200) -> np.ndarray:
    """The face with some context (for a person to compare), at most ``size`` px."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(w, h) * 1.4
    H, W = image_bgr.shape[:2]
    a, b = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
    c, d = min(W, int(cx + side / 2)), min(H, int(cy + side / 2))
    crop = image_bgr[b:d, a:c]
    scale = min(1.0, size / max(crop.shape[:2]))
    return cv2.resize(crop, (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))))


@dataclass(frozen=True, slots=True)
class EntryView:
    """An entry as the console and CLI show it (decrypted; only for authorised viewers)."""

    id: str
    gallery: str
    origin: str
    status: str
    role: str | None
    label: str
    reason: str | None
    evidence: str | None
    description: str | None
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    expires_at: datetime
    closed_by: str | None
    closed_at: datetime | None
    faces: int
    negatives: int
    seq: int

    @property
    def expired(self) -> bool:
        return self.expires_at <= _now()


@dataclass(frozen=True, slots=True)
class GallerySnapshot:
    """What the matcher needs, decrypted, in memory: one row per enrolled face.

    ``owner[i]`` is the entry index of ``positives[i]``; ``neg_owner`` likewise for negatives.
    ``thumbs`` holds one enrolled face picture (JPEG) per entry for the hit snapshot.
    """

    entry_ids: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    roles: tuple[str | None, ...] = ()
    positives: np.ndarray = field(default_factory=lambda: np.zeros((0, EMBEDDING_DIM), np.float32))
    owner: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    negatives: np.ndarray = field(default_factory=lambda: np.zeros((0, EMBEDDING_DIM), np.float32))
    neg_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    thumbs: tuple[bytes | None, ...] = ()
    version: str = ""

    def __len__(self) -> int:
        return len(self.entry_ids)

    def nearest(self, embedding: np.ndarray) -> tuple[int, float, float]:
        """(entry index, distance to its nearest enrolled face, distance to that entry's nearest
        negative or inf) for the closest entry; (-1, inf, inf) on an empty gallery."""
        if not len(self.entry_ids) or not len(self.positives):
            return -1, float("inf"), float("inf")
        d = face_distance(embedding[None], self.positives)[0]
        per_entry = np.full(len(self.entry_ids), np.inf, np.float32)
        np.minimum.at(per_entry, self.owner, d)
        best = int(np.argmin(per_entry))
        neg = float("inf")
        mine = self.neg_owner == best
        if mine.any():
            neg = float(face_distance(embedding[None], self.negatives[mine]).min())
        return best, float(per_entry[best]), neg

    def distances(self, embedding: np.ndarray) -> np.ndarray:
        """Distance to each entry's nearest enrolled face (inf for an entry without faces)."""
        per_entry = np.full(len(self.entry_ids), np.inf, np.float32)
        if len(self.positives):
            d = face_distance(embedding[None], self.positives)[0]
            np.minimum.at(per_entry, self.owner, d)
        return per_entry

    def negative_distances(self, embedding: np.ndarray) -> np.ndarray:
        per_entry = np.full(len(self.entry_ids), np.inf, np.float32)
        if len(self.negatives):
            d = face_distance(embedding[None], self.negatives)[0]
            np.minimum.at(per_entry, self.neg_owner, d)
        return per_entry


def default_secrets_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "secrets"


class Watchlist:
    """Entries, faces, hits and requests of one node. Thread-safe through short transactions."""

    def __init__(
        self,
        engine: Engine,
        cfg: WatchlistConfig,
        data_dir: Path,
        *,
        analyzer: FaceAnalyzer | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.cfg = cfg
        self.data_dir = Path(data_dir)
        secrets_dir = default_secrets_dir(self.data_dir)
        key = load_or_create_key(cfg.key_file or secrets_dir / "watchlist.key", KEY_ENV)
        self.sealer = Sealer(key)
        self._signing_path = cfg.signing_key_file or secrets_dir / "watchlist-signing.key"
        self._signing: SigningKey | None = None
        self._analyzer = analyzer
        self.on_change = on_change
        self.enroll_gate = QualityGate(
            min_width_px=cfg.enroll_min_face_px,
            min_sharpness=cfg.enroll_min_sharpness,
            max_yaw=cfg.enroll_max_yaw,
            min_score=0.7,
        )

    # plumbing ----------------------------------------------------------------------------------
    @property
    def analyzer(self) -> FaceAnalyzer:
        if self._analyzer is None:
            self._analyzer = FaceAnalyzer()
        return self._analyzer

    @property
    def signing_key(self) -> SigningKey:
        if self._signing is None:
            self._signing = load_or_create_signing_key(self._signing_path)
        return self._signing

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            yield s

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:
                log.exception("watchlist change listener failed")

    def _aad(self, entry_id: str, column: str) -> str:
        return f"watchlist:{entry_id}:{column}"

    def _entry(self, s: Session, entry_id: str) -> EntryRow:
        row = s.get(EntryRow, entry_id)
        if row is None:
            raise WatchlistError(f"no watchlist entry '{entry_id}'")
        return row

    def _view(self, s: Session, row: EntryRow) -> EntryView:
        counts = dict(
            s.execute(
                select(FaceRow.kind, func.count()).where(FaceRow.entry_id == row.id).group_by(FaceRow.kind)
            ).all()
        )
        o = self.sealer.open_text
        return EntryView(
            id=row.id,
            gallery=row.gallery,
            origin=row.origin,
            status=row.status,
            role=row.role,
            label=o(row.label_enc, self._aad(row.id, "label")) or "",
            reason=o(row.reason_enc, self._aad(row.id, "reason")),
            evidence=o(row.evidence_enc, self._aad(row.id, "evidence")),
            description=o(row.description_enc, self._aad(row.id, "description")),
            created_by=row.created_by,
            created_at=_aware(row.created_at) or _now(),
            approved_by=row.approved_by,
            approved_at=_aware(row.approved_at),
            expires_at=_aware(row.expires_at) or _now(),
            closed_by=row.closed_by,
            closed_at=_aware(row.closed_at),
            faces=int(counts.get("positive", 0)),
            negatives=int(counts.get("negative", 0)),
            seq=row.seq,
        )

    def _require_policy(self) -> None:
        if self.cfg.policy == Policy.OFF:
            raise WatchlistError("the watchlist is switched off here (watchlist.policy: off)")

    def _check_approver(self, s: Session, username: str) -> None:
        from gemwatch.web.schema import UserRow

        user = s.scalar(select(UserRow).where(UserRow.username == username))
        if user is None or user.disabled:
            raise WatchlistError(f"'{username}' is not an active console user")
        if user.role not in APPROVER_ROLES:
            raise WatchlistError(
                f"'{username}' ({user.role}) may not approve watchlist entries "
                f"(roles: {', '.join(sorted(APPROVER_ROLES))})"
            )

    # faces from pictures ---------------------------------------------------------------------
    def face_from_image(
        self, image_bgr: np.ndarray, *, name: str = "photo", pick: int | None = None
    ) -> FaceShot:
        """The one usable face in a picture (or face ``pick``, left to right); refuses with the
        quality gate's reasons, or when several faces leave it unclear who is meant."""
        shots = self.analyzer.faces(image_bgr)
        if not shots:
            raise WatchlistError(f"{name}: no face found")
        if pick is not None:
            if not 0 <= pick < len(shots):
                raise WatchlistError(f"{name}: has {len(shots)} face(s); --face {pick} does not exist")
            shot = shots[pick]
        else:
            good = [s for s in shots if self.enroll_gate.passes(s.quality)]
            if len(good) > 1:
                raise WatchlistError(f"{name}: {len(good)} faces; say which one (left to right, from 0)")
            shot = good[0] if good else max(shots, key=lambda s: s.quality.width_px)
        problems = self.enroll_gate.reasons(shot.quality)
        if problems:
            raise WatchlistError(f"{name}: not good enough to enroll: {'; '.join(problems)}")
        return shot

    def _add_face(
        self,
        s: Session,
        entry_id: str,
        shot: FaceShot,
        image_bgr: np.ndarray,
        source: str,
        by: str,
        kind: str,
    ) -> FaceRow:
        keep_biometrics = self.cfg.policy == Policy.FACE_MATCHING
        row = FaceRow(
            entry_id=entry_id,
            kind=kind,
            quality=shot.quality.value(),
            source=source[:128],
            created_by=by,
            created_at=_now(),
        )
        s.add(row)
        s.flush()
        aad = self._aad(entry_id, f"face:{row.id}")
        row.image_enc = self.sealer.seal(jpeg(face_picture(image_bgr, shot.box)), aad + ":image")
        if keep_biometrics:
            row.embedding_enc = self.sealer.seal(pack_embedding(shot.embedding), aad + ":embedding")
        return row

    # enrollment and approval -----------------------------------------------------------------
    def enroll(
        self,
        *,
        label: str,
        by: str,
        images: Sequence[tuple[str, np.ndarray]],
        reason: str | None = None,
        evidence: str | None = None,
        description: str | None = None,
        gallery: str = OFFENDER,
        role: str | None = None,
        expires_days: int | None = None,
        faces: Sequence[int | None] | None = None,
    ) -> str:
        """Create a pending entry from pictures; it matches nothing until a second person approves.

        The offender gallery needs a reason and an evidence reference (an incident or police
        number); the staff gallery needs a role (staff or guard). Returns the entry id.
        """
        self._require_policy()
        label = label.strip()
        if not label:
            raise WatchlistError("give a name or a description of the person")
        if gallery not in GALLERIES:
            raise WatchlistError(f"unknown gallery '{gallery}' (offender or staff)")
        if gallery == OFFENDER and not ((reason or "").strip() and (evidence or "").strip()):
            raise WatchlistError(
                "an offender entry needs a reason and an evidence reference (incident, police no.)"
            )
        if gallery == STAFF and role not in STAFF_ROLES:
            raise WatchlistError("a staff entry needs --role staff or guard")
        if gallery == OFFENDER:
            role = None
        if not images:
            raise WatchlistError("give at least one picture of the person")
        days = expires_days or self.cfg.expiry_days
        if days > self.cfg.expiry_days:
            raise WatchlistError(f"entries may last at most {self.cfg.expiry_days} days here")
        picks = list(faces) if faces is not None else [None] * len(images)
        shots = [
            self.face_from_image(img, name=name, pick=p) for (name, img), p in zip(images, picks, strict=True)
        ]
        entry_id = uuid7()
        now = _now()
        with self.session() as s:
            row = EntryRow(
                id=entry_id,
                gallery=gallery,
                origin=self.cfg.store_id,
                status=PENDING,
                role=role,
                label_enc=self.sealer.seal(label.encode("utf-8"), self._aad(entry_id, "label")),
                reason_enc=self.sealer.seal_text(reason, self._aad(entry_id, "reason")),
                evidence_enc=self.sealer.seal_text(evidence, self._aad(entry_id, "evidence")),
                description_enc=self.sealer.seal_text(description, self._aad(entry_id, "description")),
                created_by=by,
                created_at=now,
                expires_at=now + timedelta(days=days),
                updated_at=now,
                seq=1,
            )
            s.add(row)
            s.flush()
            for (name, img), shot in zip(images, shots, strict=True):
                self._add_face(s, entry_id, shot, img, f"photo:{Path(name).name}", by, "positive")
            audit.record(
                s, by, "watchlist.enroll", f"watchlist:{entry_id}",
                {"gallery": gallery, "faces": len(shots), "expires_days": days},
            )  # fmt: skip
        return entry_id

    def add_faces(self, entry_id: str, images: Sequence[tuple[str, np.ndarray]], by: str) -> int:
        """More pictures of an entry (any state but closed); returns how many were added."""
        self._require_policy()
        shots = [self.face_from_image(img, name=name) for name, img in images]
        with self.session() as s:
            row = self._entry(s, entry_id)
            if row.status not in (PENDING, ACTIVE):
                raise WatchlistError(
                    f"entry is {row.status}; faces can only be added to pending or active ones"
                )
            for (name, img), shot in zip(images, shots, strict=True):
                self._add_face(s, entry_id, shot, img, f"photo:{Path(name).name}", by, "positive")
            row.updated_at = _now()
            row.seq += 1
            audit.record(s, by, "watchlist.add_face", f"watchlist:{entry_id}", {"faces": len(shots)})
        self._changed()
        return len(shots)

    def approve(self, entry_id: str, by: str) -> None:
        """The second pair of eyes: a different authorised user makes a pending entry active."""
        self._require_policy()
        with self.session() as s:
            row = self._entry(s, entry_id)
            if row.status != PENDING:
                raise WatchlistError(f"entry is {row.status}, not pending")
            if by == row.created_by:
                raise WatchlistError("four-eyes rule: the person who enrolled an entry cannot approve it")
            self._check_approver(s, by)
            now = _now()
            row.status, row.approved_by, row.approved_at, row.updated_at = ACTIVE, by, now, now
            row.seq += 1
            audit.record(s, by, "watchlist.approve", f"watchlist:{entry_id}", {"created_by": row.created_by})
        self._changed()

    def reject(self, entry_id: str, by: str, reason: str) -> None:
        with self.session() as s:
            row = self._entry(s, entry_id)
            if row.status != PENDING:
                raise WatchlistError(f"entry is {row.status}, not pending")
            self._check_approver(s, by)
            self._close(s, row, REJECTED, by)
            audit.record(s, by, "watchlist.reject", f"watchlist:{entry_id}", {"reason": reason[:200]})

    def renew(self, entry_id: str, by: str, days: int | None = None) -> datetime:
        """Extend an active entry from today (needs an authorised user; audited)."""
        days = days or self.cfg.expiry_days
        if days > self.cfg.expiry_days:
            raise WatchlistError(f"entries may last at most {self.cfg.expiry_days} days here")
        with self.session() as s:
            row = self._entry(s, entry_id)
            if row.status != ACTIVE:
                raise WatchlistError(f"entry is {row.status}; only active entries can be renewed")
            if row.origin != self.cfg.store_id:
                raise WatchlistError(f"entry belongs to store '{row.origin}'; only it can renew it")
            self._check_approver(s, by)
            now = _now()
            row.expires_at, row.updated_at = now + timedelta(days=days), now
            row.seq += 1
            audit.record(s, by, "watchlist.renew", f"watchlist:{entry_id}", {"days": days})
            expires = row.expires_at
        self._changed()
        return expires

    def _close(self, s: Session, row: EntryRow, status: str, by: str) -> None:
        """Closed entries keep no faces: biometrics and pictures go at once."""
        now = _now()
        s.execute(delete(FaceRow).where(FaceRow.entry_id == row.id))
        for hit in s.scalars(select(HitRow).where(HitRow.entry_id == row.id)):
            hit.chip_enc = None
            hit.embedding_enc = None
        row.status, row.closed_by, row.closed_at, row.updated_at = status, by, now, now
        row.seq += 1

    def revoke(self, entry_id: str, by: str, reason: str) -> None:
        """Take an entry off the list (it stops matching here and, through sync, everywhere)."""
        with self.session() as s:
            row = self._entry(s, entry_id)
            if row.status in (REVOKED, REJECTED):
                raise WatchlistError(f"entry is already {row.status}")
            if row.origin != self.cfg.store_id:
                raise WatchlistError(
                    f"entry belongs to store '{row.origin}'; ask it to revoke (or stop trusting it)"
                )
            self._close(s, row, REVOKED, by)
            s.merge(RevocationRow(entry_id=row.id, origin=row.origin, revoked_at=_now()))
            audit.record(s, by, "watchlist.revoke", f"watchlist:{entry_id}", {"reason": reason[:200]})
        self._changed()

    def erase(self, entry_id: str, by: str, reason: str) -> None:
        """Erasure (a right of the person, or a removal after a complaint): every row about the
        entry goes, hits included; the audit keeps only that it happened, and a revocation
        marker stops a stale bundle from bringing it back."""
        with self.session() as s:
            row = self._entry(s, entry_id)
            origin = row.origin
            s.execute(delete(FaceRow).where(FaceRow.entry_id == entry_id))
            s.execute(delete(HitRow).where(HitRow.entry_id == entry_id))
            s.delete(row)
            s.merge(RevocationRow(entry_id=entry_id, origin=origin, revoked_at=_now()))
            audit.record(s, by, "watchlist.erase", f"watchlist:{entry_id}", {"reason": reason[:200]})
        self._changed()

    def expire_due(self, now: datetime | None = None, by: str = "system") -> list[str]:
        """Close every entry past its expiry date (faces deleted); returns their ids."""
        now = now or _now()
        done: list[str] = []
        with self.session() as s:
            rows = s.scalars(
                select(EntryRow).where(EntryRow.status.in_((PENDING, ACTIVE)), EntryRow.expires_at <= now)
            )
            for row in rows:
                self._close(s, row, EXPIRED, by)
                audit.record(s, by, "watchlist.expire", f"watchlist:{row.id}", {})
                done.append(row.id)
        if done:
            self._changed()
        return done

    # reading ---------------------------------------------------------------------------------
    def entries(self, *, gallery: str | None = None, status: str | None = None) -> list[EntryView]:
        with self.session() as s:
            q = select(EntryRow).order_by(EntryRow.created_at.desc())
            if gallery:
                q = q.where(EntryRow.gallery == gallery)
            if status:
                q = q.where(EntryRow.status == status)
            return [self._view(s, r) for r in s.scalars(q)]

    def view(self, entry_id: str, by: str, client: str | None = None) -> EntryView:
        """One entry, decrypted; the look itself is audited."""
        with self.session() as s:
            v = self._view(s, self._entry(s, entry_id))
            audit.record(
                s, by, "watchlist.view", f"watchlist:{entry_id}", {"client": client} if client else {}
            )
        return v

    def face_images(self, entry_id: str, by: str, kind: str = "positive") -> list[tuple[int, bytes]]:
        """(face id, JPEG) of an entry's faces; audited."""
        with self.session() as s:
            self._entry(s, entry_id)
            rows = list(s.scalars(select(FaceRow).where(FaceRow.entry_id == entry_id, FaceRow.kind == kind)))
            out = [
                (r.id, self.sealer.open(r.image_enc, self._aad(entry_id, f"face:{r.id}") + ":image"))
                for r in rows
                if r.image_enc is not None
            ]
            audit.record(s, by, "watchlist.view_faces", f"watchlist:{entry_id}", {"faces": len(out)})
        return out

    def version(self) -> str:
        """Changes whenever anything the matcher reads changes (cheap: two aggregates)."""
        with Session(self.engine) as s:
            a = s.execute(select(func.count(), func.max(EntryRow.updated_at), func.sum(EntryRow.seq))).one()
            b = s.execute(select(func.count(), func.max(FaceRow.id))).one()
        return f"{a[0]}:{a[1]}:{a[2]}:{b[0]}:{b[1]}"

    def own_version(self) -> str:
        """Changes whenever this store's own entries change (what its bundle carries)."""
        own = EntryRow.origin == self.cfg.store_id
        with Session(self.engine) as s:
            a = s.execute(
                select(func.count(), func.max(EntryRow.updated_at), func.sum(EntryRow.seq)).where(own)
            ).one()
            r = s.execute(
                select(func.count())
                .select_from(RevocationRow)
                .where(RevocationRow.origin == self.cfg.store_id)
            ).one()
        return f"{a[0]}:{a[1]}:{a[2]}:{r[0]}"

    def snapshot(self, gallery: str = OFFENDER, now: datetime | None = None) -> GallerySnapshot:
        """Active, unexpired entries of a gallery with their faces decrypted (memory only)."""
        now = now or _now()
        version = self.version()
        ids: list[str] = []
        labels: list[str] = []
        roles: list[str | None] = []
        thumbs: list[bytes | None] = []
        pos: list[np.ndarray] = []
        owner: list[int] = []
        neg: list[np.ndarray] = []
        neg_owner: list[int] = []
        with Session(self.engine) as s:
            rows = s.scalars(
                select(EntryRow)
                .where(EntryRow.gallery == gallery, EntryRow.status == ACTIVE, EntryRow.expires_at > now)
                .order_by(EntryRow.id)
            )
            for row in rows:
                k = len(ids)
                ids.append(row.id)
                labels.append(self.sealer.open_text(row.label_enc, self._aad(row.id, "label")) or "")
                roles.append(row.role)
                thumb: bytes | None = None
                for f in s.scalars(select(FaceRow).where(FaceRow.entry_id == row.id).order_by(FaceRow.id)):
                    aad = self._aad(row.id, f"face:{f.id}")
                    if f.embedding_enc is not None:
                        vec = unpack_embedding(self.sealer.open(f.embedding_enc, aad + ":embedding"))
                        (pos if f.kind == "positive" else neg).append(vec)
                        (owner if f.kind == "positive" else neg_owner).append(k)
                    if thumb is None and f.kind == "positive" and f.image_enc is not None:
                        thumb = self.sealer.open(f.image_enc, aad + ":image")
                thumbs.append(thumb)
        empty = np.zeros((0, EMBEDDING_DIM), np.float32)
        return GallerySnapshot(
            entry_ids=tuple(ids),
            labels=tuple(labels),
            roles=tuple(roles),
            positives=np.stack(pos) if pos else empty,
            owner=np.array(owner, np.int64),
            negatives=np.stack(neg) if neg else empty,
            neg_owner=np.array(neg_owner, np.int64),
            thumbs=tuple(thumbs),
            version=version,
        )

    # hits ------------------------------------------------------------------------------------
    def record_hit(
        self,
        *,
        event_id: str,
        entry_id: str,
        camera_id: str,
        ts: float,
        distance: float,
        shots: int,
        chip_rgb: np.ndarray | None,
        embedding: np.ndarray | None,
    ) -> None:
        """Keep a match for human review: the live face is sealed (it matched; nothing else is kept)."""
        aad = f"watchlist-hit:{event_id}"
        with self.session() as s:
            if s.get(HitRow, event_id) is not None:
                return
            s.add(
                HitRow(
                    id=event_id,
                    entry_id=entry_id,
                    camera_id=camera_id,
                    ts=ts,
                    distance=distance,
                    shots=shots,
                    chip_enc=None
                    if chip_rgb is None
                    else self.sealer.seal(jpeg(chip_rgb[:, :, ::-1]), aad + ":chip"),
                    embedding_enc=None
                    if embedding is None
                    else self.sealer.seal(pack_embedding(embedding), aad + ":embedding"),
                    status="open",
                )
            )
            audit.record(
                s, "system", "watchlist.match", f"event:{event_id}",
                {"entry": entry_id, "camera": camera_id, "distance": round(distance, 3), "shots": shots},
            )  # fmt: skip

    def hits(
        self, *, entry_id: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[HitRow]:
        with self.session() as s:
            q = select(HitRow).order_by(HitRow.ts.desc()).limit(limit)
            if entry_id:
                q = q.where(HitRow.entry_id == entry_id)
            if status:
                q = q.where(HitRow.status == status)
            return list(s.scalars(q))

    def hit_chip(self, hit_id: str, by: str) -> bytes | None:
        with self.session() as s:
            hit = s.get(HitRow, hit_id)
            if hit is None or hit.chip_enc is None:
                return None
            audit.record(s, by, "watchlist.view_hit", f"event:{hit_id}", {"entry": hit.entry_id})
            return self.sealer.open(hit.chip_enc, f"watchlist-hit:{hit_id}:chip")

    def review_hit(self, hit_id: str, by: str, verdict: str) -> None:
        """``confirmed`` or ``not_this_person``. The latter stores the live face as a negative
        example of that entry, so the same lookalike no longer matches it (and says so in the
        audit log); the hit stays in the records as a false match."""
        if verdict not in ("confirmed", "not_this_person"):
            raise WatchlistError("verdict is confirmed or not_this_person")
        with self.session() as s:
            hit = s.get(HitRow, hit_id)
            if hit is None:
                raise WatchlistError(f"no watchlist hit for event '{hit_id}'")
            if hit.status != "open":
                raise WatchlistError(f"this hit was already reviewed ({hit.status})")
            entry = self._entry(s, hit.entry_id)
            hit.status, hit.reviewed_by, hit.reviewed_at = verdict, by, _now()
            if verdict == "not_this_person" and hit.embedding_enc is not None:
                vec = self.sealer.open(hit.embedding_enc, f"watchlist-hit:{hit_id}:embedding")
                row = FaceRow(
                    entry_id=entry.id, kind="negative", quality=0.0, source=f"hit:{hit_id}",
                    created_by=by, created_at=_now(),
                )  # fmt: skip
                s.add(row)
                s.flush()
                row.embedding_enc = self.sealer.seal(
                    vec, self._aad(entry.id, f"face:{row.id}") + ":embedding"
                )
                # The live face was kept only because it matched; it did not, so it goes.
                hit.chip_enc = None
                hit.embedding_enc = None
                entry.updated_at = _now()
            audit.record(s, by, f"watchlist.hit_{verdict}", f"event:{hit_id}", {"entry": hit.entry_id})

    # the person's rights ---------------------------------------------------------------------
    def subject_access(
        self, image_bgr: np.ndarray, by: str, *, threshold: float | None = None
    ) -> list[dict[str, Any]]:
        """What is held about the person in a picture: matching entries (any gallery, any
        state with faces) and their hits. Matching uses the same threshold as live matching."""
        shot = self.face_from_image(image_bgr, name="request photo")
        thr = threshold or self.cfg.match_distance
        found: list[dict[str, Any]] = []
        with self.session() as s:
            for row in s.scalars(select(EntryRow)):
                best = float("inf")
                for f in s.scalars(
                    select(FaceRow).where(FaceRow.entry_id == row.id, FaceRow.kind == "positive")
                ):
                    if f.embedding_enc is None:
                        continue
                    vec = unpack_embedding(
                        self.sealer.open(f.embedding_enc, self._aad(row.id, f"face:{f.id}") + ":embedding")
                    )
                    best = min(best, float(face_distance(shot.embedding[None], vec[None])[0, 0]))
                if best <= thr:
                    v = self._view(s, row)
                    hits = s.scalars(select(HitRow).where(HitRow.entry_id == row.id)).all()
                    found.append(
                        {
                            "entry": v,
                            "distance": best,
                            "hits": [
                                {"event": h.id, "camera": h.camera_id, "ts": h.ts, "status": h.status}
                                for h in hits
                            ],
                        }
                    )
            audit.record(s, by, "watchlist.subject_access", "watchlist:*", {"matches": len(found)})
        return found

    def open_request(
        self, kind: str, subject: str, details: str, by: str, entry_id: str | None = None
    ) -> int:
        """Log a complaint, access or erasure request (the subject's contact details sealed)."""
        if kind not in ("complaint", "access", "erasure"):
            raise WatchlistError("a request is a complaint, access or erasure")
        with self.session() as s:
            row = RequestRow(
                kind=kind,
                subject_enc=b"",
                entry_id=entry_id,
                status="open",
                received_by=by,
                received_at=_now(),
            )
            s.add(row)
            s.flush()
            row.subject_enc = self.sealer.seal(subject.encode("utf-8"), f"watchlist-request:{row.id}:subject")
            row.details_enc = self.sealer.seal_text(details, f"watchlist-request:{row.id}:details")
            audit.record(s, by, "watchlist.request", f"watchlist-request:{row.id}", {"kind": kind})
            return row.id

    def close_request(self, request_id: int, by: str, outcome: str) -> None:
        with self.session() as s:
            row = s.get(RequestRow, request_id)
            if row is None:
                raise WatchlistError(f"no request {request_id}")
            row.status, row.closed_by, row.closed_at = "closed", by, _now()
            row.outcome_enc = self.sealer.seal_text(outcome, f"watchlist-request:{row.id}:outcome")
            audit.record(s, by, "watchlist.request_closed", f"watchlist-request:{row.id}", {"kind": row.kind})

    def requests(self) -> list[dict[str, Any]]:
        with self.session() as s:
            out = []
            for r in s.scalars(select(RequestRow).order_by(RequestRow.received_at.desc())):
                o = self.sealer.open_text
                out.append(
                    {
                        "id": r.id,
                        "kind": r.kind,
                        "subject": o(r.subject_enc, f"watchlist-request:{r.id}:subject"),
                        "details": o(r.details_enc, f"watchlist-request:{r.id}:details"),
                        "entry_id": r.entry_id,
                        "status": r.status,
                        "outcome": o(r.outcome_enc, f"watchlist-request:{r.id}:outcome"),
                        "received_by": r.received_by,
                        "received_at": _aware(r.received_at),
                    }
                )
            return out
