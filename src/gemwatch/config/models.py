"""Typed model of ``gemwatch.yml``: store, cameras, zones, perception, rules, storage.

Every field has a description (it is the configuration reference in the README) and unknown
keys are rejected, so a typo never silently disables a rule.
"""

from __future__ import annotations

import re
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gemwatch.perception.plugins import DetectorConfig, PoseConfig
from gemwatch.perception.plugins.centernet import CenterNetConfig
from gemwatch.types import Severity

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError("must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit")
    return value


class ZoneKind(StrEnum):
    ENTRANCE = "entrance"
    COUNTER = "counter"
    TRAY = "tray"
    CASE = "case"
    SHOWING_AREA = "showing_area"
    VAULT = "vault"
    STAFF_AREA = "staff_area"
    NO_GO = "no_go"


# Dwell before a person counts as loitering, by zone kind. DOMAIN.md: distraction thefts play
# out within about three minutes and casing means lingering without being served, so a minute
# at the door and two at a counter flag a visit well before a typical theft completes.
DEFAULT_DWELL_S: dict[ZoneKind, float] = {ZoneKind.ENTRANCE: 60.0, ZoneKind.COUNTER: 120.0}


class LoiteringParams(_Strict):
    """Loitering: a person's dwell in the zone exceeds ``dwell_s``."""

    enabled: bool = Field(default=True, description="Turn the rule off for this zone.")
    dwell_s: float = Field(gt=0, description="Seconds a person may stay before it is loitering.")
    grace_s: float = Field(
        default=5.0,
        ge=0,
        description="A person may leave the zone or be hidden this long without the dwell timer resetting.",
    )
    severity: Severity = Field(default=Severity.MEDIUM, description="Severity of the event.")


class Zone(_Strict):
    """A polygon in normalised 0..1 image coordinates (survives resolution changes)."""

    id: str = Field(description="Unique within the camera: a-z, 0-9, '_' or '-'.")
    name: str | None = Field(default=None, description="Human name shown in alerts, e.g. 'Counter 2'.")
    kind: ZoneKind = Field(description="What the area is: " + ", ".join(k.value for k in ZoneKind) + ".")
    polygon: list[tuple[float, float]] = Field(
        description="At least 3 [x, y] points, each 0..1 (0,0 = top-left of the picture)."
    )
    loitering: LoiteringParams | None = Field(
        default=None,
        description="Loitering parameters; entrance and counter zones get defaults "
        "(60 s and 120 s) when this is omitted.",
    )

    _id = field_validator("id")(_check_id)

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) < 3:
            raise ValueError(f"a polygon needs at least 3 points, got {len(value)}")
        for i, (x, y) in enumerate(value):
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"point {i} ({x}, {y}) is outside 0..1; coordinates are normalised")
        return value

    @property
    def label(self) -> str:
        return self.name or self.id

    def loitering_params(self) -> LoiteringParams | None:
        """The effective loitering parameters (explicit, else the kind's default, else none)."""
        if self.loitering is not None:
            return self.loitering if self.loitering.enabled else None
        dwell = DEFAULT_DWELL_S.get(self.kind)
        return None if dwell is None else LoiteringParams(dwell_s=dwell)


class Camera(_Strict):
    id: str = Field(description="Unique camera id: a-z, 0-9, '_' or '-'.")
    name: str | None = Field(default=None, description="Human name, e.g. 'Front door'.")
    url: str = Field(
        description="Video: a file path, rtsp://…, http(s)://… (MJPEG/HLS), or a USB device (/dev/video0)."
    )
    detect_url: str | None = Field(
        default=None, description="Optional low-resolution sub-stream used for analysis instead of url."
    )
    record_url: str | None = Field(
        default=None, description="Optional main stream used for clips instead of url."
    )
    fps: float = Field(default=5.0, gt=0, le=60, description="Analysed frames per second.")
    enabled: bool = Field(default=True, description="Set false to keep the camera in config but not run it.")
    zones: list[Zone] = Field(default_factory=list, description="Zones drawn on this camera.")

    _id = field_validator("id")(_check_id)

    @model_validator(mode="after")
    def _unique_zones(self) -> Camera:
        seen: set[str] = set()
        for zone in self.zones:
            if zone.id in seen:
                raise ValueError(f"zone id '{zone.id}' is used twice on camera '{self.id}'")
            seen.add(zone.id)
        return self

    @property
    def label(self) -> str:
        return self.name or self.id


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALL_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeWindow(_Strict):
    """A daily window in the store's timezone; ``end`` before ``start`` crosses midnight."""

    days: list[Weekday] = Field(default_factory=lambda: list(ALL_DAYS), description="Days the window starts on.")
    start: time = Field(description="Local start time, HH:MM.")
    end: time = Field(description="Local end time, HH:MM (before start = next day).")


class PresenceRule(_Strict):
    """Any person in the given zones (or zone kinds), optionally only during time windows."""

    id: str = Field(description="Rule id, used as the event type suffix and in routing.")
    zones: list[str] = Field(default_factory=list, description="Zone ids (any camera).")
    zone_kinds: list[ZoneKind] = Field(default_factory=list, description="Zone kinds, e.g. [vault].")
    whole_frame: bool = Field(default=False, description="Anywhere in the picture (e.g. after hours).")
    windows: list[TimeWindow] = Field(
        default_factory=list, description="Only during these local windows; empty = always."
    )
    min_s: float = Field(default=1.0, ge=0, description="Seconds of presence before an event.")
    grace_s: float = Field(default=5.0, ge=0, description="Absence shorter than this keeps the event open.")
    severity: Severity = Field(default=Severity.HIGH, description="Severity of the event.")

    _id = field_validator("id")(_check_id)

    @model_validator(mode="after")
    def _has_target(self) -> PresenceRule:
        if not (self.zones or self.zone_kinds or self.whole_frame):
            raise ValueError("give zones, zone_kinds or whole_frame: true")
        return self


class Rules(_Strict):
    presence: list[PresenceRule] = Field(default_factory=list, description="Presence rules.")


class Store(_Strict):
    name: str = Field(default="My store", description="Shown in alerts and reports.")
    timezone: str = Field(default="UTC", description="IANA timezone, e.g. Europe/London.")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone '{value}' (use an IANA name such as Europe/London)") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Motion(_Strict):
    """The cheap gate in front of the person detector (Frigate-style)."""

    enabled: bool = Field(default=True, description="Off = run the detector on every analysed frame.")
    width: int = Field(default=160, ge=32, le=640, description="Width of the grey frame motion runs on.")
    pixel_delta: int = Field(default=18, ge=1, le=255, description="Grey-level change that counts as motion.")
    min_area: float = Field(
        default=0.002, ge=0, le=1, description="Fraction of changed pixels that counts as motion."
    )
    refresh_s: float = Field(
        default=3.0, gt=0, description="Run the detector at least this often even without motion."
    )


class Tracker(_Strict):
    lost_after_s: float = Field(
        default=2.0, ge=0, description="A track survives this long without a detection (occlusion)."
    )
    min_confirm_s: float = Field(
        default=0.0, ge=0, description="A track must be seen this long before it is reported."
    )
    match_threshold: float = Field(default=0.8, gt=0, le=1, description="ByteTrack matching threshold.")


class Perception(_Strict):
    detector: DetectorConfig = Field(
        default_factory=lambda: CenterNetConfig(type="centernet"),
        description="Person/object detector plugin (by type).",
    )
    pose: PoseConfig | None = Field(
        default=None, description="Pose plugin for wrists/hands; off unless configured."
    )
    pose_zone_kinds: list[ZoneKind] = Field(
        default_factory=lambda: [ZoneKind.COUNTER, ZoneKind.VAULT, ZoneKind.ENTRANCE],
        description="Pose runs only on people inside zones of these kinds.",
    )
    motion: Motion = Field(default_factory=Motion, description="Motion gate.")
    tracker: Tracker = Field(default_factory=Tracker, description="Multi-object tracker.")


class Recorder(_Strict):
    pre_roll_s: float = Field(default=5.0, ge=0, le=60, description="Seconds of video kept before an event.")
    post_roll_s: float = Field(default=5.0, ge=0, le=120, description="Seconds recorded after an event.")
    max_clip_s: float = Field(default=120.0, gt=0, description="Longest clip for a long-running event.")


class Retention(_Strict):
    max_age_days: float = Field(
        default=30.0,
        gt=0,
        description="Clips and snapshots older than this are deleted (insurers ask for at least 4 weeks).",
    )
    max_gb: float = Field(default=50.0, gt=0, description="Oldest clips go first above this size.")


class Storage(_Strict):
    data_dir: Path = Field(
        default=Path("gemwatch-data"), description="Clips, snapshots and the SQLite database live here."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite in data_dir. e.g. postgresql+psycopg://host/db.",
    )

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'gemwatch.db').as_posix()}"


class Web(_Strict):
    """The web console started by ``gemwatch run``."""

    enabled: bool = Field(default=True, description="Serve the web console from gemwatch run.")
    host: str = Field(
        default="127.0.0.1",
        description="Address to bind; 0.0.0.0 serves the whole store network (use TLS then).",
    )
    port: int = Field(default=7480, ge=1, le=65535, description="TCP port of the web console.")
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate; serve HTTPS when set together with tls_key."
    )
    tls_key: Path | None = Field(default=None, description="PEM private key for tls_cert.")
    session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="A login lasts this long (one shift by default)."
    )
    live_fps: float = Field(
        default=4.0, gt=0, le=15, description="Most live-view pictures per second a watched camera writes."
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> Web:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both tls_cert and tls_key, or neither")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


class GemwatchConfig(_Strict):
    """The whole ``gemwatch.yml``."""

    version: Literal[1] = Field(default=1, description="Config format version.")
    store: Store = Field(default_factory=Store, description="The store.")
    cameras: list[Camera] = Field(default_factory=list, description="Cameras.")
    perception: Perception = Field(default_factory=Perception, description="Models and tracking.")
    rules: Rules = Field(default_factory=Rules, description="Rules beyond per-zone loitering.")
    recorder: Recorder = Field(default_factory=Recorder, description="Clips.")
    retention: Retention = Field(default_factory=Retention, description="How long evidence is kept.")
    storage: Storage = Field(default_factory=Storage, description="Where things are stored.")
    web: Web = Field(default_factory=Web, description="The web console.")

    @model_validator(mode="after")
    def _unique_cameras(self) -> GemwatchConfig:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.id in seen:
                raise ValueError(f"camera id '{cam.id}' is used twice")
            seen.add(cam.id)
        zone_ids = {z.id for cam in self.cameras for z in cam.zones}
        for rule in self.rules.presence:
            missing = [z for z in rule.zones if z not in zone_ids]
            if missing:
                raise ValueError(f"presence rule '{rule.id}' names unknown zone(s): {', '.join(missing)}")
        return self

    def camera(self, camera_id: str) -> Camera:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise KeyError(camera_id)

