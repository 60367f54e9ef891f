"""Zone appearance: trays, cases and showing areas, compared only when nothing hides them.

Each tray, case or showing-area zone learns its resting appearance (tray full, pad clear,
case closed) the first time it is seen clear and steady, or takes it from a reference picture.
Afterwards it is compared only while no person's box covers it and nothing moves inside it, so
a hand passing over a tray never looks like a missing piece. The comparison is structural
(gradients per cell, normalised for the zone's overall brightness) so daylight and lamps
drifting by a third do not register as change, and the reference follows slow drift while it
still matches. Pieces are counted as small high-contrast blobs against the tray's own local
background, with a confidence, and cases are open or closed by whichever reference they match
better (or by a contact sensor). With ``camera.stabilise`` every frame is first registered
onto the first analysed frame (ECC, affine; each zone refined on its own surroundings), so a
bumped or hand-held camera keeps its zones on the things they were drawn on; a reference
picture taken with the camera elsewhere gets a first guess from ORB features.

Everything here is pure array work on small crops (a zone is analysed at most ``max_px`` on its
longer side), run at ``perception.zones.fps``; rules read the resulting ``ZoneState``.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from gemwatch.config.counter import ZoneAnalysis
from gemwatch.config.models import Camera, Zone, ZoneKind
from gemwatch.config.pictures import PICTURE_NAMES, PictureReadError, read_picture
from gemwatch.types import Person, ZoneState

log = logging.getLogger(__name__)

APPEARANCE_KINDS = frozenset({ZoneKind.TRAY, ZoneKind.CASE, ZoneKind.SHOWING_AREA})

#: Cells whose mean gradient (grey levels per pixel) stays below this are flat: no structure to compare.
TEXTURE_FLOOR = 3.0
#: A grey-level change (after brightness normalisation) that counts as motion between two passes.
MOTION_DELTA = 14.0
#: Share of a zone's visible pixels that must move for the zone to count as disturbed.
MOTION_FRACTION = 0.02
#: Lighting drift is a gain of at most this much either way; a zone that would need more (a dark
#: tray replaced by the pale counter under it) changed in content, not in light.
MAX_GAIN = 1.6
#: Visible share of a zone for it to count as fully in view (for arming and counting).
FULL_VIEW = 0.98
#: A zone's first look is taken with the first people reported, or this long after watching
#: began: on the first frames the tracker has confirmed nobody yet, so nobody hides anything.
FIRST_LOOK_S = 0.5


# ------------------------------------------------------------------------------------ features


def shift_tolerant_diff(cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """|cur − prev| where a one-pixel shift is forgiven: camera shake and a registration error
    of a pixel move every edge, and that is not something moving in the zone."""
    kernel = np.ones((3, 3), np.uint8)
    lo = cv2.erode(prev, kernel)
    hi = cv2.dilate(prev, kernel)
    out: np.ndarray = np.maximum(np.maximum(cur - hi, lo - cur), 0.0)
    return out


def _cell_sums(values: np.ndarray, cell: int) -> np.ndarray:
    h, w = values.shape
    gh, gw = h // cell, w // cell
    v = values[: gh * cell, : gw * cell]
    out: np.ndarray = v.reshape(gh, cell, gw, cell).sum(axis=(1, 3))
    return out


def cell_size(shape: tuple[int, ...]) -> int:
    """About 16 cells along the zone's longer side, never smaller than 4 pixels."""
    return max(4, round(max(shape[:2]) / 16))


@dataclass(frozen=True, slots=True)
class Change:
    """Structural difference between a reference and the current picture of a zone."""

    score: float  # share of comparable cells that changed, 0..1
    cells: int  # comparable cells
    changed: np.ndarray  # bool per cell
    added: float = 0.0  # share of cells that gained structure (something put there)
    removed: float = 0.0  # share of cells that lost structure (something taken away)
    gained: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 0), bool)
    )  # changed cells that gained structure
    valid: np.ndarray = field(
        default_factory=lambda: np.zeros((0, 0), bool)
    )  # cells visible enough to compare


ORIENTATION_BINS = 8


def _orientation_histograms(grey: np.ndarray, vis: np.ndarray, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: a magnitude-weighted histogram of gradient orientation (unsigned, soft-binned)
    and the summed magnitude. Histograms forgive a shift inside the cell, where a pixelwise
    comparison of fine texture (fabric, velvet, wood) would not."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    mag = np.sqrt(gx * gx + gy * gy) * vis
    ang = (np.arctan2(gy, gx) % np.pi) / np.pi * ORIENTATION_BINS
    lo = np.floor(ang).astype(np.int64) % ORIENTATION_BINS
    hi = (lo + 1) % ORIENTATION_BINS
    w_hi = (ang - np.floor(ang)).astype(np.float32)
    h, w = grey.shape
    gh, gw = h // cell, w // cell
    rows = np.minimum(np.arange(h) // cell, gh - 1)
    cols = np.minimum(np.arange(w) // cell, gw - 1)
    cell_idx = (rows[:, None] * gw + cols[None, :])[: gh * cell, : gw * cell].ravel()
    crop = (slice(0, gh * cell), slice(0, gw * cell))
    m = mag[crop].ravel()
    size = gh * gw * ORIENTATION_BINS
    hist = np.bincount(
        cell_idx * ORIENTATION_BINS + lo[crop].ravel(), weights=m * (1 - w_hi[crop].ravel()), minlength=size
    )
    hist += np.bincount(
        cell_idx * ORIENTATION_BINS + hi[crop].ravel(), weights=m * w_hi[crop].ravel(), minlength=size
    )
    hist = hist.reshape(gh, gw, ORIENTATION_BINS)
    return hist, hist.sum(axis=2)


def _shifted(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` moved by whole cells, edges repeated (so border cells compare with themselves)."""
    out = a
    if dy:
        out = (
            np.concatenate([out[:1].repeat(dy, 0), out[:-dy]], 0)
            if dy > 0
            else np.concatenate([out[-dy:], out[-1:].repeat(-dy, 0)], 0)
        )
    if dx:
        out = (
            np.concatenate([out[:, :1].repeat(dx, 1), out[:, :-dx]], 1)
            if dx > 0
            else np.concatenate([out[:, -dx:], out[:, -1:].repeat(-dx, 1)], 1)
        )
    return out


def structural_change(
    ref: np.ndarray, cur: np.ndarray, visible: np.ndarray, cell: int | None = None, tolerance: int = 1
) -> Change:
    """Which cells of ``cur`` differ in structure from ``ref`` (both float32 grey, same shape).

    ``cur`` is first scaled to the reference's mean brightness over the visible pixels (lighting
    drift is mostly a gain; at most ``MAX_GAIN`` either way). Per cell, the orientation histograms are compared by cosine
    similarity (a different shape) and by energy (texture appeared or vanished); flat cells by
    mean brightness (a large uniform object hiding a textured pad, or the reverse). A cell
    counts as changed only if no reference cell within ``tolerance`` cells matches it: a view
    that shifts or tilts a little (a hand-held or swaying camera, parallax) is not a change,
    while a tray that left or an object that arrived changes whole neighbourhoods. Only cells
    at least 70% visible count.
    """
    cell = cell or cell_size(ref.shape)
    vis = visible.astype(np.float32)
    if float(vis.sum()) < 1:
        return Change(0.0, 0, np.zeros((0, 0), bool))
    gain = min(max(weber_gain(ref, cur, visible), 1.0 / MAX_GAIN), MAX_GAIN)
    cur = cur * np.float32(gain)
    ones = np.ones_like(vis)
    n = _cell_sums(vis, cell)
    nn = np.maximum(n, 1.0)
    full = np.maximum(_cell_sums(ones, cell), 1.0)
    hr, sr = _orientation_histograms(ref, ones, cell)
    hc, sc = _orientation_histograms(cur, vis, cell)
    er, ec = sr / full, sc / nn
    mr = _cell_sums(ref, cell) / full
    mc = _cell_sums(cur * vis, cell) / nn
    nc = np.sqrt((hc * hc).sum(axis=2))
    changed = np.ones(n.shape, bool)
    for dy in range(-tolerance, tolerance + 1):
        for dx in range(-tolerance, tolerance + 1):
            h2, e2, m2 = _shifted(hr, dy, dx), _shifted(er, dy, dx), _shifted(mr, dy, dx)
            cos = (h2 * hc).sum(axis=2) / (np.sqrt((h2 * h2).sum(axis=2)) * nc + 1e-9)
            textured = (e2 > TEXTURE_FLOOR) | (ec > TEXTURE_FLOOR)
            both = (e2 > TEXTURE_FLOOR) & (ec > TEXTURE_FLOOR)
            energy_jump = np.abs(e2 - ec) > 0.6 * np.maximum(e2, ec)
            shape_jump = both & (cos < 0.6)
            level_jump = np.abs(m2 - mc) > 0.25 * np.maximum(np.maximum(m2, mc), 24.0)
            changed &= (textured & (energy_jump | shape_jump)) | level_jump
    valid = n >= 0.7 * cell * cell
    changed &= valid
    cells = int(valid.sum())
    # Gained or lost: more or less structure than before; for flat cells, further from or
    # closer to the surface's usual brightness (the median cell of the reference).
    surface = float(np.median(mr[valid])) if cells else 0.0
    gained = np.where(np.abs(ec - er) > 0.5, ec > er, np.abs(mc - surface) > np.abs(mr - surface))
    n_cells = max(cells, 1)
    added = float((changed & gained).sum()) / n_cells
    return Change(
        float(changed.sum()) / n_cells,
        cells,
        changed,
        added,
        float(changed.sum()) / n_cells - added,
        changed & gained,
        valid,
    )


@dataclass(frozen=True, slots=True)
class PieceCount:
    """Pieces found on a tray: the number, how sure (0..1), and their centres (analysis pixels)."""

    count: int
    confidence: float
    centres: tuple[tuple[float, float], ...] = ()


def _shrink(mask: np.ndarray, steps: int) -> np.ndarray:
    """Erode a mask, the picture's border counting as outside (OpenCV's default keeps it)."""
    out = cv2.erode(
        mask.astype(np.uint8),
        np.ones((3, 3), np.uint8),
        iterations=steps,
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return np.asarray(out).astype(bool)


def count_pieces(
    grey: np.ndarray,
    zone_mask: np.ndarray,
    piece_area: tuple[float, float],
    min_contrast: float,
    area_px: float | None = None,
) -> PieceCount:
    """Count small high-contrast blobs against the local background of the zone.

    The background is a median over a window wider than the largest piece, so a piece stands
    out by its Weber contrast (|I − bg| / bg) whatever the lighting level. A blob that touches
    the zone's edge is something reaching in (an arm, the tray's rim), not a piece. The
    confidence falls with blobs near the contrast threshold and with blobs of borderline size
    (two pieces touching, a fragment): the count is a measurement, not a guess. ``area_px`` is
    the whole zone's area when ``zone_mask`` is only the part in view (piece sizes stay the same).
    """
    inner = _shrink(zone_mask, 2)
    zone_px = float(area_px if area_px is not None else zone_mask.sum())
    if zone_px < 16 or not inner.any():
        return PieceCount(0, 0.0)
    a_min = max(3.0, piece_area[0] * zone_px)
    a_max = max(a_min + 1.0, piece_area[1] * zone_px)
    k = int(2 * math.sqrt(a_max) + 1) | 1
    k = max(3, min(k, (min(grey.shape) // 2) * 2 - 1))
    g8 = np.clip(grey, 0, 255).astype(np.uint8)
    # Fill outside the zone with the zone's median so the background near the edge is the tray's.
    fill = np.full_like(g8, int(np.median(g8[zone_mask])))
    g8z = np.where(zone_mask, g8, fill)
    bg = cv2.medianBlur(g8z, k).astype(np.float32)
    rel = (g8z.astype(np.float32) - bg) / np.maximum(bg, 16.0)
    strong = (np.abs(rel) > min_contrast) & inner
    n, labels, stats, cents = cv2.connectedComponentsWithStats(strong.astype(np.uint8), connectivity=8)
    if n <= 1:
        return PieceCount(0, 1.0)
    edge = inner & ~_shrink(inner, 1)
    touching = np.zeros(n, bool)
    touching[np.unique(labels[edge])] = True
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    abs_rel = np.abs(rel)
    sums = np.bincount(labels.ravel(), weights=abs_rel.ravel(), minlength=n)
    mean_contrast = sums / np.maximum(areas, 1)
    centres: list[tuple[float, float]] = []
    clarity: list[float] = []
    ambiguous = 0
    for i in range(1, n):
        if touching[i]:
            continue
        a = areas[i]
        if a_min <= a <= a_max:
            centres.append((float(cents[i][0]), float(cents[i][1])))
            clarity.append(min(1.0, (mean_contrast[i] / min_contrast - 1.0) / 0.5))
            if a > 0.8 * a_max:
                ambiguous += 1
        elif 0.5 * a_min <= a < a_min or a_max < a <= 2.0 * a_max:
            ambiguous += 1
    conf = (min(clarity) if clarity else 1.0) / (1.0 + ambiguous)
    return PieceCount(len(centres), float(max(0.0, conf)), tuple(centres))


def _cell_looks(
    grey: np.ndarray, visible: np.ndarray, cell: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell of a zone: structure (mean gradient), brightness, and whether it is in view enough."""
    vis = visible.astype(np.float32)
    n = _cell_sums(vis, cell)
    nn = np.maximum(n, 1.0)
    energy = _orientation_histograms(grey, vis, cell)[1] / nn
    return energy, _cell_sums(grey * vis, cell) / nn, n >= 0.7 * cell * cell


def bare_pad(
    energy: np.ndarray, mean: np.ndarray, surface: np.ndarray, fresh: np.ndarray
) -> np.ndarray | None:
    """Which ``fresh`` cells show something on a plain pad.

    ``surface``: cells that show mostly the bare pad (a showing area is armed mostly clear, so
    the median cell in view is the bare pad). None when the pad is not plain (most of its cells
    textured: velvet in folds, wood grain) or too little of it is in view: then nothing can be
    presumed. A cell shows something when it has structure or is far from the pad's usual
    brightness.
    """
    if int(surface.sum()) < 4 or float(np.median(energy[surface])) >= TEXTURE_FLOOR:
        return None
    level = float(np.median(mean[surface]))
    out: np.ndarray = fresh & ((energy > TEXTURE_FLOOR) | (np.abs(mean - level) > 0.25 * max(level, 24.0)))
    return out


def paint_bare(grey: np.ndarray, cells: np.ndarray, cell: int) -> None:
    """Paint the bare pad over ``cells`` of ``grey``, in place: filled in from the pad around
    them (inpainting), so no edge or blob is left where the painted cells meet the rest (a
    piece counter would count flat squares' seams as pieces)."""
    mask = np.zeros(grey.shape, np.uint8)
    for r, c in zip(*np.nonzero(cells), strict=True):
        mask[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = 255
    if not mask.any():
        return
    src = np.clip(grey, 0, 255).astype(np.uint8)
    filled = cv2.inpaint(src, mask, max(3, cell // 2), cv2.INPAINT_TELEA).astype(np.float32)
    grey[mask > 0] = filled[mask > 0]


def presume_clear(
    grey: np.ndarray,
    visible: np.ndarray,
    first: np.ndarray,
    first_visible: np.ndarray,
) -> int:
    """Where a plain pad shows something now that it did not show when watching began (or it
    was hidden then), take its resting look to be the bare pad: in place, in ``grey``; the
    number of such cells. ``first``/``first_visible``: the zone's look at the first pass.

    A showing area is meant to be clear at rest, and it is armed only once it is seen still and
    mostly clear. When gemwatch starts watching it with people at it, what it shows by then may
    have been put down meanwhile (earphones laid where the cashier's hands rested): learning
    that as the resting look would hide the placement, and the later lift. What lay there from
    the first look on is learned as it is (a laptop sleeve on the desk all along).
    """
    cell = cell_size(grey.shape)
    energy, mean, valid = _cell_looks(grey, visible, cell)
    since = structural_change(first, grey, visible & first_visible, cell)
    fresh = valid & (~since.valid | since.changed) if since.cells else valid
    odd = bare_pad(energy, mean, valid, fresh)
    if odd is None:
        return 0
    paint_bare(grey, odd, cell)
    return int(odd.sum())


def weber_gain(ref: np.ndarray, cur: np.ndarray, visible: np.ndarray) -> float:
    vis = visible.astype(np.float32)
    return float((ref * vis).sum() / max((cur * vis).sum(), 1e-3))


#: A case's picture decides its state when at least this share of the telling cells match it
#: and not the other picture...
CASE_EVIDENCE = 0.2
#: ...and at least this many times as many as match the other picture and not it.
CASE_MARGIN = 2.0
#: Cells along a case window's longer side: finer than other zones' 16, since a door or drawer
#: front is often a thin strip in the picture and a hand covers whole cells of it.
CASE_CELLS = 24
#: A case whose shut and open pictures differ in fewer cells than this cannot be read: both
#: pictures show it the same (an "open" picture cut while it was shut). Measured on the POS
#: drawer's thin zone: its right pictures differ in 59-67 cells, two shut pictures in 0.
CASE_MIN_TELLING = 8
#: A state change seen once is forgotten when the case stays hidden longer than this.
CASE_PENDING_S = 0.6
#: A case's new state must be seen this long (agreeing passes) before it holds.
CASE_CONFIRM_S = 0.4
#: Passes are ``1 / fps`` apart in frame time only to within a frame or so (the source's frame
#: rate rarely divides evenly): durations measured in passes allow this much.
FRAME_JITTER_S = 0.02


@dataclass(frozen=True, slots=True)
class CaseEvidence:
    """A case's view against its closed and open pictures, over the cells where the two pictures
    differ (the door, the drawer, what lies behind them): the others cannot tell the states apart.

    Shares of those telling cells that match only the open picture, only the closed one, or
    neither (a hand, an arm or a sleeve over the case, a blurred pan); a cell that matches both
    says nothing.
    """

    open: float
    closed: float
    hidden: float
    cells: int

    def verdict(self) -> bool | None:
        """True open, False closed, None when the view does not say (mostly hidden, or both
        pictures explain about as much)."""
        if self.open >= CASE_EVIDENCE and self.open >= CASE_MARGIN * self.closed:
            return True
        if self.closed >= CASE_EVIDENCE and self.closed >= CASE_MARGIN * self.open:
            return False
        return None


@dataclass(frozen=True, slots=True)
class CasePictures:
    """A case's closed and open pictures (grey, the zone's window) and the cells where they
    differ: those alone can tell the states apart. The pictures do not change while the camera
    runs, so the telling cells are found once, not on every pass."""

    closed: np.ndarray
    opened: np.ndarray
    mask: np.ndarray
    cell: int
    telling: np.ndarray  # bool per cell

    @classmethod
    def of(cls, closed: np.ndarray, opened: np.ndarray, mask: np.ndarray) -> CasePictures:
        cell = max(4, round(max(closed.shape[:2]) / CASE_CELLS))
        return cls(closed, opened, mask, cell, structural_change(closed, opened, mask, cell).changed)

    def evidence(self, cur: np.ndarray) -> CaseEvidence:
        """Which of the two pictures the current view (grey, same window) looks like.

        No person mask is needed: whatever covers the case (the cashier's hands in the drawer,
        an arm across the door) matches neither picture and only lowers both shares, while the
        cells left in view still match one of them. So the state is read through partial
        occlusion, where a comparison with one picture alone could not tell an arm from an open
        door.
        """
        n = int(self.telling.sum())
        if n == 0:
            return CaseEvidence(0.0, 0.0, 1.0, 0)
        off_closed = structural_change(self.closed, cur, self.mask, self.cell).changed & self.telling
        off_open = structural_change(self.opened, cur, self.mask, self.cell).changed & self.telling
        return CaseEvidence(
            float((off_closed & ~off_open).sum()) / n,
            float((off_open & ~off_closed).sum()) / n,
            float((off_closed & off_open).sum()) / n,
            n,
        )


def case_evidence(closed: np.ndarray, opened: np.ndarray, cur: np.ndarray, mask: np.ndarray) -> CaseEvidence:
    """One view against a case's two pictures (:meth:`CasePictures.evidence`)."""
    return CasePictures.of(closed, opened, mask).evidence(cur)


@dataclass(slots=True)
class CaseVotes:
    """A case's state from its passes' verdicts: a change needs agreeing verdicts over
    ``CASE_CONFIRM_S`` (an arm swept across a closed door matches the open picture for a pass or
    two), and dates from its first verdict, so the opening's time is when it was first seen."""

    state: bool | None = None
    since: float | None = None  # when the current state was first seen
    pending: bool | None = None
    pending_since: float | None = None
    pending_seen: float | None = None

    def add(self, verdict: bool | None, ts: float) -> None:
        if verdict is None:  # hidden: the state stands; a change under way waits a while
            if self.pending_seen is not None and ts - self.pending_seen > CASE_PENDING_S:
                self.pending = self.pending_since = self.pending_seen = None
            return
        if verdict == self.state:  # contradicts a change under way
            self.pending = self.pending_since = self.pending_seen = None
            return
        if verdict != self.pending or self.pending_since is None:
            self.pending, self.pending_since = verdict, ts
        self.pending_seen = ts
        if ts - self.pending_since >= CASE_CONFIRM_S - FRAME_JITTER_S:
            self.state, self.since = verdict, self.pending_since
            self.pending = self.pending_since = self.pending_seen = None


# -------------------------------------------------------------------------------- registration

_ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 40, 1e-4)
#: An alignment whose correlation falls below this is not trusted (the zone is not compared).
MIN_ALIGNMENT = 0.5
#: A zone's own alignment is used only when it matches its armed look this well; otherwise the
#: zone follows the whole view (its content changed, which is what is being measured).
GOOD_ALIGNMENT = 0.75


def _h(a: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(a, dtype=np.float64), [0.0, 0.0, 1.0]])


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2×3 affine ``a ∘ b`` (apply ``b`` first)."""
    out: np.ndarray = (_h(a) @ _h(b))[:2]
    return out


def invert(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.linalg.inv(_h(a))[:2]
    return out


def align(
    template: np.ndarray,
    image: np.ndarray,
    warp: np.ndarray,
    template_mask: np.ndarray | None = None,
    image_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, float] | None:
    """Refine ``warp`` (template pixels → image pixels) so the image matches the template
    (enhanced correlation coefficient, affine), ignoring masked-out (zero) pixels such as
    people. None when it does not converge."""
    t_mask = template_mask if template_mask is not None else np.full(template.shape, 255, np.uint8)
    i_mask = image_mask if image_mask is not None else np.full(image.shape[:2], 255, np.uint8)
    try:
        cc, out = cv2.findTransformECCWithMask(
            template, image, t_mask, i_mask, warp.astype(np.float32), cv2.MOTION_AFFINE, _ECC_CRITERIA, 5
        )
    except cv2.error:
        return None
    return np.asarray(out, dtype=np.float64), float(cc)


#: A view region with at least this many ORB features has texture enough to tell its own place
#: from another: a picture of it must then share at least ``SCENE_MIN_INLIERS`` agreeing
#: features. Measured on the POS clips: the same desk and drawer, from the same recording or the
#: other one (phone held elsewhere), 53-360 agreeing; frames of four other scenes 5-9 (and the
#: classroom desk: 78-159 for its own pictures, 7-9 for the others).
SCENE_MIN_FEATURES = 150
SCENE_MIN_INLIERS = 25
#: Features are taken around a zone out to this share of its longer side.
FEATURE_MARGIN = 0.5


@dataclass(frozen=True, slots=True)
class FeatureMatch:
    """ORB features of a view region matched into a picture."""

    warp: np.ndarray | None  # view pixels → picture pixels (2×3); None when too few agree
    features: int  # features found in the view's region
    inliers: int  # matches that agree with ``warp``

    @property
    def other_scene(self) -> bool:
        """The region has texture enough to judge and too few of its features are in the
        picture: a picture of another place (ECC alone can still correlate 0.7 with one)."""
        return self.features >= SCENE_MIN_FEATURES and self.inliers < SCENE_MIN_INLIERS


def feature_match(
    view: np.ndarray, picture: np.ndarray, region: np.ndarray, min_inliers: int = 12
) -> FeatureMatch:
    """A first guess of ``view`` pixels → ``picture`` pixels from ORB features inside ``region``
    (a mask of ``view``), with how many features there are and how many agree.

    ECC alignment only refines a guess: it converges when the picture is a few pixels off, not
    when a reference picture was taken with the camera re-mounted or a phone held elsewhere.
    Features matched within the zone's surroundings (not the whole view: the floor and the
    counter top move differently under parallax) give a guess close enough to refine.
    """
    orb = cv2.ORB.create(3000, fastThreshold=10)
    kv, dv = orb.detectAndCompute(view, region)
    kp, dp = orb.detectAndCompute(picture, None)
    if dv is None or dp is None or len(kv) < min_inliers or len(kp) < min_inliers:
        return FeatureMatch(None, len(kv), 0)
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(dv, dp, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < 3:
        return FeatureMatch(None, len(kv), 0)
    src = np.array([kv[m.queryIdx].pt for m in good], dtype=np.float32)
    dst = np.array([kp[m.trainIdx].pt for m in good], dtype=np.float32)
    found, inliers = cv2.estimateAffine2D(src, dst, ransacReprojThreshold=5.0)
    agree = 0 if inliers is None else int(inliers.sum())
    if found is None or agree < min_inliers:
        return FeatureMatch(None, len(kv), agree)
    return FeatureMatch(np.asarray(found, dtype=np.float64), len(kv), agree)


#: A fixed camera's zone picture whose features sit this share of the view's larger side away
#: from where they are in the first frame is reported (a warning, at start and by check-config).
#: Measured on pos_counter_theft2 (850 px high; zone corners moved by the features' fit): its
#: own frames 3-6 px off, 20-26 px after the phone moved (7.4 s, 9 s: still read right); frames
#: of the other recording of that desk 16-43 px (32-43 px at 4 s and 15 s: read wrong, the
#: drawer "open" throughout). A fixed camera's own pictures are a pixel or two off.
PICTURE_SHIFT_WARN = 0.035


def picture_shift(
    match: FeatureMatch, polygon: Sequence[tuple[float, float]], size: tuple[int, int]
) -> float | None:
    """How far (pixels) a zone's corners move from the view into a picture, by the features'
    fit; None when too few features agree to say."""
    if match.warp is None:
        return None
    corners = np.asarray(polygon, dtype=np.float64) * size
    moved = corners @ match.warp[:, :2].T + match.warp[:, 2]
    return float(np.hypot(*(moved - corners).T).max())


#: A case's own fit may move its window's corners at most this share of the window's diagonal
#: away from the start it was refined from (its last fit, or that moved with the whole view).
MAX_FIT_JUMP = 0.25


def near_fit(found: np.ndarray, start: np.ndarray, window: ZoneWindow) -> bool:
    """Whether a fit (window pixels → frame pixels) lies near its start: ECC over the few pixels
    that people leave visible can converge on a stretched or far-off warp that still correlates."""
    w, h = window.width, window.height
    corners = np.array([[0.0, 0.0], [w, 0.0], [0.0, h], [w, h]])
    a = corners @ found[:, :2].T + found[:, 2]
    b = corners @ start[:, :2].T + start[:, 2]
    diagonal = float(np.hypot(*(b[3] - b[0])))
    return float(np.hypot(*(a - b).T).max()) <= MAX_FIT_JUMP * max(diagonal, 1.0)


class SceneTracker:
    """Follows a moving camera: where the first analysed frame's pixels are in this frame.

    ECC alignment of a small grey copy of each frame to a recent key frame (re-taken every
    ``KEY_S`` seconds while alignment is good, so people who came and went do not pull on it),
    starting from the last answer, with people's boxes left out. Good enough to place people's
    feet in the zones drawn on the first frame; each appearance zone then refines its own fit.
    """

    WIDTH = 160
    KEY_S = 2.0

    def __init__(self) -> None:
        self._key: np.ndarray | None = None
        self._key_warp = np.eye(2, 3)  # first frame → key frame (small pixels)
        self._key_ts = 0.0
        self._rel = np.eye(2, 3)  # key frame → current frame (small pixels)

    def update(self, grey: np.ndarray, ts: float, boxes: np.ndarray | None = None) -> np.ndarray | None:
        """First-frame pixels → this frame's pixels (2×3), or None when the view is lost."""
        s = self.WIDTH / grey.shape[1]
        small = cv2.resize(grey, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        if self._key is None:
            self._key, self._key_ts = small, ts
            return np.eye(2, 3)
        mask = np.full(small.shape, 255, np.uint8)
        for x1, y1, x2, y2 in boxes if boxes is not None else np.zeros((0, 4)):
            cv2.rectangle(mask, (int(x1 * s), int(y1 * s)), (int(x2 * s), int(y2 * s)), 0, -1)
        found = align(self._key, small, self._rel, image_mask=mask)
        if found is None:
            return None
        rel, cc = found
        if cc < MIN_ALIGNMENT:
            return None
        self._rel = np.asarray(rel, dtype=np.float64)
        total = compose(self._rel, self._key_warp)
        if ts - self._key_ts >= self.KEY_S and cc >= 0.8:
            self._key, self._key_warp, self._key_ts, self._rel = small, total, ts, np.eye(2, 3)
        full = total.copy()
        full[:, 2] /= s
        return full


def transform_boxes(a: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Axis-aligned boxes through a 2×3 affine (the bounding box of the moved corners)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return boxes
    x1, y1, x2, y2 = boxes.T
    cx = np.stack([x1, x2, x1, x2])
    cy = np.stack([y1, y1, y2, y2])
    xs = a[0, 0] * cx + a[0, 1] * cy + a[0, 2]
    ys = a[1, 0] * cx + a[1, 1] * cy + a[1, 2]
    out: np.ndarray = np.stack([xs.min(0), ys.min(0), xs.max(0), ys.max(0)], axis=1)
    return out


# ------------------------------------------------------------------------------- people masks

_ARMS = ((5, 7, 9), (6, 8, 10))  # COCO: shoulder, elbow, wrist
_LIMBS = (
    (5, 7),
    (7, 9),
    (6, 8),
    (8, 10),
    (5, 6),
    (11, 12),
    (5, 11),
    (6, 12),
    (11, 13),
    (13, 15),
    (12, 14),
    (14, 16),
)
_KP_SCORE = 0.3


def person_mask(
    shape: tuple[int, int], person: Person, to_window: np.ndarray, margin: float = 0.05
) -> np.ndarray:
    """Where a person hides a window (bool, ``shape``); ``to_window`` maps frame → window pixels.

    With a pose whose two arms are complete (shoulder, elbow, wrist) the mask is the body
    itself: limbs as thick strokes, torso, head and hands a little beyond the wrists, so an
    associate seated behind the counter hides only where their arms are, not the whole counter
    their box spans. Otherwise (no pose, an arm not found) it is the whole box: a hand that
    may be anywhere in the box is assumed to be there.
    """
    out = np.zeros(shape, np.uint8)
    kp = person.keypoints
    if kp is None or not all(kp[i, 2] >= _KP_SCORE for arm in _ARMS for i in arm):
        x1, y1, x2, y2 = transform_boxes(to_window, np.array([person.box]))[0]
        mx, my = (x2 - x1) * margin, (y2 - y1) * margin
        cv2.rectangle(
            out, (math.floor(x1 - mx), math.floor(y1 - my)), (math.ceil(x2 + mx), math.ceil(y2 + my)), 1, -1
        )
        return out.astype(bool)
    pts = kp[:, :2].astype(np.float64) @ to_window[:, :2].T + to_window[:, 2]
    ok = kp[:, 2] >= _KP_SCORE
    shoulder = float(np.hypot(*(pts[5] - pts[6])))
    forearm = max(float(np.hypot(*(pts[9] - pts[7]))), float(np.hypot(*(pts[10] - pts[8]))))
    thick = max(3, round(0.4 * max(shoulder, 0.8 * forearm)))
    p = np.round(pts).astype(np.int32)
    for a, b in _LIMBS:
        if ok[a] and ok[b]:
            cv2.line(out, tuple(p[a]), tuple(p[b]), 1, thick)
    if ok[[5, 6, 12, 11]].all():
        cv2.fillPoly(out, [p[[5, 6, 12, 11]]], 1)
    for elbow, wrist in ((7, 9), (8, 10)):
        reach = pts[wrist] - pts[elbow]
        centre = np.round(pts[wrist] + 0.35 * reach).astype(np.int32)
        cv2.circle(
            out, (int(centre[0]), int(centre[1])), max(3, round(0.55 * float(np.hypot(*reach)))), 1, -1
        )
    head = [i for i in range(5) if ok[i]]
    if head:
        c = np.round(pts[head].mean(axis=0)).astype(np.int32)
        cv2.circle(out, (int(c[0]), int(c[1])), max(3, round(0.6 * shoulder)), 1, -1)
    return out.astype(bool)


# ------------------------------------------------------------------------------------ geometry


@dataclass(frozen=True, slots=True)
class ZoneWindow:
    """Where a zone is analysed: a rectangle of the first frame's view, sampled at ``scale``.

    ``base`` maps window pixels to first-frame pixels; ``mask`` is the zone (or its band).
    """

    base: np.ndarray
    width: int
    height: int
    scale: float
    mask: np.ndarray

    def sample(self, image: np.ndarray, warp: np.ndarray) -> np.ndarray:
        """The window cut out of ``image`` through ``warp`` (window pixels → image pixels)."""
        if self.scale < 0.67:  # strong downscale: smooth first so small pieces are averaged, not aliased
            image = cv2.GaussianBlur(image, (0, 0), 0.5 / self.scale)
        out: np.ndarray = cv2.warpAffine(
            image,
            warp.astype(np.float64),
            (self.width, self.height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return out

    def box_mask(self, boxes: np.ndarray, margin: float = 0.05) -> np.ndarray:
        """Mask of boxes given in this window's pixels, each grown by ``margin`` of its size."""
        out = np.zeros((self.height, self.width), bool)
        for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4):
            mx, my = (x2 - x1) * margin, (y2 - y1) * margin
            u1, v1 = max(math.floor(x1 - mx), 0), max(math.floor(y1 - my), 0)
            u2, v2 = min(math.ceil(x2 + mx), self.width), min(math.ceil(y2 + my), self.height)
            if u2 > u1 and v2 > v1:
                out[v1:v2, u1:u2] = True
        return out


def zone_window(
    polygon: Sequence[tuple[float, float]], width: int, height: int, max_px: int, band: float = 0.0,
    margin: float = 0.0,
) -> ZoneWindow:  # fmt: skip
    """The analysis window of a normalised polygon on a ``width``×``height`` view.

    With ``band`` > 0 the mask is a ring around the polygon, ``band`` times the polygon's size
    wide (the counter top around a showing pad); ``margin`` widens the window (not the mask),
    for aligning on the zone's surroundings.
    """
    pts = np.asarray(polygon, dtype=np.float64) * [width, height]
    x1, y1 = pts.min(0)
    x2, y2 = pts.max(0)
    grow = (band + margin) * max(x2 - x1, y2 - y1)
    x1, y1 = max(0.0, x1 - grow), max(0.0, y1 - grow)
    x2, y2 = min(float(width), x2 + grow), min(float(height), y2 + grow)
    span = max(x2 - x1, y2 - y1, 1.0)
    scale = min(1.0, max_px / span)
    w = max(8, round((x2 - x1) * scale))
    h = max(8, round((y2 - y1) * scale))
    poly_px = np.round((pts - [x1, y1]) * scale).astype(np.int32)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [poly_px], 1)
    if band > 0:
        r = max(1, round(band * float(np.ptp(pts, axis=0).max()) * scale))
        ring = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        mask = ((np.asarray(ring) > 0) & (mask == 0)).astype(np.uint8)
    base = np.array([[1.0 / scale, 0.0, x1], [0.0, 1.0 / scale, y1]])
    return ZoneWindow(base, w, h, scale, mask.astype(bool))


# ------------------------------------------------------------------------------- per-zone state


@dataclass(slots=True)
class Reference:
    """A zone's resting appearance: blurred grey at analysis scale and its piece count."""

    grey: np.ndarray
    count: int | None
    ts: float
    known: np.ndarray | None = None  # pixels seen when it was learned (None: all)


@dataclass(slots=True)
class _Look:
    """One window's picture this pass: grey, what is hidden, and whether something moved."""

    grey: np.ndarray
    visible: np.ndarray
    visible_share: float
    moving: bool


@dataclass(slots=True)
class _Track:
    zone: Zone
    window: ZoneWindow
    band: ZoneWindow | None = None
    context: ZoneWindow | None = None  # stabilised cameras: the zone and its surroundings, for alignment
    template: np.ndarray | None = None
    template_mask: np.ndarray | None = None  # 255 where the template shows the scene, 0 where people were
    template_hidden: float = 1.0  # share of the template hidden by people when it was taken
    ctx_warp: np.ndarray | None = None  # context pixels → frame pixels, last good alignment
    ctx_scene: np.ndarray | None = None  # the scene warp when ctx_warp was found
    prev: np.ndarray | None = None
    prev_band: np.ndarray | None = None
    prev_ts: float | None = None
    still_since: float | None = None
    ref: Reference | None = None
    open_ref: Reference | None = None
    band_ref: Reference | None = None
    arming_since: float | None = None
    arming_counts: list[int] = field(default_factory=list)
    counts: deque[int] = field(default_factory=lambda: deque(maxlen=5))
    was_open: bool | None = None
    votes: CaseVotes | None = None  # cases with both pictures: the passes' verdicts
    case_pictures: CasePictures | None = None  # ... and the pictures, with their telling cells
    case_told: bool = False  # its first state was checked for pictures that read backwards
    sensor_open: bool | None = None
    cells: CellMemory | None = None
    state: ZoneState | None = None
    started: float | None = None  # the zone's first pass
    first: _Look | None = None  # its first look with people known (what lay there from the start)


@dataclass(slots=True)
class CellMemory:
    """What each cell of a zone last showed against the reference, kept while it is hidden.

    A piece put on a counter and then covered by the customer's sleeve has not gone; the share
    of the zone that gained (or lost) structure is over the cells ever compared, each at what it
    last showed, not over the cells visible this pass, so a hand over the piece does not read as
    the piece taken away.
    """

    known: np.ndarray  # bool per cell: compared at least once
    gained: np.ndarray
    lost: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> CellMemory:
        return cls(np.zeros(shape, bool), np.zeros(shape, bool), np.zeros(shape, bool))

    def update(self, change: Change) -> tuple[float, float, float]:
        """Fold this pass's cells in; the zone's shares gained and lost, and the share of the
        gained cells hidden now (a piece put there may be under the sleeve)."""
        valid = change.valid
        self.known |= valid
        self.gained = np.where(valid, change.gained, self.gained)
        self.lost = np.where(valid, change.changed & ~change.gained, self.lost)
        n = max(int(self.known.sum()), 1)
        hidden = float((self.gained & ~valid).sum()) / max(int(self.gained.sum()), 1)
        return float(self.gained.sum()) / n, float(self.lost.sum()) / n, hidden


def _grey(bgr: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    out: np.ndarray = cv2.GaussianBlur(g.astype(np.float32), (0, 0), 1.0)
    return out


def parse_sensor_payload(payload: bytes | str, open_payloads: Sequence[str]) -> bool:
    """True (open) when the payload is one of ``open_payloads``, also inside a JSON
    ``{"state": ...}``, or ``{"contact": false}`` (Zigbee2MQTT contact sensors report
    ``contact: false`` when the door is open)."""
    import json

    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    text = text.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            return False
        if isinstance(doc, dict):
            if "contact" in doc:
                return doc["contact"] is False
            for key in ("state", "status", "value"):
                if key in doc:
                    return str(doc[key]).strip() in open_payloads
        return False
    return text in open_payloads


def _moved(grey: np.ndarray, prev: np.ndarray | None, visible: np.ndarray, area: int) -> bool:
    if prev is None or not visible.any():
        return False
    g = weber_gain(prev, grey, visible)
    diff = shift_tolerant_diff(grey * np.float32(g), prev)
    delta = max(MOTION_DELTA, 0.08 * float(prev[visible].mean()))
    return float(((diff > delta) & visible).sum()) / max(area, 1) > MOTION_FRACTION


class ZonePictureError(ValueError):
    """A zone picture (``reference_image``, ``case.open_image``) cannot serve this camera: it
    does not read, or it is not this camera's view. A config problem: a restart does not fix it.
    The message is one line naming the camera, the zone, the picture and its key; ``zone_id``
    and ``key`` say the same for ``check-config`` to find the key's line."""

    def __init__(self, message: str, zone_id: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.zone_id = zone_id
        self.key = key


class ZoneWatcher:
    """The appearance of one camera's tray, case and showing-area zones over time."""

    def __init__(self, camera: Camera, cfg: ZoneAnalysis) -> None:
        self.cfg = cfg
        self.camera = camera
        self.scene: SceneTracker | None = SceneTracker() if camera.stabilise else None
        self.scene_warp: np.ndarray | None = None  # first-frame pixels → current frame pixels
        self._tracks: dict[str, _Track] = {}
        self._size: tuple[int, int] | None = None
        self._last_ts: float | None = None
        self._zones = [z for z in camera.zones if z.kind in APPEARANCE_KINDS]
        self._pending_sensor: dict[str, bool] = {}
        # the first analysed frame, grey: stabilised cameras follow it; zone pictures are checked
        # against it (another scene is refused)
        self._first: np.ndarray | None = None
        self._picture_fits: dict[tuple[str, str], tuple[np.ndarray, float] | None] = {}

    @property
    def active(self) -> bool:
        return bool(self._zones)

    def set_sensor(self, zone_id: str, is_open: bool) -> None:
        """A contact/lock sensor reported this case open or closed (from the MQTT thread)."""
        track = self._tracks.get(zone_id)
        if track is not None:
            track.sensor_open = is_open
        else:
            self._pending_sensor[zone_id] = is_open

    # -- set-up

    def _setup(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        self._size = (w, h)
        if self.scene is not None or any(
            z.reference_image or z.case_params().open_image for z in self._zones
        ):
            self._first = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        for zone in self._zones:
            window = zone_window(zone.polygon, w, h, self.cfg.max_px)
            band = None
            if zone.kind == ZoneKind.SHOWING_AREA:
                band = zone_window(
                    zone.polygon, w, h, self.cfg.max_px, band=zone.showing_params().boundary_margin
                )
            track = _Track(zone, window, band)
            if self.scene is not None:
                track.context = zone_window(zone.polygon, w, h, min(self.cfg.max_px, 192), margin=0.1)
                track.template = _grey(track.context.sample(frame, track.context.base))
                track.ctx_warp, track.ctx_scene = track.context.base, np.eye(2, 3)
            track.sensor_open = self._pending_sensor.pop(zone.id, None)
            if zone.reference_image is not None:
                ref = zone.reference_image
                track.ref = self._reference_from_image(ref, "reference_image", track, window, resting=True)
                if band is not None:
                    track.band_ref = self._reference_from_image(ref, "reference_image", track, band)
            if zone.kind == ZoneKind.CASE and zone.case_params().open_image is not None:
                opened = zone.case_params().open_image
                track.open_ref = self._reference_from_image(opened, "case.open_image", track, window)
            self._tracks[zone.id] = track

    def _picture_match(self, track: _Track, picture: np.ndarray) -> FeatureMatch:
        """ORB features of the zone's surroundings in the first frame, found in ``picture``:
        whether it shows another place (:attr:`FeatureMatch.other_scene`), and a first guess of
        where. The surroundings are half the zone's size again on every side: the zone's own
        context (10 %) is often mostly the people at it, whose features move between pictures."""
        assert self._first is not None
        h, w = self._first.shape[:2]
        poly = np.asarray(track.zone.polygon, dtype=np.float64) * (w, h)
        (x1, y1), (x2, y2) = poly.min(0), poly.max(0)
        m = FEATURE_MARGIN * max(x2 - x1, y2 - y1)
        region = np.zeros((h, w), np.uint8)
        region[
            max(round(y1 - m), 0) : min(round(y2 + m), h), max(round(x1 - m), 0) : min(round(x2 + m), w)
        ] = 255
        match = feature_match(self._first.astype(np.uint8), picture.astype(np.uint8), region)
        if match.other_scene:
            log.info(
                "zone %s: %d of the %d features around it found in the picture: another scene",
                track.zone.id, match.inliers, match.features,
            )  # fmt: skip
        return match

    def _align_picture(self, track: _Track, picture: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Context pixels → ``picture`` pixels for a stabilised zone's reference picture: ECC from
        where the zone is in the first frame, and from a feature-matched guess; the better wins.
        None when the picture is of another place (:attr:`FeatureMatch.other_scene`)."""
        assert track.context is not None and track.template is not None
        starts = [track.context.base]
        match = self._picture_match(track, picture)
        if match.other_scene:
            return None
        if match.warp is not None:
            starts.append(compose(match.warp, track.context.base))
        best: tuple[np.ndarray, float] | None = None
        for start in starts:
            found = align(track.template, picture, start)
            if found is not None and (best is None or found[1] > best[1]):
                best = found
        return best

    def _reference_from_image(
        self, path: Path | None, key: str, track: _Track, window: ZoneWindow, resting: bool = False
    ) -> Reference:
        """The zone's reference from the picture at ``path`` (the zone's ``key``); raises
        ZonePictureError when it cannot be read or does not show this camera's view."""
        zone = track.zone
        assert path is not None and self._size is not None
        name = PICTURE_NAMES[key.split(".")[-1]]
        what = f"camera '{self.camera.id}', zone '{zone.id}': the {name} {path} ({key})"
        try:
            image = read_picture(path)
        except PictureReadError as exc:
            raise ZonePictureError(f"{what} cannot be read: {exc}", zone.id, key) from None
        save_new = "save a new one (the console's /api/v1/cameras/<camera>/frame.jpg)"
        if (image.shape[1], image.shape[0]) != self._size:
            # scaled, even to another shape: a CCTV sub-stream (704x576) is often the main
            # stream (1920x1080) squeezed, so a picture of either fits once scaled; a picture of
            # another place is then refused by its features (below)
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        warp = window.base
        fit = (zone.id, str(path))
        mismatch = (
            f"{what} does not match the camera's view (a picture of another scene, or the "
            f"camera has moved too far since); {save_new}"
        )
        if track.context is not None and track.template is not None and self._first is not None:
            if fit not in self._picture_fits:
                grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
                self._picture_fits[fit] = self._align_picture(track, grey)
            found = self._picture_fits[fit]
            if found is None or found[1] < MIN_ALIGNMENT:
                raise ZonePictureError(mismatch, zone.id, key)
            warp = compose(found[0], compose(invert(track.context.base), window.base))
        elif self._first is not None and fit not in self._picture_fits:
            # a fixed camera takes the picture where it is, but a picture of another place
            # would be learned as the zone at rest and report a change for ever
            self._picture_fits[fit] = None
            match = self._picture_match(track, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
            if match.other_scene:
                raise ZonePictureError(mismatch, zone.id, key)
            shift = picture_shift(match, zone.polygon, self._size)
            if shift is not None and shift > PICTURE_SHIFT_WARN * max(self._size):
                log.warning(
                    "%s is %.0f px off the camera's view (the camera has moved since it was taken, "
                    "or it comes from another recording): this zone will look changed; take a new "
                    "one, or set the camera's stabilise: true",
                    what, shift,
                )  # fmt: skip
        grey = _grey(window.sample(image, warp))
        count = None
        if zone.kind in (ZoneKind.TRAY, ZoneKind.SHOWING_AREA):
            count = self._count(zone, grey, window.mask).count
        return Reference(grey, count, 0.0)

    # -- every pass

    def update(self, image: np.ndarray, ts: float, people: tuple[Person, ...]) -> dict[str, ZoneState]:
        """Zone states at ``ts``; between passes (``fps``) the last states are repeated."""
        if not self.active:
            return {}
        if self._size is None:
            self._setup(image)
        if self._last_ts is not None and ts - self._last_ts < 0.8 / self.cfg.fps:
            return {zid: t.state for zid, t in self._tracks.items() if t.state is not None}
        self._last_ts = ts
        frame_grey: np.ndarray | None = None
        if self.scene is not None:
            frame_grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
        boxes = np.array([p.box for p in people], dtype=np.float64).reshape(-1, 4)
        if self.scene is not None and frame_grey is not None:
            warp = self.scene.update(frame_grey, ts, boxes)
            if warp is not None:
                self.scene_warp = warp
        people_mask = None
        if frame_grey is not None:
            people_mask = np.full(frame_grey.shape, 255, np.uint8)
            for x1, y1, x2, y2 in boxes:
                cv2.rectangle(people_mask, (int(x1), int(y1)), (int(x2), int(y2)), 0, -1)
        out: dict[str, ZoneState] = {}
        for zid, track in self._tracks.items():
            warp = self._zone_warp(track, frame_grey, people_mask)
            track.state = self._update_zone(track, image, ts, people, boxes, warp)
            out[zid] = track.state
        return out

    def _zone_warp(
        self, track: _Track, frame_grey: np.ndarray | None, people_mask: np.ndarray | None
    ) -> np.ndarray | None:
        """Window pixels → frame pixels for this pass; None when a moving camera lost the zone."""
        if track.context is None or frame_grey is None or people_mask is None:
            return track.window.base
        assert track.template is not None and track.ctx_warp is not None and track.ctx_scene is not None
        # Start from the zone's last fit (the camera moves little between two passes), then from
        # the last fit moved with the whole view; the first that matches the template wins.
        # People are left out on both sides: the zone is aligned on the counter, not on arms.
        starts = [track.ctx_warp]
        if self.scene_warp is not None:
            starts.append(compose(self.scene_warp, compose(invert(track.ctx_scene), track.ctx_warp)))
        warp = None
        for start in starts:
            found = align(track.template, frame_grey, start, track.template_mask, people_mask)
            if (
                track.zone.kind == ZoneKind.CASE
                and found is not None
                and not near_fit(found[0], start, track.context)
            ):
                continue  # a case is mostly under people: few pixels to fit, a wild fit can still correlate
            if found is not None and found[1] >= GOOD_ALIGNMENT:
                warp = found[0]
                break
        if warp is not None:
            track.ctx_warp = warp
            track.ctx_scene = self.scene_warp if self.scene_warp is not None else np.eye(2, 3)
        if warp is None:
            if self.scene_warp is None:
                return None
            warp = starts[-1]  # the zone looks different now (a tray left): follow the whole view
        elif track.ref is None:
            self._cleaner_template(track, frame_grey, people_mask, warp)
        return compose(warp, compose(invert(track.context.base), track.window.base))

    @staticmethod
    def _cleaner_template(
        track: _Track, frame_grey: np.ndarray, people_mask: np.ndarray, warp: np.ndarray
    ) -> None:
        """Until the zone is armed, keep the alignment template with the fewest people in it."""
        assert track.context is not None
        size = (track.context.width, track.context.height)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        mask = cv2.warpAffine(people_mask, warp, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
        hidden = 1.0 - float((mask > 0).mean())
        if hidden < track.template_hidden - 0.05:
            track.template = cv2.GaussianBlur(
                cv2.warpAffine(frame_grey, warp, size, flags=flags), (0, 0), 1.0
            )
            track.template_mask = np.where(mask > 0, 255, 0).astype(np.uint8)
            track.template_hidden = hidden

    def _count(
        self, zone: Zone, grey: np.ndarray, mask: np.ndarray, area_px: float | None = None
    ) -> PieceCount:
        if zone.kind == ZoneKind.TRAY:
            p = zone.tray_params()
            return count_pieces(grey, mask, p.piece_area, p.min_contrast, area_px)
        s = zone.showing_params()
        return count_pieces(grey, mask, s.piece_area, s.min_contrast, area_px)

    def _look(
        self,
        window: ZoneWindow,
        image: np.ndarray,
        warp: np.ndarray,
        people: tuple[Person, ...],
        prev: np.ndarray | None,
    ) -> _Look:
        grey = _grey(window.sample(image, warp))
        hidden = np.zeros((window.height, window.width), bool)
        to_window = invert(warp)
        for person in people:
            hidden |= person_mask(hidden.shape, person, to_window)
        visible = window.mask & ~hidden
        area = max(int(window.mask.sum()), 1)
        share = float(visible.sum()) / area
        return _Look(grey, visible, share, _moved(grey, prev, visible, area))

    def _update_zone(
        self,
        track: _Track,
        image: np.ndarray,
        ts: float,
        people: tuple[Person, ...],
        boxes: np.ndarray,
        warp: np.ndarray | None,
    ) -> ZoneState:
        zone, win = track.zone, track.window
        sensor = track.sensor_open if zone.kind == ZoneKind.CASE else None
        base = ZoneState(
            zone_id=zone.id,
            armed=track.ref is not None,
            reference_count=track.ref.count if track.ref is not None else None,
            open=sensor if sensor is not None else track.was_open,
            open_source="sensor"
            if sensor is not None
            else ("appearance" if track.was_open is not None else None),
        )
        if warp is None:
            track.prev = track.prev_band = None
            track.still_since = track.arming_since = None
            return replace(base, occluded=1.0, moving=True)
        if zone.kind == ZoneKind.CASE and track.ref is not None and track.open_ref is not None:
            return self._update_case(track, image, ts, warp, base)
        recent = track.prev_ts is not None and ts - track.prev_ts <= 2.0
        look = self._look(win, image, warp, people, track.prev if recent else None)
        band_look = None
        if track.band is not None:
            band_warp = compose(warp, compose(invert(win.base), track.band.base))
            band_look = self._look(track.band, image, band_warp, people, track.prev_band if recent else None)
        if track.started is None:
            track.started = ts
        if track.first is None and (people or ts - track.started >= FIRST_LOOK_S - FRAME_JITTER_S):
            track.first = look
        track.prev, track.prev_ts = look.grey, ts
        track.prev_band = band_look.grey if band_look is not None else None
        occluded = 1.0 - look.visible_share
        if look.moving or look.visible_share < self.cfg.min_visible:
            track.still_since = track.arming_since = None
            track.arming_counts.clear()
            track.counts.clear()  # counts agree only within one still stretch
            return replace(base, occluded=occluded, moving=look.moving)
        if track.still_since is None:
            track.still_since = ts
        if ts - track.still_since < self.cfg.settle_s - 1e-6:
            return replace(base, occluded=occluded)
        full = look.visible_share >= FULL_VIEW
        is_tray = zone.kind == ZoneKind.TRAY
        if track.ref is None:
            if is_tray and not full:  # a tray is armed with all its pieces in view
                return replace(base, occluded=occluded)
            if track.arming_since is None:
                track.arming_since = ts
            if is_tray:
                track.arming_counts.append(self._count(zone, look.grey, win.mask).count)
            if ts - track.arming_since < self.cfg.arm_s - 1e-6:
                return replace(base, occluded=occluded)
            ref_count = None
            if track.arming_counts:
                values, freq = np.unique(track.arming_counts, return_counts=True)
                ref_count = int(values[np.argmax(freq)])
            resting = look.grey.copy()
            if zone.kind == ZoneKind.SHOWING_AREA and track.first is not None:
                presumed = presume_clear(resting, look.visible, track.first.grey, track.first.visible)
                if presumed:
                    log.info(
                        "zone %s: %d cells show something that was not there when watching began: "
                        "presumed put there since", zone.id, presumed,
                    )  # fmt: skip
            track.ref = Reference(resting, ref_count, ts, look.visible.copy())
            track.cells = None
            if (
                track.context is not None and track.ctx_warp is not None
            ):  # align to the armed view from now on
                track.template = _grey(track.context.sample(image, track.ctx_warp))
                hidden = track.context.box_mask(transform_boxes(invert(track.ctx_warp), boxes))
                track.template_mask = np.where(hidden, 0, 255).astype(np.uint8)
                track.template_hidden = float(hidden.mean())
            base = replace(base, armed=True, reference_count=ref_count)
        ref = track.ref
        common = look.visible & ref.known if ref.known is not None else look.visible
        zone_px = max(int(win.mask.sum()), 1)
        if float(common.sum()) / zone_px < self.cfg.min_visible:
            return replace(base, occluded=occluded)
        change = structural_change(ref.grey, look.grey, common)
        added, removed, hidden_added = change.added, change.removed, 0.0
        if change.changed.size:
            if track.cells is None or track.cells.known.shape != change.changed.shape:
                track.cells = CellMemory.empty(change.changed.shape)
            added, removed, hidden_added = track.cells.update(change)
        counted: PieceCount | None = None
        ref_count = ref.count
        if is_tray and full:
            counted = self._count(zone, look.grey, win.mask)
        elif zone.kind == ZoneKind.SHOWING_AREA:
            # pieces in the part seen now and in the reference, against the reference's own pieces there
            counted = self._count(zone, look.grey, common, zone_px)
            ref_count = self._count(zone, ref.grey, common, zone_px).count
            counted = replace(counted, confidence=counted.confidence * float(common.sum()) / zone_px)
        count = conf = None
        if counted is not None:
            track.counts.append(counted.count)
            agree = sum(1 for c in track.counts if c == counted.count) / len(track.counts)
            count, conf = counted.count, counted.confidence * agree
        else:
            track.counts.clear()
        outside = outside_change = None
        if track.band is not None and band_look is not None and not band_look.moving:
            outside, outside_change = self._band(track, band_look, ts)
        if zone.kind == ZoneKind.CASE:
            track.was_open = self._case_open(track, change.score, ts)
            if sensor is None:
                base = replace(base, open=track.was_open, open_source="appearance")
        self._drift(track, look.grey, common, ts, change.score, count)
        return replace(
            base,
            measured=True,
            occluded=occluded,
            change=change.score,
            added=added,
            removed=removed,
            hidden_added=hidden_added,
            count=count,
            count_confidence=float(conf) if conf is not None else 0.0,
            reference_count=ref_count,
            outside_count=outside,
            outside_change=outside_change,
        )

    def _band(self, track: _Track, look: _Look, ts: float) -> tuple[int | None, float | None]:
        """The counter top around a showing pad: new pieces there, and how much changed."""
        assert track.band is not None
        s = track.zone.showing_params()
        full = look.visible_share >= FULL_VIEW
        if track.band_ref is None:
            if not full:
                return None, None
            now = count_pieces(look.grey, track.band.mask, s.piece_area, s.min_contrast).count
            track.band_ref = Reference(look.grey.copy(), now, ts)
        change = structural_change(track.band_ref.grey, look.grey, look.visible).score
        if not full:
            return None, change
        now = count_pieces(look.grey, track.band.mask, s.piece_area, s.min_contrast).count
        return max(0, now - (track.band_ref.count or 0)), change

    def _update_case(
        self, track: _Track, image: np.ndarray, ts: float, warp: np.ndarray, base: ZoneState
    ) -> ZoneState:
        """A case with both pictures: read every pass, hands and arms over it or not.

        People are not masked out and stillness is not awaited (a seated cashier's box covers
        the whole drawer, and hands move in it while it is open): the two pictures themselves
        tell what is hidden (see :class:`CasePictures`), and :class:`CaseVotes` what holds.
        """
        win = track.window
        grey = _grey(win.sample(image, warp))
        track.prev, track.prev_ts = grey, ts
        assert track.ref is not None and track.open_ref is not None
        if track.case_pictures is None:
            track.case_pictures = CasePictures.of(track.ref.grey, track.open_ref.grey, win.mask)
            telling = int(track.case_pictures.telling.sum())
            if telling < CASE_MIN_TELLING:
                log.warning(
                    "camera '%s', zone '%s': its shut and open pictures differ in %d cells only: the "
                    "case's state cannot be read from them (cut case.open_image with the case open, as "
                    "wide as it is usually opened)",
                    self.camera.id, track.zone.id, telling,
                )  # fmt: skip
        evidence = track.case_pictures.evidence(grey)
        track.was_open = self._case_open(track, evidence, ts)
        if track.sensor_open is None and track.votes is not None and track.votes.state is not None:
            base = replace(
                base, open=track.votes.state, open_source="appearance", open_since=track.votes.since
            )
        return replace(
            base, measured=evidence.verdict() is not None, occluded=evidence.hidden, change=evidence.open
        )

    def _case_open(self, track: _Track, evidence: CaseEvidence | float, ts: float) -> bool | None:
        """Open or closed: with both pictures, what the passes' verdicts agree on (``CaseEvidence``);
        with the closed picture only, the share of structure changed from it (a float) against
        ``open_change``."""
        if not isinstance(evidence, CaseEvidence):
            return evidence >= track.zone.case_params().open_change
        if track.votes is None:
            track.votes = CaseVotes()
        track.votes.add(evidence.verdict(), ts)
        if not track.case_told and track.votes.state is not None:
            track.case_told = True
            if track.votes.state:  # cases are shut at rest: open from the start is worth a look
                log.warning(
                    "camera '%s', zone '%s' reads open from the start of watching: if it was shut, "
                    "its pictures are swapped or case.open_image shows it shut",
                    self.camera.id, track.zone.id,
                )  # fmt: skip
        return track.votes.state

    def _drift(
        self, track: _Track, grey: np.ndarray, seen: np.ndarray, ts: float, change: float, count: int | None
    ) -> None:
        """Follow slow lighting drift: blend the reference towards what is seen, but only while
        it still matches (a missing piece or a moved tray is never learned away)."""
        ref = track.ref
        if ref is None or change > 0.03 or (ref.count is not None and count != ref.count):
            return
        dt = max(0.0, ts - ref.ts)
        alpha = np.float32(1.0 - math.exp(-dt / self.cfg.drift_tau_s))
        ref.grey = np.where(seen, (1.0 - alpha) * ref.grey + alpha * grey, ref.grey).astype(np.float32)
        ref.ts = ts
