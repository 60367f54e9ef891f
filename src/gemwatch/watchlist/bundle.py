"""Signed, encrypted watchlist bundles: how one store's entries reach another (file or MQTT).

A bundle is the *whole* current list of one origin store (its active entries and the ids it
revoked), so importing it is idempotent and a revocation propagates by absence and by name.
Format v1 (JSON, documented in docs/watchlist.md)::

    {"v": 1, "kind": "gemwatch.watchlist.bundle", "origin": "shop-a", "seq": 1767000000123,
     "created": "2026-…Z", "policy": "face_matching", "enc": "A256GCM",
     "nonce": "<b64>", "payload": "<b64 ciphertext>", "sig": "<b64 Ed25519>"}

``sig`` signs the canonical JSON of every other field (sorted keys, no spaces) with the
origin's Ed25519 key; the receiver checks it with the key *it* holds for that origin (its
trust list), never one carried in the bundle. The payload is encrypted with the chain's
share key (AES-256-GCM, associated data ``origin|seq``). ``seq`` only grows per origin, so an
old bundle replayed later is refused.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gemwatch.watchlist.config import Policy
from gemwatch.watchlist.crypto import SHARE_KEY_ENV, b64, load_or_create_key, unb64, verify_signature
from gemwatch.watchlist.gallery import (
    ACTIVE,
    EntryRow,
    FaceRow,
    HitRow,
    Watchlist,
    WatchlistError,
    default_secrets_dir,
    pack_embedding,
    unpack_embedding,
)
from gemwatch.watchlist.schema import RevocationRow, SyncStateRow
from gemwatch.web import audit

VERSION = 1
KIND = "gemwatch.watchlist.bundle"


class BundleRejected(WatchlistError):
    """A bundle that must not be believed: untrusted origin, bad signature, tampering, replay."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    origin: str
    seq: int
    added: int
    updated: int
    removed: int
    stale: bool = False

    def describe(self) -> str:
        if self.stale:
            return f"bundle from '{self.origin}' (seq {self.seq}) is not newer than the last one: ignored"
        return (
            f"bundle from '{self.origin}' (seq {self.seq}): {self.added} added, "
            f"{self.updated} updated, {self.removed} removed"
        )


def canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def share_key(wl: Watchlist) -> bytes:
    path = wl.cfg.share_key_file or default_secrets_dir(wl.data_dir) / "watchlist-share.key"
    return load_or_create_key(path, SHARE_KEY_ENV)


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _payload(wl: Watchlist) -> dict[str, Any]:
    """This store's own active entries (decrypted for the bundle) and its revocations."""
    own = wl.cfg.store_id
    biometrics = wl.cfg.policy == Policy.FACE_MATCHING
    entries = []
    now = datetime.now(UTC)
    with wl.session() as s:
        rows = s.scalars(select(EntryRow).where(EntryRow.origin == own, EntryRow.status == ACTIVE))
        for row in rows:
            v = wl._view(s, row)
            if v.expires_at <= now:
                continue
            faces = []
            for f in s.scalars(select(FaceRow).where(FaceRow.entry_id == row.id).order_by(FaceRow.id)):
                aad = wl._aad(row.id, f"face:{f.id}")
                emb = (
                    b64(wl.sealer.open(f.embedding_enc, aad + ":embedding"))
                    if biometrics and f.embedding_enc is not None
                    else None
                )
                img = b64(wl.sealer.open(f.image_enc, aad + ":image")) if f.image_enc is not None else None
                faces.append(
                    {"kind": f.kind, "quality": f.quality, "source": f.source, "embedding": emb, "image": img}
                )
            entries.append(
                {
                    "id": v.id,
                    "gallery": v.gallery,
                    "role": v.role,
                    "label": v.label,
                    "reason": v.reason,
                    "evidence": v.evidence,
                    "description": v.description,
                    "created_by": v.created_by,
                    "created_at": _iso(v.created_at),
                    "approved_by": v.approved_by,
                    "approved_at": _iso(v.approved_at),
                    "expires_at": _iso(v.expires_at),
                    "seq": v.seq,
                    "faces": faces,
                }
            )
        revoked = [r.entry_id for r in s.scalars(select(RevocationRow).where(RevocationRow.origin == own))]
    return {"entries": entries, "revoked": revoked}


def export_bundle(wl: Watchlist, by: str = "system") -> str:
    """This store's list as a signed, encrypted bundle (JSON text). Audited as an export."""
    if wl.cfg.policy == Policy.OFF:
        raise WatchlistError("the watchlist is switched off here (watchlist.policy: off)")
    payload = _payload(wl)
    seq = time.time_ns() // 1_000_000
    origin = wl.cfg.store_id
    nonce = secrets.token_bytes(12)
    data = AESGCM(share_key(wl)).encrypt(nonce, canonical(payload), f"{origin}|{seq}".encode())
    fields: dict[str, Any] = {
        "v": VERSION,
        "kind": KIND,
        "origin": origin,
        "seq": seq,
        "created": datetime.now(UTC).isoformat(),
        "policy": wl.cfg.policy.value,
        "enc": "A256GCM",
        "nonce": b64(nonce),
        "payload": b64(data),
    }
    fields["sig"] = b64(wl.signing_key.sign(canonical(fields)))
    audit.record(
        wl.engine, by, "watchlist.export", f"watchlist-bundle:{origin}:{seq}",
        {"entries": len(payload["entries"]), "revoked": len(payload["revoked"])},
    )  # fmt: skip
    return json.dumps(fields)


def verify_bundle(text: str | bytes, trusted: dict[str, str]) -> dict[str, Any]:
    """The bundle's fields once its origin is trusted and its signature checks; else BundleRejected."""
    try:
        fields = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise BundleRejected("not a watchlist bundle (invalid JSON)") from None
    if not isinstance(fields, dict) or fields.get("kind") != KIND:
        raise BundleRejected("not a watchlist bundle")
    if fields.get("v") != VERSION:
        raise BundleRejected(
            f"bundle version {fields.get('v')!r} is not supported (this node reads v{VERSION})"
        )
    origin = str(fields.get("origin", ""))
    if origin not in trusted:
        raise BundleRejected(
            f"bundle from untrusted store '{origin}' rejected (not in watchlist.trusted_stores)"
        )
    sig = fields.pop("sig", None)
    try:
        signature = unb64(str(sig))
    except ValueError:
        raise BundleRejected(f"bundle from '{origin}' has no valid signature") from None
    if not verify_signature(trusted[origin], signature, canonical(fields)):
        raise BundleRejected(
            f"bundle claiming to be from '{origin}' failed its signature check (tampered, or signed by another key)"
        )
    return fields


def import_bundle(wl: Watchlist, text: str | bytes, by: str = "sync") -> ImportResult:
    """Check and apply another store's bundle: its entries replace what this node held from it.

    Refuses (``BundleRejected``, audited) an untrusted origin, a bad signature, a payload that
    does not decrypt; ignores one not newer than the last accepted from that origin.
    """
    trusted = {t.id: t.public_key for t in wl.cfg.trusted_stores}
    try:
        fields = verify_bundle(text, trusted)
        origin, seq = str(fields["origin"]), int(fields["seq"])
        if origin == wl.cfg.store_id:
            raise BundleRejected(f"bundle from '{origin}' is this store's own")
        if wl.cfg.policy == Policy.OFF:
            raise BundleRejected("the watchlist is switched off here (watchlist.policy: off)")
        try:
            raw = AESGCM(share_key(wl)).decrypt(
                unb64(fields["nonce"]), unb64(fields["payload"]), f"{origin}|{seq}".encode()
            )
        except (InvalidTag, ValueError, KeyError):
            raise BundleRejected(
                f"bundle from '{origin}' does not decrypt with this node's share key (tampered or another chain)"
            ) from None
        payload = json.loads(raw)
    except BundleRejected as exc:
        audit.record(
            wl.engine, by, "watchlist.import_rejected", "watchlist-bundle", {"reason": str(exc)[:250]}
        )
        raise
    # No change listener here: re-publishing on import would echo bundles between stores.
    return _apply(wl, origin, seq, payload, by)


def _apply(wl: Watchlist, origin: str, seq: int, payload: dict[str, Any], by: str) -> ImportResult:
    keep_biometrics = wl.cfg.policy == Policy.FACE_MATCHING
    now = datetime.now(UTC)
    added = updated = removed = 0
    with wl.session() as s:
        state = s.get(SyncStateRow, origin)
        if state is not None and seq <= state.seq:
            return ImportResult(origin, seq, 0, 0, 0, stale=True)
        revoked = {str(r) for r in payload.get("revoked", [])}
        known_revoked = set(s.scalars(select(RevocationRow.entry_id)))
        incoming = {
            str(e["id"]): e for e in payload.get("entries", []) if str(e["id"]) not in revoked | known_revoked
        }
        held = {r.id: r for r in s.scalars(select(EntryRow).where(EntryRow.origin == origin))}
        for entry_id, old in held.items():
            if entry_id not in incoming:
                _drop(s, old)
                removed += 1
        for entry_id in revoked:
            if s.get(RevocationRow, entry_id) is None:
                s.add(RevocationRow(entry_id=entry_id, origin=origin, revoked_at=now))
        for entry_id, e in incoming.items():
            row = held.get(entry_id)
            if row is not None and row.seq == int(e.get("seq", 0)):
                continue
            if row is None:
                row = EntryRow(id=entry_id, origin=origin, created_at=_dt(e.get("created_at")) or now)
                s.add(row)
                added += 1
            else:
                s.execute(delete(FaceRow).where(FaceRow.entry_id == entry_id))
                updated += 1
            _fill(wl, s, row, e, now, keep_biometrics)
        state = state or SyncStateRow(origin=origin, seq=seq, received_at=now)
        state.seq, state.received_at = seq, now
        s.merge(state)
        audit.record(
            s, by, "watchlist.import", f"watchlist-bundle:{origin}:{seq}",
            {"added": added, "updated": updated, "removed": removed},
        )  # fmt: skip
    return ImportResult(origin, seq, added, updated, removed)


def _drop(s: Session, row: EntryRow) -> None:
    s.execute(delete(FaceRow).where(FaceRow.entry_id == row.id))
    s.execute(delete(HitRow).where(HitRow.entry_id == row.id))
    s.delete(row)


def _fill(
    wl: Watchlist, s: Session, row: EntryRow, e: dict[str, Any], now: datetime, biometrics: bool
) -> None:
    seal = wl.sealer.seal_text
    rid = row.id
    row.gallery = str(e.get("gallery", "offender"))
    row.role = e.get("role")
    row.status = ACTIVE
    row.label_enc = wl.sealer.seal(str(e.get("label", "")).encode("utf-8"), wl._aad(rid, "label"))
    row.reason_enc = seal(e.get("reason"), wl._aad(rid, "reason"))
    row.evidence_enc = seal(e.get("evidence"), wl._aad(rid, "evidence"))
    row.description_enc = seal(e.get("description"), wl._aad(rid, "description"))
    row.created_by = str(e.get("created_by", "?"))[:64]
    row.approved_by = (str(e["approved_by"]) if e.get("approved_by") else None) or None
    row.approved_at = _dt(e.get("approved_at"))
    row.expires_at = _dt(e.get("expires_at")) or now
    row.updated_at = now
    row.seq = int(e.get("seq", 1))
    s.flush()
    for f in e.get("faces", []):
        face = FaceRow(
            entry_id=rid,
            kind=str(f.get("kind", "positive")),
            quality=float(f.get("quality", 0.0)),
            source=f"{row.origin}:{f.get('source', '')}"[:128],
            created_by=row.created_by,
            created_at=now,
        )
        s.add(face)
        s.flush()
        aad = wl._aad(rid, f"face:{face.id}")
        if f.get("image"):
            face.image_enc = wl.sealer.seal(unb64(f["image"]), aad + ":image")
        if biometrics and f.get("embedding"):
            vec = unpack_embedding(unb64(f["embedding"]))
            face.embedding_enc = wl.sealer.seal(pack_embedding(vec), aad + ":embedding")
