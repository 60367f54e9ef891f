"""Snapshots: boxes, labels and zones land where they should; the input is untouched; JPEGs are atomic."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from gemwatch.events.snapshot import HIGHLIGHT_COLOUR, ROLE_COLOURS, ZONE_COLOUR, draw_snapshot, write_jpeg
from gemwatch.types import Person, Role


def grey(h: int = 240, w: int = 320) -> np.ndarray:
    return np.full((h, w, 3), 100, dtype=np.uint8)


def close_to(pixel: np.ndarray, colour: tuple[int, int, int], tol: int = 30) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tol))


def test_person_box_drawn_in_role_colour_and_input_untouched() -> None:
    image = grey()
    before = image.copy()
    out = draw_snapshot(image, [Person(7, (100, 80, 160, 200), 0.9, Role.STAFF)], [], None, None)
    assert np.array_equal(image, before)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert close_to(out[140, 100], ROLE_COLOURS[Role.STAFF])  # left edge of the box
    assert close_to(out[200, 130], ROLE_COLOURS[Role.STAFF])  # bottom edge
    assert close_to(out[140, 130], (100, 100, 100), tol=0)  # inside stays clear
    assert close_to(out[20, 20], (100, 100, 100), tol=0)  # far away untouched


def test_zones_are_translucent_and_the_highlighted_one_is_red() -> None:
    zones = [("shelf", [(0.0, 0.0), (0.4, 0.0), (0.4, 0.4), (0.0, 0.4)]),
             ("vault", [(0.6, 0.6), (1.0, 0.6), (1.0, 1.0), (0.6, 1.0)])]  # fmt: skip
    out = draw_snapshot(grey(), [], zones, "vault", None)
    inside_shelf = out[60, 80].astype(int)
    inside_vault = out[200, 280].astype(int)
    # Tinted towards the zone colour, but the picture still shows through.
    assert not close_to(inside_shelf, (100, 100, 100), tol=5)
    assert np.all(np.abs(inside_shelf - 100) < 100)
    assert np.sign(inside_shelf - 100).tolist() == np.sign(np.array(ZONE_COLOUR) - 100).tolist()
    red_gain = inside_vault[2] - inside_vault[0]
    assert red_gain > 40 and HIGHLIGHT_COLOUR[2] > HIGHLIGHT_COLOUR[0]
    assert close_to(out[120, 160], (100, 100, 100), tol=0)  # between zones: untouched


def test_label_banner_darkens_the_top() -> None:
    out = draw_snapshot(grey(), [], [], None, "Loitering at the vault for 95 s")
    assert out[2, 300].mean() < 60
    assert out[120, 160].mean() == 100
    text_pixels = (out[:30].min(axis=2) > 200).sum()
    assert text_pixels > 50


def test_write_jpeg_atomic_and_readable(tmp_path: Path) -> None:
    image = draw_snapshot(grey(), [Person(1, (10, 10, 50, 90), 0.8)], [], None, "x")
    path = write_jpeg(image, tmp_path / "snaps" / "ev.jpg", quality=90)
    assert path == tmp_path / "snaps" / "ev.jpg"
    back = cv2.imread(str(path))
    assert back.shape == image.shape
    assert np.abs(back.astype(int) - image.astype(int)).mean() < 3
    assert [p.name for p in path.parent.iterdir()] == ["ev.jpg"]
