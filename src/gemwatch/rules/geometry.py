"""Pure geometry on normalised coordinates: zones answer with boolean arrays (supervision-style)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def points_in_polygon(points: np.ndarray, polygon: Sequence[tuple[float, float]]) -> np.ndarray:
    """Vectorised even-odd test: ``points`` (N, 2) → bool (N,). Points on an edge may go either way."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64)
    x = pts[:, 0][:, None]
    y = pts[:, 1][:, None]
    x1, y1 = poly[:, 0][None, :], poly[:, 1][None, :]
    x2, y2 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    inside = crosses & (x < x_at)
    result: np.ndarray = np.count_nonzero(inside, axis=1) % 2 == 1
    return result


def foot_points(boxes_xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bottom-centre of each box, normalised to 0..1: where a person stands on the floor."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    out = np.empty((len(boxes), 2), dtype=np.float64)
    out[:, 0] = (boxes[:, 0] + boxes[:, 2]) / 2.0 / max(width, 1)
    out[:, 1] = boxes[:, 3] / max(height, 1)
    return out


def polygon_to_pixels(polygon: Sequence[tuple[float, float]], width: int, height: int) -> np.ndarray:
    """Normalised polygon → int32 pixel array (K, 2) for drawing."""
    poly = np.asarray(polygon, dtype=np.float64)
    return np.round(poly * np.array([width, height])).astype(np.int32)


def clip_polygon(
    polygon: Sequence[tuple[float, float]], box: tuple[float, float, float, float]
) -> np.ndarray:
    """The part of ``polygon`` inside the axis-aligned ``box`` (x1, y1, x2, y2), Sutherland-Hodgman."""
    pts = [(float(x), float(y)) for x, y in polygon]
    x1, y1, x2, y2 = box
    for axis, bound, keep_above in ((0, x1, True), (0, x2, False), (1, y1, True), (1, y2, False)):
        pts = _clip_half_plane(pts, axis, bound, keep_above)
    return np.asarray(pts, dtype=np.float64).reshape(-1, 2)


def _clip_half_plane(
    pts: list[tuple[float, float]], axis: int, bound: float, keep_above: bool
) -> list[tuple[float, float]]:
    """Keep the part of a polygon where coordinate ``axis`` is >= ``bound`` (or <= when not
    ``keep_above``), adding the points where its edges cross the bound."""

    def keep(p: tuple[float, float]) -> bool:
        return p[axis] >= bound if keep_above else p[axis] <= bound

    out: list[tuple[float, float]] = []
    for i, cur in enumerate(pts):
        prev = pts[i - 1]
        if keep(cur) != keep(prev):
            t = (bound - prev[axis]) / (cur[axis] - prev[axis])
            out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
        if keep(cur):
            out.append(cur)
    return out


def polygon_area(points: np.ndarray | Sequence[tuple[float, float]]) -> float:
    """Shoelace area of a simple polygon (K, 2); 0 for fewer than three points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return 0.0
    x, y = pts[:, 0], pts[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0


def box_share_in(
    box: tuple[float, float, float, float],
    polygons: Iterable[Sequence[tuple[float, float]]],
    width: int,
    height: int,
) -> float:
    """Share (0..1) of a pixel box that lies inside the normalised ``polygons``."""
    x1, y1, x2, y2 = box[0] / width, box[1] / height, box[2] / width, box[3] / height
    area = (x2 - x1) * (y2 - y1)
    if area <= 0:
        return 0.0
    inside = sum(polygon_area(clip_polygon(poly, (x1, y1, x2, y2))) for poly in polygons)
    return min(1.0, inside / area)
