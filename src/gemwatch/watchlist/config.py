"""The ``watchlist:`` section of ``gemwatch.yml``: policy and jurisdiction, thresholds, keys,
trust list and HQ sync. Kept apart from ``config.models`` (which only adds the field) so the
legal switches sit next to each other and read as one policy.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Policy(StrEnum):
    """What the watchlist may do at this deployment."""

    OFF = "off"  # nothing: no faces are looked at, no entries are shared
    DESCRIPTION_ONLY = "description_only"  # descriptions and incident pictures are shared; no biometrics
    FACE_MATCHING = "face_matching"  # live face matching against approved entries


class Jurisdiction(StrEnum):
    """Where the store is; each has a default policy and limits (see ``watchlist.policy``)."""

    UK = "uk"
    EU = "eu"
    US_IL = "us-il"
    US_TX = "us-tx"
    US_NYC = "us-nyc"
    US_PORTLAND = "us-portland"
    OTHER = "other"


class TrustedStore(_Strict):
    """Another store (or HQ) whose signed watchlist entries this node accepts."""

    id: str = Field(description="The store's id as it signs bundles (its watchlist.store_id).")
    public_key: str = Field(description="Its Ed25519 public key, base64 (`gemwatch watchlist keys`).")
    name: str | None = Field(default=None, description="Human name, shown in the console.")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be 1-64 characters of a-z, 0-9, '_' or '-'")
        return value


class WatchlistSync(_Strict):
    """Live sharing through HQ over the MQTT broker (topics in docs/watchlist.md)."""

    role: Literal["store", "hq"] = Field(
        default="store", description="store: publish and receive; hq: relay."
    )
    host: str = Field(default="127.0.0.1", description="Broker host.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port.")
    username: str | None = Field(default=None, description="Broker user name.")
    password_env: str | None = Field(default=None, description="Environment variable holding the password.")
    tls: bool = Field(default=False, description="Connect with TLS.")
    base_topic: str = Field(default="gemwatch", description="Topic root (the same as alerts.mqtt's).")


class WatchlistConfig(_Strict):
    """Known-offender watchlist and staff faces. Off unless a policy says otherwise."""

    policy: Policy = Field(
        default=Policy.OFF,
        description="off, description_only (share descriptions and incident pictures, no face "
        "matching) or face_matching (needs dpia_reference, and legal_basis where the law asks consent).",
    )
    jurisdiction: Jurisdiction = Field(
        default=Jurisdiction.OTHER,
        description="uk, eu, us-il, us-tx, us-nyc, us-portland or other: sets limits (us-portland "
        "forbids face matching; eu, us-il and us-tx need a recorded legal_basis such as written consent).",
    )
    dpia_reference: str | None = Field(
        default=None,
        description="Reference of the data-protection impact assessment (needed for face_matching).",
    )
    legal_basis: str | None = Field(
        default=None, description="The lawful basis / consent record relied on (needed in eu, us-il, us-tx)."
    )
    signage_text: str = Field(
        default="Facial recognition is in use in this store to prevent crime. "
        "Ask staff for our privacy notice and how to make a request.",
        description="Text shown in the console for the sign at the entrance (NYC requires a sign).",
    )
    store_id: str = Field(default="store", description="This store's id when it signs and shares entries.")
    cameras: list[str] = Field(
        default_factory=list, description="Cameras that look for faces; empty = every camera."
    )
    match_distance: float = Field(
        default=0.6,
        gt=0,
        lt=2,
        description="A face matches an entry at this embedding distance or less (calibrated by "
        "eval/faces.py: no impostor pair of the reference set is that close).",
    )
    min_shots: int = Field(
        default=2, ge=2, le=10, description="Matching face shots (different frames) a track needs for a hit."
    )
    min_shot_gap_s: float = Field(default=0.2, ge=0, description="Shots closer in time than this count once.")
    appearance_gap_s: float = Field(
        default=2.0,
        ge=0,
        description="A person unseen this long has left: a later sighting is a new appearance (a new hit).",
    )
    face_interval_s: float = Field(
        default=0.3, gt=0, description="At most one face look per track this often (never every frame)."
    )
    face_attempts: int = Field(default=12, ge=1, description="Face looks per track before it slows down.")
    face_retry_s: float = Field(default=3.0, gt=0, description="After the budget, look again this often.")
    live_min_face_px: float = Field(default=32.0, ge=8, description="Live: smallest usable face width.")
    live_max_yaw: float = Field(
        default=1.0, gt=0, description="Live: most head turn (nose offset in eye widths)."
    )
    live_min_sharpness: float = Field(
        default=8.0, ge=0, description="Live: least sharpness of the face chip."
    )
    enroll_min_face_px: float = Field(default=60.0, ge=8, description="Enrollment: smallest face width.")
    enroll_max_yaw: float = Field(default=0.35, gt=0, description="Enrollment: most head turn.")
    enroll_min_sharpness: float = Field(default=20.0, ge=0, description="Enrollment: least sharpness.")
    expiry_days: int = Field(
        default=365, ge=1, le=3 * 365, description="Entries expire after this unless renewed."
    )
    key_file: Path | None = Field(
        default=None,
        description="AES key for the watchlist at rest (outside the database); default "
        "<data_dir>/secrets/watchlist.key, or $GEMWATCH_WATCHLIST_KEY (base64).",
    )
    signing_key_file: Path | None = Field(
        default=None,
        description="This store's Ed25519 key; default <data_dir>/secrets/watchlist-signing.key.",
    )
    share_key_file: Path | None = Field(
        default=None,
        description="The chain's bundle key (the same file at every store); default "
        "<data_dir>/secrets/watchlist-share.key, or $GEMWATCH_WATCHLIST_SHARE_KEY (base64).",
    )
    trusted_stores: list[TrustedStore] = Field(
        default_factory=list, description="Stores whose signed entries are accepted (HQ included)."
    )
    sync: WatchlistSync | None = Field(default=None, description="Live sharing through HQ over MQTT.")
    record_clips: bool = Field(
        default=False,
        description="Record a clip of each hit. Off by default: a clip shows everyone in view, while "
        "the snapshot shows only the matched face (others blurred) beside the enrolled one.",
    )
    staff_roles: bool = Field(
        default=True, description="Tracks matched to the staff gallery get the staff/guard role."
    )

    @field_validator("store_id")
    @classmethod
    def _store_id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be 1-64 characters of a-z, 0-9, '_' or '-'")
        return value

    @model_validator(mode="after")
    def _lawful(self) -> WatchlistConfig:
        if self.policy == Policy.FACE_MATCHING:
            if self.jurisdiction == Jurisdiction.US_PORTLAND:
                raise ValueError("face_matching is banned in private places open to the public in Portland")
            if not self.dpia_reference:
                raise ValueError("face_matching needs dpia_reference (the impact assessment done first)")
            needs_basis = {Jurisdiction.EU, Jurisdiction.US_IL, Jurisdiction.US_TX}
            if self.jurisdiction in needs_basis and not self.legal_basis:
                raise ValueError(
                    f"face_matching in {self.jurisdiction.value} needs legal_basis (e.g. the written "
                    "consent record); otherwise use description_only"
                )
        if self.jurisdiction == Jurisdiction.US_TX and self.expiry_days > 365:
            raise ValueError(
                "Texas requires biometric identifiers to be destroyed within a year: expiry_days ≤ 365"
            )
        ids = [t.id for t in self.trusted_stores]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"trusted store id(s) listed twice: {', '.join(dup)}")
        return self

    @property
    def matching(self) -> bool:
        return self.policy == Policy.FACE_MATCHING

    @property
    def sharing(self) -> bool:
        return self.policy != Policy.OFF
