"""Multi-person tracking with ByteTrack (roboflow ``trackers``), driven by timestamps in seconds.

Wraps the library so the rest of gemwatch sees stable integer ids and per-track bookkeeping
(first/last seen, score) without knowing the library's API.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import supervision as sv

from gemwatch.config.models import Tracker as TrackerConfig


@dataclass(slots=True)
class TrackInfo:
    track_id: int
    first_ts: float
    last_ts: float
    observations: int = 0
    max_score: float = 0.0


class PersonTracker:
    def __init__(self, cfg: TrackerConfig, score_threshold: float) -> None:
        from trackers import ByteTrackTracker

        self.cfg = cfg
        # trackers counts its lost buffer in "30 fps frames" and converts to seconds itself
        # when timestamps are given: buffer = seconds * 30.
        self._bt = ByteTrackTracker(
            lost_track_buffer=max(1, round(cfg.lost_after_s * 30)),
            frame_rate=30.0,
            track_activation_threshold=max(score_threshold, 0.05),
            minimum_consecutive_frames=1,
            minimum_iou_threshold=0.1,
            high_conf_det_threshold=max(score_threshold + 0.15, 0.4),
        )
        self.info: dict[int, TrackInfo] = {}
        self._last_ts: float | None = None

    @property
    def has_tracks(self) -> bool:
        """True while any track is alive (seen within the lost-track budget)."""
        if self._last_ts is None:
            return False
        return any(self._last_ts - t.last_ts <= self.cfg.lost_after_s for t in self.info.values())

    def update(self, people: sv.Detections, ts: float) -> sv.Detections:
        """Associate this frame's person detections; returns only confirmed tracks."""
        if self._last_ts is not None and ts <= self._last_ts:
            ts = self._last_ts + 1e-3
        self._last_ts = ts
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracked = self._bt.update(people, timestamp=ts)
        if tracked.tracker_id is None or len(tracked) == 0:
            return sv.Detections.empty()
        tracked = tracked[np.asarray(tracked.tracker_id) >= 0]
        keep = np.ones(len(tracked), dtype=bool)
        conf = tracked.confidence if tracked.confidence is not None else np.ones(len(tracked))
        for i, (tid, score) in enumerate(zip(tracked.tracker_id, conf, strict=True)):
            tid = int(tid)
            info = self.info.get(tid)
            if info is None:
                info = self.info[tid] = TrackInfo(tid, ts, ts)
            info.last_ts = ts
            info.observations += 1
            info.max_score = max(info.max_score, float(score))
            keep[i] = ts - info.first_ts >= self.cfg.min_confirm_s
        return tracked[keep]
