"""The vocabulary that flows along the pipeline: Frame → Observation → Event.

These are the only shapes that cross package boundaries (see docs/architecture.md).
Time is always seconds (float): ``ts`` is wall-clock UTC epoch seconds derived from the
stream's presentation timestamps, never a frame count.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gemwatch.sources.packets import PacketRing


class Role(StrEnum):
    """What a tracked person is to the store; uncertain stays ``unknown``."""

    UNKNOWN = "unknown"
    CUSTOMER = "customer"
    STAFF = "staff"
    GUARD = "guard"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(slots=True)
class Frame:
    """One decoded, upright BGR picture from a camera.

    ``pts`` is the presentation time in seconds from the start of the stream; ``ts`` is the
    same instant as wall-clock UTC epoch seconds (stream start time + pts).
    """

    camera_id: str
    ts: float
    pts: float
    image: np.ndarray
    index: int = 0
    ring: PacketRing | None = None

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


#: ``Person.keypoints`` order (COCO): pose plugins write it, rules read it by these names.
KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
NOSE, LEFT_EYE, RIGHT_EYE = (KEYPOINTS.index(k) for k in ("nose", "left_eye", "right_eye"))
LEFT_SHOULDER, RIGHT_SHOULDER = KEYPOINTS.index("left_shoulder"), KEYPOINTS.index("right_shoulder")
LEFT_WRIST, RIGHT_WRIST = KEYPOINTS.index("left_wrist"), KEYPOINTS.index("right_wrist")


@dataclass(frozen=True, slots=True)
class Person:
    """A tracked person at one instant. ``box`` is (x1, y1, x2, y2) in frame pixels.

    ``keypoints`` (17 × (x, y, score), COCO order, pixels) is present only where a pose pass ran.
    """

    track_id: int
    box: tuple[float, float, float, float]
    score: float
    role: Role = Role.UNKNOWN
    keypoints: np.ndarray | None = None
    identity: str | None = None  # a staff-gallery entry id, when faces recognised this person

    @property
    def foot(self) -> tuple[float, float]:
        """Bottom-centre of the box: where the person stands, used for zone membership."""
        x1, _, x2, y2 = self.box
        return ((x1 + x2) / 2.0, y2)


@dataclass(frozen=True, slots=True)
class ZoneState:
    """What perception saw of one tray, case or showing-area zone at one instant.

    Appearance is compared with the zone's resting reference only while nothing hides or moves
    in it, so ``measured`` is False (and ``change``/``count`` are None) whenever a person, a hand
    or the camera's own motion makes a comparison untrustworthy; rules then keep what they knew.
    """

    zone_id: str
    measured: bool = False
    armed: bool = False
    occluded: float = 0.0
    moving: bool = False
    change: float | None = None
    added: float | None = None
    removed: float | None = None
    count: int | None = None
    count_confidence: float = 0.0
    reference_count: int | None = None
    open: bool | None = None
    open_source: str | None = None
    # When the current open/closed state was first seen (a state read from pictures is
    # confirmed a few passes later); None: when it was reported.
    open_since: float | None = None
    outside_count: int | None = None
    hidden_added: float = 0.0  # share of the cells last seen with something put there that are hidden now
    outside_change: float | None = None


@dataclass(frozen=True, slots=True)
class DetectedObject:
    """A non-person object the detector found (handbag, backpack, suitcase), frame pixels."""

    label: str
    box: tuple[float, float, float, float]
    score: float


@dataclass(frozen=True, slots=True)
class FaceSighting:
    """A face seen on a tracked person at one instant (memory only: a face that matches no
    entry is dropped with its Observation and never written anywhere, see docs/privacy.md).

    ``embedding`` is the 128-d descriptor, ``chip`` the aligned 150×150 RGB face, ``quality``
    0..1 for ranking shots, ``usable`` whether it passed the live quality gate, ``detail`` the
    gate's measures (width_px, sharpness, yaw, score).
    """

    track_id: int
    ts: float
    box: tuple[float, float, float, float]
    embedding: np.ndarray
    quality: float
    usable: bool
    chip: np.ndarray | None = None
    detail: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything perception knows about one camera at one instant; the only thing rules read.

    ``zone_people`` maps a zone id to the track ids inside it (by foot point, normalised);
    ``zones`` holds the appearance of tray, case and showing-area zones; ``objects`` the bags.
    """

    camera_id: str
    ts: float
    width: int
    height: int
    people: tuple[Person, ...] = ()
    zone_people: dict[str, tuple[int, ...]] = field(default_factory=dict)
    motion: float = 0.0
    detector_ran: bool = False
    zones: dict[str, ZoneState] = field(default_factory=dict)
    objects: tuple[DetectedObject, ...] = ()
    faces: tuple[FaceSighting, ...] = ()  # face looks this frame (usually none: a few per track)

    def person(self, track_id: int) -> Person | None:
        for p in self.people:
            if p.track_id == track_id:
                return p
        return None


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 version 7) so event ids sort by creation time."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


@dataclass(slots=True)
class Event:
    """Something a rule found. Rules emit the same ``id`` again to update an open event
    (e.g. loitering's final duration); ``ended`` marks the last update.
    """

    type: str
    severity: Severity
    camera_id: str
    start_ts: float
    description: str
    zone_id: str | None = None
    end_ts: float | None = None
    ended: bool = False
    people: tuple[int, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    snapshot_path: str | None = None
    clip_path: str | None = None
    id: str = field(default_factory=uuid7)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        return None if self.end_ts is None else self.end_ts - self.start_ts
