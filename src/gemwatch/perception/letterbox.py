"""Geometry between a camera frame and a model's fixed input: letterbox, undo it, square crops.

Stretching a 16:9 frame into a square model input squashes people until detectors miss most of
them (31/78 instead of 67/78 on store footage, see docs/models.md), so every model input is
made by scaling with the aspect ratio kept and padding the rest; these functions are the
single place that maths lives, and they are pure so they can be tested exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

PAD_VALUE = 0


def letterbox_params(
    width: int, height: int, size: int | tuple[int, int]
) -> tuple[float, int, int, int, int]:
    """``(scale, new_w, new_h, pad_x, pad_y)`` that fit a ``width`` × ``height`` picture into ``size``.

    ``size`` is a square side or a (width, height) pair. The picture is centred; padding is split
    as evenly as whole pixels allow (the odd pixel goes right/bottom).
    """
    out_w, out_h = (size, size) if isinstance(size, int) else size
    if width <= 0 or height <= 0:
        raise ValueError(f"cannot letterbox an empty picture ({width}×{height})")
    scale = min(out_w / width, out_h / height)
    new_w = min(out_w, max(1, round(width * scale)))
    new_h = min(out_h, max(1, round(height * scale)))
    return scale, new_w, new_h, (out_w - new_w) // 2, (out_h - new_h) // 2


def letterbox(
    image: np.ndarray, size: int | tuple[int, int], pad_value: int = PAD_VALUE
) -> tuple[np.ndarray, float, int, int]:
    """Resize ``image`` into ``size`` keeping its aspect ratio, padding the rest.

    Returns ``(padded, scale, pad_x, pad_y)``: a model-input point ``(u, v)`` is the frame
    point ``((u - pad_x) / scale, (v - pad_y) / scale)``.
    """
    height, width = image.shape[:2]
    out_w, out_h = (size, size) if isinstance(size, int) else size
    scale, new_w, new_h, pad_x, pad_y = letterbox_params(width, height, size)
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    if (new_w, new_h) == (width, height):
        resized = image
    else:
        resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    padded = np.full((out_h, out_w, *image.shape[2:]), pad_value, dtype=image.dtype)
    padded[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return padded, scale, pad_x, pad_y


def unletterbox_boxes(boxes: np.ndarray, scale: float, pad_x: float, pad_y: float) -> np.ndarray:
    """Map (N, 4) x1, y1, x2, y2 boxes from letterboxed model-input pixels back to frame pixels."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    offset = np.array([pad_x, pad_y, pad_x, pad_y], dtype=np.float32)
    return (boxes - offset) / np.float32(scale)


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clamp (N, 4) boxes to the frame; a box wholly outside collapses to zero area."""
    limits = np.array([width, height, width, height], dtype=np.float32)
    return np.clip(boxes, 0.0, limits).astype(np.float32)


def square_crop_box(box: np.ndarray, margin: float) -> np.ndarray:
    """The square (x1, y1, x2, y2) around a person box, enlarged by ``margin`` (0.2 = 20 %).

    The square is centred on the box and its side is the box's longer side, so a standing
    person is not squashed before a pose model sees them; it may reach past the frame edge.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + margin)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    half = side / 2.0
    return np.array([cx - half, cy - half, cx + half, cy + half], dtype=np.float32)


def crop_resize(image: np.ndarray, square: np.ndarray, size: int, pad_value: int = PAD_VALUE) -> np.ndarray:
    """Cut ``square`` out of ``image`` (padding where it leaves the frame) and resize to ``size``².

    Uses one affine warp, so out-of-frame parts become ``pad_value`` without an extra copy.
    """
    x1, y1, x2 = float(square[0]), float(square[1]), float(square[2])
    scale = size / max(x2 - x1, 1e-6)
    matrix = np.array([[scale, 0.0, -x1 * scale], [0.0, scale, -y1 * scale]], dtype=np.float64)
    return cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(pad_value, pad_value, pad_value),
    )
