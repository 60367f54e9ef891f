"""The motion gate: cheap frame differencing on a small grey frame (~1 ms), so the person
detector runs only when something moves, a person is tracked, or a refresh is due."""

from __future__ import annotations

import cv2
import numpy as np

from gemwatch.config.models import Motion


class MotionGate:
    """Keeps a running background (exponential average) of a downscaled, blurred grey frame.

    ``measure`` returns the fraction of pixels whose grey level differs from the background by
    more than ``pixel_delta``; the buffers are allocated once and reused.
    """

    def __init__(self, cfg: Motion) -> None:
        self.cfg = cfg
        self._bg: np.ndarray | None = None
        self._small: np.ndarray | None = None
        self._diff: np.ndarray | None = None
        self._last_detect_ts: float | None = None
        self._mask: np.ndarray | None = None
        self._scale = 1.0

    @property
    def mask(self) -> tuple[np.ndarray, float] | None:
        """The last frame's moving pixels (bool, small frame) and the frame-pixels-per-cell scale."""
        return None if self._mask is None else (self._mask, self._scale)

    def moving_fraction(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Fraction of moving pixels inside each box (frame pixels) in the last measured frame."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        out = np.zeros(len(boxes))
        if self._mask is None:
            return out
        m = self._mask
        cells = np.round(boxes / self._scale).astype(int)
        for i, (x1, y1, x2, y2) in enumerate(cells):
            x1, y1 = max(x1, 0), max(y1, 0)
            x2, y2 = min(max(x2, x1 + 1), m.shape[1]), min(max(y2, y1 + 1), m.shape[0])
            sub = m[y1:y2, x1:x2]
            out[i] = float(sub.mean()) if sub.size else 0.0
        return out

    def measure(self, image_bgr: np.ndarray) -> float:
        h, w = image_bgr.shape[:2]
        sw = self.cfg.width
        sh = max(1, round(h * sw / w))
        grey = cv2.cvtColor(cv2.resize(image_bgr, (sw, sh), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
        grey = cv2.GaussianBlur(grey, (5, 5), 0)
        small = grey.astype(np.float32)
        self._scale = w / sw
        if self._bg is None or self._bg.shape != small.shape:
            self._bg = small.copy()
            self._diff = np.empty_like(small)
            self._mask = None
            return 1.0
        assert self._diff is not None
        cv2.absdiff(small, self._bg, self._diff)
        self._mask = self._diff > self.cfg.pixel_delta
        changed = float(np.count_nonzero(self._mask)) / self._diff.size
        cv2.accumulateWeighted(small, self._bg, 0.25)
        return changed

    def should_detect(self, ts: float, motion: float, tracking: bool) -> bool:
        """Decide whether the detector runs on this frame (and remember when it last did)."""
        due = self._last_detect_ts is None or ts - self._last_detect_ts >= self.cfg.refresh_s
        run = (not self.cfg.enabled) or tracking or due or motion >= self.cfg.min_area
        if run:
            self._last_detect_ts = ts
        return run
