"""Staff versus customer: every tracked person gets a role, and keeps it.

Sources, combined (strongest first):

1. *identity sources* plugged in with :meth:`RoleAssigner.add_source` — enrolled staff faces
   from the watchlist, a badge reader — whose answer wins when they give one;
2. a *uniform*: the torso's colours match a sample the manager captured (hex colours, or a
   crop of a snapshot) for most sightings over ``uniform_s``;
3. the *staff side of a counter*: a person who appears in a ``staff_area`` zone, or stays in
   one ``staff_area_s``, is staff;
4. the *customer side*: a person on a counter's customer side for ``customer_s`` with no staff
   evidence is a customer.

Anyone else stays ``unknown``: a role is never guessed. Once given, a role sticks to the track
(a customer leaning over the counter does not become staff), and a track that starts where a
track with a role vanished moments ago, looking the same (torso colours), inherits it, so a
detector gap or a short occlusion does not lose the cashier.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import cv2
import numpy as np

from gemwatch.config.counter import Roles, UniformSample
from gemwatch.config.models import Camera, ZoneKind
from gemwatch.rules.geometry import points_in_polygon
from gemwatch.types import Person, Role

H_BINS, S_BINS, V_BINS = 18, 3, 4
#: Pixels below this saturation (0..255) have no reliable hue: they go to the grey bins by value.
MIN_SATURATION = 50
STAFF_LIKE = frozenset({Role.STAFF, Role.GUARD})
#: A track whose torso shares less colour than this with its own history, SWITCH_SIGHTINGS times
#: in a row, has been handed to another person by the tracker: its role is not theirs.
SWITCH_SIMILARITY = 0.25
SWITCH_SIGHTINGS = 3
# COCO keypoints
L_SHOULDER, R_SHOULDER, L_HIP, R_HIP = 5, 6, 11, 12


class RoleSource(Protocol):
    """A way to know someone's role (enrolled faces, badges). Return None when it cannot tell."""

    name: str

    def role_for(self, person: Person, image: np.ndarray, ts: float) -> Role | None: ...


# -------------------------------------------------------------------------- torso colours


def torso_box(person: Person, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Where the torso is: between shoulders and hips when the pose has them, else the upper
    middle of the box (a seated or half-hidden person's box still has the chest there)."""
    x1, y1, x2, y2 = person.box
    kp = person.keypoints
    if kp is not None and np.all(kp[[L_SHOULDER, R_SHOULDER], 2] >= 0.3):
        pts = kp[[L_SHOULDER, R_SHOULDER], :2]
        hips = kp[[L_HIP, R_HIP]]
        good_hips = hips[hips[:, 2] >= 0.3, :2]
        sx1, sx2 = float(pts[:, 0].min()), float(pts[:, 0].max())
        top = float(pts[:, 1].mean())
        span = max(sx2 - sx1, 4.0)
        bottom = float(good_hips[:, 1].mean()) if len(good_hips) else top + 1.2 * span
        inset = 0.15 * span
        bx1, bx2, by1, by2 = (
            sx1 + inset,
            sx2 - inset,
            top + 0.1 * (bottom - top),
            bottom - 0.1 * (bottom - top),
        )
    else:
        w, h = x2 - x1, y2 - y1
        bx1, bx2, by1, by2 = x1 + 0.25 * w, x2 - 0.25 * w, y1 + 0.2 * h, y1 + 0.5 * h
    bx1, by1 = max(0, int(bx1)), max(0, int(by1))
    bx2, by2 = min(width, int(bx2)), min(height, int(by2))
    if bx2 - bx1 < 4 or by2 - by1 < 4:
        return None
    return bx1, by1, bx2, by2


def colour_histogram(bgr: np.ndarray) -> np.ndarray:
    """Normalised colour histogram: hue × saturation for coloured pixels, value bins for greys."""
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    coloured = (s >= MIN_SATURATION) & (v >= 40)
    hb = np.minimum(h * H_BINS // 180, H_BINS - 1)
    sb = np.minimum((s - MIN_SATURATION) * S_BINS // (256 - MIN_SATURATION), S_BINS - 1)
    vb = np.minimum(v * V_BINS // 256, V_BINS - 1)
    idx = np.where(coloured, hb * S_BINS + sb, H_BINS * S_BINS + vb)
    hist = np.bincount(idx, minlength=H_BINS * S_BINS + V_BINS).astype(np.float64)
    hist = _blur_hue(hist)
    total = hist.sum()
    out: np.ndarray = hist / total if total > 0 else hist
    return out


def _blur_hue(hist: np.ndarray) -> np.ndarray:
    """Spread each hue bin a little into its neighbours (cyclic), so a shade off by one bin matches."""
    hs = hist[: H_BINS * S_BINS].reshape(H_BINS, S_BINS)
    spread = 0.5 * hs + 0.25 * np.roll(hs, 1, axis=0) + 0.25 * np.roll(hs, -1, axis=0)
    out = hist.copy()
    out[: H_BINS * S_BINS] = spread.ravel()
    return out


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Histogram intersection, 0..1: the share of colour the two have in common."""
    return float(np.minimum(a, b).sum())


def hex_histogram(colours: Sequence[str]) -> np.ndarray:
    """A uniform sample from typed-in colours: each colour as a small patch."""
    patch = np.zeros((len(colours) * 8, 8, 3), np.uint8)
    for i, c in enumerate(colours):
        c = c.lstrip("#")
        r, g, b = int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)
        patch[i * 8 : (i + 1) * 8] = (b, g, r)
    return colour_histogram(patch)


def sample_histogram(sample: UniformSample) -> np.ndarray:
    if sample.image is not None and sample.box is not None:
        image = cv2.imread(str(sample.image), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"uniform '{sample.name}': cannot read {sample.image}")
        h, w = image.shape[:2]
        x1, y1, x2, y2 = sample.box
        crop = image[int(y1 * h) : int(y2 * h), int(x1 * w) : int(x2 * w)]
        if crop.size == 0:
            raise ValueError(f"uniform '{sample.name}': the box is empty")
        hist = colour_histogram(crop)
        if sample.colours:
            hist = 0.5 * hist + 0.5 * hex_histogram(sample.colours)
        return hist
    return hex_histogram(sample.colours)


# ------------------------------------------------------------------------------ assignment


@dataclass(slots=True)
class TrackRole:
    """What is known about one track's role."""

    track_id: int
    first_ts: float
    last_ts: float
    box: tuple[float, float, float, float]
    role: Role = Role.UNKNOWN
    source: str | None = None
    entered_in_staff_area: bool | None = None
    staff_area_s: float = 0.0
    customer_s: float = 0.0
    uniform: deque[tuple[float, Role | None]] = field(default_factory=lambda: deque(maxlen=64))
    colours: np.ndarray | None = None
    mismatches: int = 0  # sightings in a row whose torso does not look like this track's


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class RoleAssigner:
    """Gives each tracked person of one camera a role, from the configured sources."""

    def __init__(self, camera: Camera, cfg: Roles) -> None:
        self.cfg = cfg
        self.staff_areas = (
            [z for z in camera.zones if z.kind == ZoneKind.STAFF_AREA] if cfg.staff_area else []
        )
        self.customer_sides = [z for z in camera.zones if z.kind == ZoneKind.COUNTER]
        self.uniforms = [(s, sample_histogram(s)) for s in cfg.uniforms]
        self.sources: list[RoleSource] = []
        self.tracks: dict[int, TrackRole] = {}
        self.given: dict[int, Role] = {}  # every role given, by track id

    def set_camera(self, camera: Camera) -> None:
        """Edited zones apply from the next frame; roles already given are kept."""
        self.staff_areas = (
            [z for z in camera.zones if z.kind == ZoneKind.STAFF_AREA] if self.cfg.staff_area else []
        )
        self.customer_sides = [z for z in camera.zones if z.kind == ZoneKind.COUNTER]

    def add_source(self, source: RoleSource) -> None:
        """Plug in an identity source (enrolled staff faces): its answer wins over the others."""
        self.sources.append(source)

    def role_of(self, track_id: int) -> Role:
        """The role a track had when last seen (kept after the track ends, for its summary)."""
        t = self.tracks.get(track_id)
        return t.role if t is not None else self.given.get(track_id, Role.UNKNOWN)

    def assign(
        self,
        people: tuple[Person, ...],
        image: np.ndarray,
        ts: float,
        feet: np.ndarray | None = None,
    ) -> tuple[Person, ...]:
        """The same people with their roles. ``feet`` are normalised foot points in the view
        the zones were drawn on (the perceiver passes them stabilised when the camera is)."""
        if not people:
            return people
        h, w = image.shape[:2]
        if feet is None:
            feet = np.array([[p.foot[0] / w, p.foot[1] / h] for p in people])
        in_staff = self._inside(feet, self.staff_areas)
        in_customer = self._inside(feet, self.customer_sides)
        out = []
        for i, person in enumerate(people):
            track = self.tracks.get(person.track_id)
            colours = self._colours(person, image)
            if track is not None and self._switched(track, person, colours):
                # the tracker gave this id to someone else (two people crossed): start over
                del self.tracks[person.track_id]
                track = None
            if track is None:
                track = self._new_track(person, ts, colours)
            dt = min(max(ts - track.last_ts, 0.0), 0.5)
            track.last_ts = ts
            track.box = person.box
            if colours is not None and not track.mismatches:  # learn the look only while it is theirs
                track.colours = colours if track.colours is None else 0.8 * track.colours + 0.2 * colours
            if track.entered_in_staff_area is None:
                track.entered_in_staff_area = bool(in_staff[i])
            if in_staff[i]:
                track.staff_area_s += dt
            elif track.entered_in_staff_area and ts - track.first_ts < self.cfg.entry_s:
                track.entered_in_staff_area = False  # only passed through the staff side
            if in_customer[i]:
                track.customer_s += dt
            self._decide(track, person, image, ts, colours, bool(in_staff[i]))
            if track.role != Role.UNKNOWN:
                self.given[person.track_id] = track.role
            out.append(person if person.role == track.role else replace(person, role=track.role))
        self._forget(ts)
        return tuple(out)

    # -- internals

    @staticmethod
    def _inside(feet: np.ndarray, zones: Sequence[object]) -> np.ndarray:
        inside = np.zeros(len(feet), dtype=bool)
        for zone in zones:
            inside |= points_in_polygon(feet, zone.polygon)  # type: ignore[attr-defined]
        return inside

    def _colours(self, person: Person, image: np.ndarray) -> np.ndarray | None:
        box = torso_box(person, image.shape[1], image.shape[0])
        if box is None:
            return None
        x1, y1, x2, y2 = box
        return colour_histogram(image[y1:y2, x1:x2])

    @staticmethod
    def _switched(track: TrackRole, person: Person, colours: np.ndarray | None) -> bool:
        """True when the tracker seems to have handed this id to someone else: the new box does
        not touch the last one and lies more than half its size away (people do not teleport
        within the tracker's two-second memory), or the torso
        has looked like someone else's for SWITCH_SIGHTINGS sightings in a row."""
        (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = track.box, person.box
        jump = math.hypot((ax1 + ax2 - bx1 - bx2) / 2, (ay1 + ay2 - by1 - by2) / 2)
        if _iou(track.box, person.box) == 0.0 and jump > 0.5 * max(ax2 - ax1, ay2 - ay1):
            return True
        if colours is None or track.colours is None:
            return False
        if similarity(track.colours, colours) < SWITCH_SIMILARITY:
            track.mismatches += 1
        else:
            track.mismatches = 0
        return track.mismatches >= SWITCH_SIGHTINGS

    def _new_track(self, person: Person, ts: float, colours: np.ndarray | None) -> TrackRole:
        """A new track; it inherits the role of a track with a role that vanished just here."""
        track = TrackRole(person.track_id, ts, ts, person.box)
        best, best_score = None, 0.0
        for old in self.tracks.values():
            if old.role == Role.UNKNOWN or old.track_id == person.track_id:
                continue
            gap = ts - old.last_ts
            if gap <= 0 or gap > self.cfg.keep_s:
                continue
            overlap = _iou(old.box, person.box)
            if overlap < 0.1:
                continue
            look = (
                similarity(old.colours, colours) if old.colours is not None and colours is not None else 0.5
            )
            if look < 0.4:
                continue
            score = overlap + look
            if score > best_score:
                best, best_score = old, score
        if best is not None:
            track.role, track.source = best.role, f"kept from track {best.track_id}"
            track.entered_in_staff_area = best.entered_in_staff_area
            track.staff_area_s, track.customer_s = best.staff_area_s, best.customer_s
            track.first_ts = best.first_ts
            del self.tracks[best.track_id]
        self.tracks[person.track_id] = track
        return track

    def _decide(
        self, track: TrackRole, person: Person, image: np.ndarray, ts: float, colours: np.ndarray | None,
        in_staff: bool,
    ) -> None:  # fmt: skip
        for source in self.sources:
            role = source.role_for(person, image, ts)
            if role is not None and role != Role.UNKNOWN:
                track.role, track.source = role, source.name
                return
        if track.role in STAFF_LIKE:
            return
        uniform = self._uniform_role(track, ts, colours)
        if uniform is not None:
            track.role, track.source = uniform, "uniform"
            return
        if track.role == Role.CUSTOMER:
            return
        entered = bool(track.entered_in_staff_area) and in_staff and ts - track.first_ts >= self.cfg.entry_s
        if self.staff_areas and (entered or track.staff_area_s >= self.cfg.staff_area_s):
            track.role, track.source = Role.STAFF, "staff area"
            return
        if (
            track.customer_s >= self.cfg.customer_s
            and track.staff_area_s < 0.5 * self.cfg.staff_area_s
            and not self._uniform_hint(track)
        ):
            track.role, track.source = Role.CUSTOMER, "customer side"

    def _uniform_role(self, track: TrackRole, ts: float, colours: np.ndarray | None) -> Role | None:
        if not self.uniforms:
            return None
        match: Role | None = None
        if colours is not None:
            best = max(self.uniforms, key=lambda u: similarity(u[1], colours))
            if similarity(best[1], colours) >= self.cfg.uniform_similarity:
                match = best[0].role
            track.uniform.append((ts, match))
        recent = [r for t, r in track.uniform if ts - t <= max(self.cfg.uniform_s, 0.5)]
        if len(recent) < 3 or ts - track.first_ts < self.cfg.uniform_s:
            return None
        hits = [r for r in recent if r is not None]
        if len(hits) >= math.ceil(0.6 * len(recent)):
            return max(set(hits), key=hits.count)
        return None

    def _uniform_hint(self, track: TrackRole) -> bool:
        """Any recent uniform match: not yet staff, but not a customer either."""
        return any(r is not None for _, r in list(track.uniform)[-5:])

    def _forget(self, ts: float) -> None:
        stale = [tid for tid, t in self.tracks.items() if ts - t.last_ts > max(60.0, 4 * self.cfg.keep_s)]
        for tid in stale:
            del self.tracks[tid]
