"""Event snapshots: the analysed frame with people, track ids, roles and zones drawn on it.

A snapshot is what a guard sees first on a phone, so it favours legibility: thick boxes coloured
by role, the track id and role on a filled label, zones as translucent polygons (the event's
zone in red), and the event's sentence in a banner at the top. JPEGs are written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path

import cv2
import numpy as np

from gemwatch.types import Person, Role

Polygon = Sequence[tuple[float, float]]

# BGR colours by role: customers neutral, staff green, guards blue, unknown grey.
ROLE_COLOURS: dict[Role, tuple[int, int, int]] = {
    Role.UNKNOWN: (200, 200, 200),
    Role.CUSTOMER: (0, 200, 255),
    Role.STAFF: (80, 200, 60),
    Role.GUARD: (255, 140, 40),
}
ZONE_COLOUR = (255, 200, 0)
HIGHLIGHT_COLOUR = (40, 40, 255)
ZONE_ALPHA = 0.18
HIGHLIGHT_ALPHA = 0.35
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _scale(image: np.ndarray) -> tuple[float, int]:
    """Font scale and line thickness that stay legible from 320 px to 4K."""
    side = max(image.shape[:2])
    scale = max(0.4, side / 1400)
    return scale, max(1, round(side / 500))


def _label(
    image: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int], *, below: bool = False
) -> None:
    """A filled text tag whose bottom-left is ``org`` (its top-left with ``below``), kept on screen."""
    scale, thick = _scale(image)
    (w, h), base = cv2.getTextSize(text, _FONT, scale, thick)
    x, y = org
    if below:
        y += h + base
    y = max(h + base, y)
    x = min(max(0, x), max(0, image.shape[1] - w - 2))
    cv2.rectangle(image, (x, y - h - base), (x + w + 2, y + 1), colour, -1)
    luminance = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    ink = (0, 0, 0) if luminance > 128 else (255, 255, 255)
    cv2.putText(image, text, (x + 1, y - base // 2), _FONT, scale, ink, thick, cv2.LINE_AA)


def draw_snapshot(
    image_bgr: np.ndarray,
    people: Sequence[Person],
    zones: Sequence[tuple[str, Polygon]],
    highlight_zone: str | Collection[str] | None = None,
    label: str | None = None,
) -> np.ndarray:
    """A copy of ``image_bgr`` with ``zones`` (id, polygon in 0..1 coordinates), ``people`` and
    an optional ``label`` banner drawn; ``highlight_zone`` (one zone id or several) is drawn in
    red. The input is untouched.
    """
    lit = {highlight_zone} if isinstance(highlight_zone, str) else set(highlight_zone or ())
    out = np.ascontiguousarray(image_bgr).copy()
    h, w = out.shape[:2]
    _, thick = _scale(out)
    if zones:
        overlay = out.copy()
        outlines: list[tuple[str, np.ndarray, tuple[int, int, int]]] = []
        for zone_id, polygon in zones:
            if len(polygon) < 3:
                continue
            pts = np.array([[round(x * (w - 1)), round(y * (h - 1))] for x, y in polygon], dtype=np.int32)
            colour = HIGHLIGHT_COLOUR if zone_id in lit else ZONE_COLOUR
            cv2.fillPoly(overlay, [pts], colour)
            outlines.append((zone_id, pts, colour))
        # Blend each zone's fill with its own strength: highlighted zones stand out more.
        base = cv2.addWeighted(overlay, ZONE_ALPHA, out, 1 - ZONE_ALPHA, 0)
        if any(zid in lit for zid, _, _ in outlines):
            mask = np.zeros((h, w), dtype=np.uint8)
            for zone_id, pts, _ in outlines:
                if zone_id in lit:
                    cv2.fillPoly(mask, [pts], 255)
            strong = cv2.addWeighted(overlay, HIGHLIGHT_ALPHA, out, 1 - HIGHLIGHT_ALPHA, 0)
            base[mask > 0] = strong[mask > 0]
        out = base
        for zone_id, pts, colour in outlines:
            cv2.polylines(out, [pts], True, colour, thick, cv2.LINE_AA)
            x, y = pts.min(axis=0)
            _label(out, zone_id, (int(x) + 2, int(y) + 2), colour, below=True)
    for person in people:
        colour = ROLE_COLOURS.get(person.role, ROLE_COLOURS[Role.UNKNOWN])
        x1, y1, x2, y2 = (round(v) for v in person.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick + 1)
        text = (
            f"#{person.track_id}"
            if person.role == Role.UNKNOWN
            else f"#{person.track_id} {person.role.value}"
        )
        _label(out, text, (x1, y1 - 2), colour)
    if label:
        scale, thick_text = _scale(out)
        (_, th), base_line = cv2.getTextSize(label, _FONT, scale, thick_text)
        band = th + base_line + 8
        dark = out[:band].astype(np.float32) * 0.35
        out[:band] = dark.astype(np.uint8)
        cv2.putText(
            out, label, (6, band - base_line - 3), _FONT, scale, (255, 255, 255), thick_text, cv2.LINE_AA
        )
    return out


def write_jpeg(image: np.ndarray, path: Path, quality: int = 85) -> Path:
    """Encode ``image`` (BGR) as JPEG at ``path`` atomically (temp name, then rename)."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} image as JPEG")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(buf.tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
