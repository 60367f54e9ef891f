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

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gemwatch.config.counter import (
    CaseParams,
    CounterProtocol,
    Roles,
    ShowingAreaParams,
    TrayParams,
    ZoneAnalysis,
)
from gemwatch.config.pictures import check_picture
from gemwatch.perception.plugins import DetectorConfig, PoseConfig
from gemwatch.perception.plugins.multipose_nanodet import MultiPoseNanoDetConfig
from gemwatch.rules.geometry import polygon_area
from gemwatch.types import Severity
from gemwatch.watchlist.config import WatchlistConfig

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

# The smallest zone, as a share of the picture: a hundredth of a per cent (a 10x10-pixel
# square in a 1000x1000 view). Points on one line enclose nothing and would watch nothing.
MIN_POLYGON_AREA = 1e-4

# Which zone kind each counter parameter section belongs to.
_PARAMS_KIND: dict[str, ZoneKind] = {
    "tray": ZoneKind.TRAY,
    "case": ZoneKind.CASE,
    "showing": ZoneKind.SHOWING_AREA,
    "protocol": ZoneKind.COUNTER,
}


class LoiteringParams(_Strict):
    """Loitering: a person's dwell in the zone exceeds ``dwell_s``."""

    enabled: bool = Field(default=True, description="Turn the rule off for this zone.")
    dwell_s: float = Field(gt=0, description="Seconds a person may stay before it is loitering.")
    grace_s: float = Field(
        default=5.0,
        ge=0,
        description="A person may leave the zone or be hidden this long without the dwell timer resetting.",
    )
    ignore_staff: bool = Field(
        default=True, description="Staff and guards (perception.roles) never loiter: they work there."
    )
    unserved_only: bool = Field(
        default=True,
        description="Counter zones: only time without staff within reach counts toward dwell_s (a "
        "customer being served is not loitering; the clock pauses while served). False: any stay counts.",
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
    counter: str | None = Field(
        default=None,
        description="The counter this zone belongs to; zones sharing it (customer side, staff_area, "
        "showing_area, trays, cases) form one counter. Omitted: all such zones of the camera form one.",
    )
    reference_image: Path | None = Field(
        default=None,
        description="A picture of this camera's view with the zone at rest (tray full, pad clear, case "
        "closed), e.g. the console's /api/v1/cameras/<camera>/frame.jpg; without it the resting state is learned when first seen clear. "
        "A relative path is read from the config file's folder; a missing or unreadable file is a config error.",
    )
    tray: TrayParams | None = Field(default=None, description="Tray zones: counting and removal thresholds.")
    case: CaseParams | None = Field(default=None, description="Case zones: open/closed and time limits.")
    showing: ShowingAreaParams | None = Field(
        default=None, description="Showing-area zones: boundary band and obstruction thresholds."
    )
    protocol: CounterProtocol | None = Field(
        default=None, description="Counter zones (customer side): showing sessions and protocol thresholds."
    )

    _id = field_validator("id")(_check_id)

    @field_validator("reference_image")
    @classmethod
    def _reference_image(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return check_picture(value, "reference_image", info.context)

    @field_validator("tray", "case", "showing", "protocol")
    @classmethod
    def _params_match_kind(cls, value: object, info: ValidationInfo) -> object:
        """Each section on its own key (and line), so a zone with two misplaced ones hears of both."""
        kind = info.data.get("kind")
        wanted = _PARAMS_KIND[str(info.field_name)]
        if value is not None and kind is not None and kind != wanted:
            raise ValueError(
                f"'{info.field_name}' parameters apply to {wanted.value} zones, not {kind.value}"
            )
        return value

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) < 3:
            raise ValueError(f"a polygon needs at least 3 points, got {len(value)}")
        for i, (x, y) in enumerate(value):
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"point {i} ({x}, {y}) is outside 0..1; coordinates are normalised")
        area = polygon_area(value)
        if area < MIN_POLYGON_AREA:
            raise ValueError(
                f"encloses {area:.2g} of the picture (points on one line, or repeated); "
                f"a zone needs at least {MIN_POLYGON_AREA:g}"
            )
        return value

    @property
    def label(self) -> str:
        return self.name or self.id

    def tray_params(self) -> TrayParams:
        return self.tray or TrayParams()

    def case_params(self) -> CaseParams:
        return self.case or CaseParams()

    def showing_params(self) -> ShowingAreaParams:
        return self.showing or ShowingAreaParams()

    def protocol_params(self) -> CounterProtocol:
        return self.protocol or CounterProtocol()

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
    stabilise: bool = Field(
        default=False,
        description="Follow the scene when the camera moves (bumped, hand-held): zones stay on what "
        "they were drawn on, as seen in the first analysed frame. Costs a few ms per zone pass.",
    )
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

    days: list[Weekday] = Field(
        default_factory=lambda: list(ALL_DAYS), description="Days the window starts on."
    )
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
    """ByteTrack plus confirmation over time. Measured on hand-labelled real frames
    (eval/people.py): a track is reported only once it is credible — one strong detection, or
    it moved (a bollard, a sign or a mannequin never does) with a fair mean score."""

    lost_after_s: float = Field(
        default=2.0, ge=0, description="A track survives this long without a detection (occlusion)."
    )
    min_confirm_s: float = Field(
        default=0.0, ge=0, description="A track must be seen this long before it is reported."
    )
    new_track_min_score: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="A detection needs this score to start a new track; weaker ones only continue "
        "existing tracks (ByteTrack's second stage).",
    )
    confirm_score: float = Field(
        default=0.2, ge=0, le=1, description="One detection this strong confirms a track."
    )
    confirm_motion: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="...or the track's box once held this fraction of moving pixels (motion gate) "
        "and its mean score is at least confirm_mean_score.",
    )
    confirm_mean_score: float = Field(default=0.1, ge=0, le=1, description="See confirm_motion.")
    contained_ioa: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description="A weaker box lying this much inside a stronger one is the same person (dropped).",
    )


class Perception(_Strict):
    detector: DetectorConfig = Field(
        default_factory=lambda: MultiPoseNanoDetConfig(type="multipose_nanodet"),
        description="Person/object detector plugin (by type).",
    )
    pose: PoseConfig | None = Field(
        default=None, description="Pose plugin for wrists/hands; off unless configured."
    )
    pose_zone_kinds: list[ZoneKind] = Field(
        default_factory=lambda: [ZoneKind.COUNTER, ZoneKind.STAFF_AREA, ZoneKind.VAULT, ZoneKind.ENTRANCE],
        description="Pose runs only on people inside zones of these kinds (staff_area: whether an "
        "associate has turned their back on the customer).",
    )
    motion: Motion = Field(default_factory=Motion, description="Motion gate.")
    tracker: Tracker = Field(default_factory=Tracker, description="Multi-object tracker.")
    roles: Roles = Field(default_factory=Roles, description="Staff versus customer.")
    zones: ZoneAnalysis = Field(
        default_factory=ZoneAnalysis, description="Appearance of tray, case and showing-area zones."
    )


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


class AlertSchedule(StrEnum):
    ALWAYS = "always"
    OPEN = "open"
    CLOSED = "closed"


class WebhookTarget(_Strict):
    """A plain HTTP(S) endpoint that receives each alert as JSON, HMAC-signed."""

    url: str = Field(description="Endpoint that receives a POST per alert stage.")
    secret_env: str | None = Field(default=None, description="Environment variable holding the HMAC secret.")
    secret_file: Path | None = Field(default=None, description="File holding the HMAC secret.")
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="Seconds before a send counts as failed.")


class AlertRecipient(_Strict):
    """Someone (or something) alerts go to; one delivery per channel target, tracked separately."""

    id: str = Field(description="Recipient id used by routes, escalations and actions.")
    name: str | None = Field(default=None, description="Human name, shown in the audit log.")
    apprise: list[str] = Field(
        default_factory=list,
        description="Apprise URLs (ntfy://, pover://, tgram://, mailto://, json://, …), one delivery each.",
    )
    webhooks: list[WebhookTarget] = Field(default_factory=list, description="Signed JSON webhooks.")
    mqtt: bool = Field(default=False, description="Publish to the MQTT broker (Home Assistant sees it).")

    _id = field_validator("id")(_check_id)

    @model_validator(mode="after")
    def _has_channel(self) -> AlertRecipient:
        if not (self.apprise or self.webhooks or self.mqtt):
            raise ValueError(f"recipient '{self.id}' has no channel: give apprise, webhooks or mqtt: true")
        return self

    @property
    def label(self) -> str:
        return self.name or self.id


class EscalationStep(_Strict):
    after_s: float = Field(gt=0, description="Seconds without acknowledgement after the previous step.")
    recipients: list[str] = Field(min_length=1, description="Recipient ids alerted at this step.")


class AlertRoute(_Strict):
    """Which events go to whom, when; one incident is one alert (updated), not a storm."""

    id: str = Field(description="Route id.")
    event_types: list[str] = Field(
        default_factory=lambda: ["*"], description="Event types, shell patterns (loitering, presence.*)."
    )
    min_severity: Severity = Field(
        default=Severity.LOW,
        description="Lowest severity routed. Info events (showing sessions, pieces placed, case "
        "openings) are records, not alarms: only a route that sets info gets them.",
    )
    cameras: list[str] = Field(default_factory=list, description="Only these cameras; empty = all.")
    zones: list[str] = Field(default_factory=list, description="Only these zones; empty = all.")
    schedule: AlertSchedule = Field(
        default=AlertSchedule.ALWAYS,
        description="always, open (during alerts.store_hours) or closed (outside them).",
    )
    recipients: list[str] = Field(min_length=1, description="Recipient ids alerted first.")
    cooldown_s: float = Field(
        default=60.0, ge=0, description="A new event of the same type/camera/zone within this is folded in."
    )
    escalation: list[EscalationStep] = Field(
        default_factory=list, description="Next recipient lists while nobody acknowledges."
    )
    actions: list[str] = Field(default_factory=list, description="One-tap action ids offered in the alert.")
    sound: bool = Field(default=False, description="Let push channels sound (alerts are silent by default).")

    _id = field_validator("id")(_check_id)


class MqttCommand(_Strict):
    topic: str = Field(description="Topic the command is published to, e.g. store/doors/set.")
    payload: str = Field(description="Payload, e.g. LOCK.")
    qos: int = Field(default=1, ge=0, le=2, description="MQTT QoS.")
    retain: bool = Field(default=False, description="Retain the command on the broker.")


class AlertAction(_Strict):
    """A one-tap response that does not alert the suspect (lock doors, switch a relay, call security)."""

    id: str = Field(description="Action id.")
    label: str = Field(description="Button text, e.g. 'Lock the doors'.")
    mqtt: MqttCommand | None = Field(default=None, description="MQTT command to publish.")
    notify: list[str] = Field(default_factory=list, description="Recipient ids told that it was asked for.")
    allowed: list[str] = Field(min_length=1, description="Recipient ids who may use it.")

    _id = field_validator("id")(_check_id)

    @model_validator(mode="after")
    def _does_something(self) -> AlertAction:
        if self.mqtt is None and not self.notify:
            raise ValueError(f"action '{self.id}' does nothing: give mqtt or notify")
        return self


class MqttBroker(_Strict):
    host: str = Field(default="127.0.0.1", description="Broker host.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port.")
    username: str | None = Field(default=None, description="User name.")
    password_env: str | None = Field(default=None, description="Environment variable holding the password.")
    tls: bool = Field(default=False, description="Connect with TLS.")
    node_id: str = Field(default="node", description="This node's id in topics (one per store box).")
    base_topic: str = Field(default="gemwatch", description="Topic root (see docs/mqtt.md).")
    discovery: bool = Field(default=True, description="Announce cameras to Home Assistant.")
    discovery_prefix: str = Field(default="homeassistant", description="Home Assistant discovery prefix.")

    _node = field_validator("node_id")(_check_id)


class Alerts(_Strict):
    """Routing, channels, links and retries of alerts (see docs/alerts.md)."""

    public_url: str | None = Field(
        default=None, description="Base URL of the console for links in alerts; no links without it."
    )
    link_secret_env: str = Field(
        default="GEMWATCH_LINK_SECRET", description="Environment variable holding the link-signing secret."
    )
    link_secret_file: Path | None = Field(
        default=None, description="File holding the link secret (default: generated in data_dir)."
    )
    link_ttl_s: float = Field(default=86400.0, gt=0, description="Ack and media links expire after this.")
    action_ttl_s: float = Field(default=1800.0, gt=0, description="One-tap action links expire after this.")
    store_hours: list[TimeWindow] = Field(
        default_factory=list, description="Opening hours for schedule: open/closed routes."
    )
    recipients: list[AlertRecipient] = Field(default_factory=list, description="Who can be alerted.")
    routes: list[AlertRoute] = Field(default_factory=list, description="What goes to whom.")
    actions: list[AlertAction] = Field(default_factory=list, description="One-tap actions.")
    mqtt: MqttBroker | None = Field(default=None, description="MQTT broker for mqtt recipients and actions.")
    retry_base_s: float = Field(default=2.0, gt=0, description="First retry delay; doubles per attempt.")
    retry_max_s: float = Field(default=120.0, gt=0, description="Longest retry delay.")
    give_up_after_s: float = Field(default=86400.0, gt=0, description="Undelivered alerts fail after this.")
    send_timeout_s: float = Field(default=8.0, gt=0, le=120, description="Per-send network timeout.")
    max_attachment_mb: float = Field(default=10.0, ge=0, description="Larger clips go as a link only.")

    @model_validator(mode="after")
    def _references(self) -> Alerts:
        rids = {r.id for r in self.recipients}
        aids = {a.id for a in self.actions}
        named_ids = (("recipient", [r.id for r in self.recipients]), ("route", [r.id for r in self.routes]))
        for name, ids in named_ids:
            dup = {i for i in ids if ids.count(i) > 1}
            if dup:
                raise ValueError(f"{name} id(s) used twice: {', '.join(sorted(dup))}")
        for route in self.routes:
            named = route.recipients + [r for step in route.escalation for r in step.recipients]
            missing = sorted({r for r in named if r not in rids})
            if missing:
                raise ValueError(f"route '{route.id}' names unknown recipient(s): {', '.join(missing)}")
            unknown = sorted(set(route.actions) - aids)
            if unknown:
                raise ValueError(f"route '{route.id}' names unknown action(s): {', '.join(unknown)}")
        for action in self.actions:
            missing = sorted({r for r in action.allowed + action.notify if r not in rids})
            if missing:
                raise ValueError(f"action '{action.id}' names unknown recipient(s): {', '.join(missing)}")
            if action.mqtt is not None and self.mqtt is None:
                raise ValueError(f"action '{action.id}' publishes MQTT but alerts.mqtt is not configured")
        if self.mqtt is None and any(r.mqtt for r in self.recipients):
            raise ValueError("a recipient has mqtt: true but alerts.mqtt (the broker) is not configured")
        return self

    def recipient(self, recipient_id: str) -> AlertRecipient | None:
        return next((r for r in self.recipients if r.id == recipient_id), None)

    def route(self, route_id: str) -> AlertRoute | None:
        return next((r for r in self.routes if r.id == route_id), None)

    def action(self, action_id: str) -> AlertAction | None:
        return next((a for a in self.actions if a.id == action_id), None)


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
    alerts: Alerts = Field(default_factory=Alerts, description="Alerts: routes, channels, escalation.")
    watchlist: WatchlistConfig = Field(
        default_factory=WatchlistConfig,
        description="Known-offender watchlist and staff faces (off by default).",
    )

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
