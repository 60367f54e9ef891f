"""Pure geometry on normalised coordinates: zones answer with boolean arrays (supervision-style)."""

from __future__ import annotations

from collections.abc import Sequence

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
