"""Configuration of the counter: trays, cases, showing areas, the showing protocol and roles.

Kept apart from ``config.models`` so the counter's many thresholds read as one page. Every
default follows the trade's showing rules (Jewelers' Security Alliance, Jewelers Mutual; see
the shared DOMAIN.md): at most two pieces out, no whole trays on the counter, a case open only
while a piece goes in or out, never a customer left alone with a piece.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gemwatch.config.pictures import check_picture
from gemwatch.types import Role, Severity

_HEX = re.compile(r"^#?[0-9a-fA-F]{6}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_piece_area(value: tuple[float, float]) -> tuple[float, float]:
    """Smallest below largest, both fractions of the zone: a swapped pair would count nothing."""
    low, high = value
    if not (0.0 < low < high <= 1.0):
        raise ValueError(
            f"needs 0 < smallest < largest <= 1 (fractions of the zone's area), got [{low}, {high}]"
        )
    return value


class TrayParams(_Strict):
    """A tray of pieces in its place (a case shelf, a drawer): counted, and watched for removal."""

    _piece_area = field_validator("piece_area")(_check_piece_area)

    piece_area: tuple[float, float] = Field(
        default=(0.0004, 0.04),
        description="Smallest and largest piece, as fractions of the zone's area; blobs outside "
        "this range are not pieces (dust, the tray's own pattern, an arm).",
    )
    min_contrast: float = Field(
        default=0.18,
        gt=0,
        le=2,
        description="A piece differs from the tray around it by at least this fraction of the "
        "tray's brightness (dark velvet under gold, or a dark item on a pale pad).",
    )
    confirm_s: float = Field(
        default=0.4,
        ge=0,
        description="A count or a removal must be seen this long, unoccluded, before an event.",
    )
    return_s: float = Field(
        default=10.0,
        ge=0,
        description="A piece out during a showing must be back this long after the customer "
        "steps away, or it is missing.",
    )
    removed_change: float = Field(
        default=0.45,
        gt=0,
        le=1,
        description="Share of the zone's structure that must differ from the armed tray for "
        "the tray to count as gone.",
    )
    severity: Severity = Field(
        default=Severity.HIGH, description="Severity of item_missing and tray_removed."
    )


class CaseParams(_Strict):
    """A display case's door or lid: open or closed, from appearance or a contact sensor."""

    open_max_s: float = Field(
        default=20.0,
        gt=0,
        description="Longest a case may stay open: long enough to take a piece out or put it back.",
    )
    unattended_s: float = Field(
        default=5.0, ge=0, description="An open case with no staff within reach for this long is an event."
    )
    open_change: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Without an open reference image: share of structure that differs from the "
        "closed case when it is open.",
    )
    open_image: Path | None = Field(
        default=None,
        description="A picture of this camera's view with the case open (e.g. the console's "
        "/api/v1/cameras/<camera>/frame.jpg while it is open); the closed state comes from reference_image or is learned. A relative path is "
        "read from the config file's folder; a missing or unreadable file is a config error.",
    )
    sensor_topic: str | None = Field(
        default=None,
        description="MQTT topic of a contact/lock sensor on this case; when set it decides "
        "open/closed instead of the picture.",
    )
    sensor_open_payloads: list[str] = Field(
        default_factory=lambda: ["open", "OPEN", "1", "true", "ON", "unlocked"],
        description="Payloads that mean open; any other payload means closed.",
    )
    record_openings: bool = Field(
        default=True,
        description="Record every opening as a case_opened event (info: when it opened, when it "
        "closed, how long it was open) for the manager's audit; info events alert nobody unless a "
        "route sets min_severity: info.",
    )
    severity: Severity = Field(default=Severity.MEDIUM, description="Severity of case events.")

    @field_validator("open_image")
    @classmethod
    def _open_image(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return check_picture(value, "open_image", info.context)


class ShowingAreaParams(_Strict):
    """The safety boundary (pad) where pieces may lie during a showing, and its surroundings."""

    _piece_area = field_validator("piece_area")(_check_piece_area)

    boundary_margin: float = Field(
        default=0.5,
        gt=0,
        le=3,
        description="Width of the band around the area that is watched for pieces outside the "
        "boundary and for bags, as a fraction of the area's size.",
    )
    piece_area: tuple[float, float] = Field(
        default=(0.0004, 0.04), description="Smallest and largest piece, fractions of the zone's area."
    )
    min_contrast: float = Field(
        default=0.18, gt=0, le=2, description="Contrast of a piece against the pad (see trays)."
    )
    outside_confirm_s: float = Field(
        default=1.0, ge=0, description="A piece outside the boundary must be seen this long."
    )
    obstruction_s: float = Field(
        default=5.0, ge=0, description="A bag or package next to the area for this long is an obstruction."
    )
    obstruction_fraction: float = Field(
        default=0.15,
        gt=0,
        le=1,
        description="Share of the surrounding band a new object must cover to count as an obstruction.",
    )
    unattended_s: float = Field(
        default=5.0,
        ge=0,
        description="Something lying on the area with nobody at the counter this long is an event.",
    )
    placed_change: float = Field(
        default=0.15,
        gt=0,
        le=1,
        description="Share of the area's cells that must gain (or lose) structure for something "
        "to count as put on (taken off) it.",
    )


class CounterProtocol(_Strict):
    """Showing sessions and the protocol rules at one counter (on its customer-side zone)."""

    session_min_s: float = Field(
        default=2.0, ge=0, description="Customer and staff face each other this long before a session starts."
    )
    session_grace_s: float = Field(
        default=5.0, ge=0, description="A session survives this long without the customer (a step back)."
    )
    max_pieces: int = Field(
        default=2,
        ge=1,
        description="Most pieces out of the case at once: one in the customer's hands, one with the associate.",
    )
    max_pieces_s: float = Field(
        default=3.0, ge=0, description="More pieces than max_pieces for this long is an event."
    )
    tray_policy: Literal["strict", "lenient", "off"] = Field(
        default="strict",
        description="strict: a whole tray out of its place during a showing is an event; "
        "lenient: only when it is still out tray_grace_s after the session ended; off.",
    )
    tray_grace_s: float = Field(
        default=30.0, ge=0, description="Lenient policy: how long after the session a tray may stay out."
    )
    alone_s: float = Field(
        default=5.0,
        ge=0,
        description="A piece out while the serving staff member is away (or no staff within reach) this long.",
    )
    turned_away_s: float | None = Field(
        default=3.0,
        ge=0,
        description="A staff member within reach who has turned their back on the customer (shoulders "
        "from the pose keypoints) longer than this counts as away for customer_alone; a glance at the "
        "till is shorter. Unknown facing never counts. Omitted (null): facing is not used.",
    )
    not_served_s: float = Field(
        default=60.0,
        gt=0,
        description="A customer at the counter this long with no staff within reach is not served.",
    )
    reach: float | None = Field(
        default=None,
        gt=0,
        le=2,
        description="Most distance between a customer's and a staff member's feet, as a fraction "
        "of the picture's width, to count as within reach; omitted: anywhere at the same counter.",
    )
    reach_over_s: float = Field(
        default=0.4,
        ge=0,
        description="A customer's hand seen in a staff_area zone (across the counter, on the staff "
        "side) this long is reach_over, how counter thefts start; a hand moving past is shorter.",
    )
    reach_over_box: float | None = Field(
        default=0.1,
        gt=0,
        le=1,
        description="When the pose finds neither wrist of the customer: share of their box lying in "
        "the staff_area that counts as reaching over (some of their body is there). Omitted (null): "
        "only a wrist that is found counts.",
    )
    reach_over_severity: Severity = Field(default=Severity.HIGH, description="Severity of reach_over.")
    hand_over_distance: float = Field(
        default=0.3,
        gt=0,
        le=2,
        description="A customer's and a staff member's wrists this close (a fraction of the taller one's "
        "box height: two hands and the piece or note between them) is a hand_over (info).",
    )
    hand_over_s: float = Field(
        default=0.0,
        ge=0,
        description="How long the wrists must stay that close; 0: one sighting (a hand-over lasts about "
        "a second, in which the pose finds both wrists in one or two analysed frames).",
    )
    wrist_score: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="A wrist keypoint counts as found at this pose score or more (reach_over, hand_over).",
    )
    severity: Severity = Field(default=Severity.MEDIUM, description="Severity of protocol violations.")


class UniformSample(_Strict):
    """A staff uniform's colours: typed in, or cut from a snapshot of a staff member's torso."""

    name: str = Field(description="Shown in reports, e.g. 'teal polo'.")
    role: Role = Field(default=Role.STAFF, description="staff or guard.")
    colours: list[str] = Field(default_factory=list, description="Hex colours of the torso, e.g. '#1a9c9c'.")
    image: Path | None = Field(default=None, description="A snapshot with a staff member in uniform.")
    box: tuple[float, float, float, float] | None = Field(
        default=None, description="The torso in that snapshot: x1, y1, x2, y2 in 0..1."
    )

    @field_validator("colours")
    @classmethod
    def _hex(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if not _HEX.match(c)]
        if bad:
            raise ValueError(f"colours must be hex like '#1a9c9c', got {bad}")
        return value

    @model_validator(mode="after")
    def _has_sample(self) -> UniformSample:
        if not self.colours and self.image is None:
            raise ValueError(f"uniform '{self.name}' needs colours or an image with a box")
        if (self.image is None) != (self.box is None):
            raise ValueError(f"uniform '{self.name}': give image and box together")
        if self.role not in (Role.STAFF, Role.GUARD):
            raise ValueError(f"uniform '{self.name}': role must be staff or guard")
        return self


class Roles(_Strict):
    """How tracked people become staff or customers; uncertain stays unknown, never guessed."""

    staff_area: bool = Field(
        default=True,
        description="A person who appears in a staff_area zone, or stays in one staff_area_s, is staff.",
    )
    staff_area_s: float = Field(default=2.0, ge=0, description="Time in a staff_area zone that makes staff.")
    entry_s: float = Field(
        default=0.6,
        ge=0,
        description="A track first seen in a staff area, and still there this long, entered there: staff.",
    )
    customer_s: float = Field(
        default=0.6,
        ge=0,
        description="Time on a counter's customer side (counter zone), without staff evidence, that makes a customer.",
    )
    uniforms: list[UniformSample] = Field(default_factory=list, description="Staff uniform colour samples.")
    uniform_similarity: float = Field(
        default=0.55, gt=0, le=1, description="Torso colour similarity (0..1) that matches a uniform."
    )
    uniform_s: float = Field(
        default=1.0,
        ge=0,
        description="A uniform must match this long (most sightings) before staff is assigned.",
    )
    keep_s: float = Field(
        default=3.0,
        ge=0,
        description="A new track that starts where a track with a role vanished this recently, and "
        "looks the same, keeps the role (short occlusions, detector gaps).",
    )


class ZoneAnalysis(_Strict):
    """Appearance of tray, case and showing-area zones: cheap, and only when nothing hides them."""

    fps: float = Field(default=5.0, gt=0, le=30, description="Most zone comparisons per second.")
    max_px: int = Field(
        default=256,
        ge=32,
        le=1024,
        description="Longest side a zone is analysed at (larger zones are scaled down).",
    )
    settle_s: float = Field(
        default=0.2,
        ge=0,
        description="A zone must be still (no motion, nobody over it) this long before it is compared.",
    )
    min_visible: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Least share of a zone that must be unhidden to compare its structure; "
        "counting needs it all.",
    )
    arm_s: float = Field(
        default=0.6, ge=0, description="A zone is armed after this long seen still and mostly clear."
    )
    drift_tau_s: float = Field(
        default=600.0,
        gt=0,
        description="Time constant of the slow reference update while the zone matches it (lighting drift).",
    )
