from __future__ import annotations

import numpy as np
import pytest

from gemwatch.rules.geometry import foot_points, points_in_polygon

SQUARE = [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)]
L_SHAPE = [(0, 0), (0.5, 0), (0.5, 0.5), (1, 0.5), (1, 1), (0, 1)]


@pytest.mark.parametrize(
    ("point", "polygon", "inside"),
    [
        ((0.5, 0.5), SQUARE, True),
        ((0.1, 0.5), SQUARE, False),
        ((0.5, 0.9), SQUARE, False),
        ((0.79, 0.21), SQUARE, True),
        ((0.75, 0.25), L_SHAPE, False),
        ((0.25, 0.25), L_SHAPE, True),
        ((0.75, 0.75), L_SHAPE, True),
    ],
)
def test_points_in_polygon(point, polygon, inside) -> None:
    assert bool(points_in_polygon(np.array([point]), polygon)[0]) is inside


def test_vectorised_over_many_points() -> None:
    pts = np.array([[0.5, 0.5], [0.0, 0.0], [0.3, 0.7], [0.9, 0.9]])
    assert points_in_polygon(pts, SQUARE).tolist() == [True, False, True, False]


def test_foot_points_are_bottom_centre_normalised() -> None:
    boxes = np.array([[100, 50, 200, 250], [0, 0, 640, 480]])
    feet = foot_points(boxes, 640, 480)
    assert feet.tolist() == [[150 / 640, 250 / 480], [0.5, 1.0]]
