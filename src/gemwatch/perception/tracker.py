"""Multi-person tracking with ByteTrack (roboflow ``trackers``), driven by timestamps in seconds,
plus confirmation over time.

ByteTrack gives stable ids; on top of it a track is reported only once it is credible: one
strong detection, or its box once held moving pixels with a fair mean score. Static look-alikes
(bollards, signs, mannequins, cones) score like a distant person in every frame but never
move; real people arrive, so they do. Measured in eval/people.py (docs/models.md).
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
    score_sum: float = 0.0
    max_motion: float = 0.0
    confirmed: bool = False

    @property
    def mean_score(self) -> float:
        return self.score_sum / max(self.observations, 1)


def select(detections: sv.Detections, mask: np.ndarray) -> sv.Detections:
    """``detections[mask]`` typed as Detections (supervision's indexer is typed as a union)."""
    out = detections[mask]
    assert isinstance(out, sv.Detections)
    return out


def contained(xyxy: np.ndarray, scores: np.ndarray, ioa: float) -> np.ndarray:
    """Mask of boxes lying at least ``ioa`` inside a higher-scoring kept box (a second box on
    the same person: a torso inside a full body)."""
    n = len(xyxy)
    drop = np.zeros(n, dtype=bool)
    if n < 2:
        return drop
    order = np.argsort(-scores, kind="stable")
    area = np.maximum((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]), 1e-6)
    kept: list[int] = []
    for i in order:
        if kept:
            k = np.array(kept)
            iw = np.clip(np.minimum(xyxy[i, 2], xyxy[k, 2]) - np.maximum(xyxy[i, 0], xyxy[k, 0]), 0, None)
            ih = np.clip(np.minimum(xyxy[i, 3], xyxy[k, 3]) - np.maximum(xyxy[i, 1], xyxy[k, 1]), 0, None)
            if np.any(iw * ih / area[i] >= ioa):
                drop[i] = True
                continue
        kept.append(int(i))
    return drop


class PersonTracker:
    def __init__(self, cfg: TrackerConfig) -> None:
        from trackers import ByteTrackTracker

        self.cfg = cfg
        # trackers counts its lost buffer in "30 fps frames" and converts it to seconds itself
        # when timestamps are given, so buffer = seconds * 30.
        self._bt = ByteTrackTracker(
            lost_track_buffer=max(1, round(cfg.lost_after_s * 30)),
            frame_rate=30.0,
            track_activation_threshold=cfg.new_track_min_score,
            minimum_consecutive_frames=1,
            minimum_iou_threshold=0.1,
            high_conf_det_threshold=max(cfg.new_track_min_score, 0.05),
        )
        self.info: dict[int, TrackInfo] = {}
        self._last_ts: float | None = None

    @property
    def has_tracks(self) -> bool:
        """True while any confirmed track is alive (seen within the lost-track budget): the motion
        gate keeps the detector running for people standing still."""
        if self._last_ts is None:
            return False
        return any(
            t.confirmed and self._last_ts - t.last_ts <= self.cfg.lost_after_s for t in self.info.values()
        )

    def _confirmed(self, info: TrackInfo, ts: float) -> bool:
        credible = info.max_score >= self.cfg.confirm_score or (
            info.max_motion >= self.cfg.confirm_motion and info.mean_score >= self.cfg.confirm_mean_score
        )
        return credible and ts - info.first_ts >= self.cfg.min_confirm_s

    def update(self, people: sv.Detections, ts: float, motion: np.ndarray | None = None) -> sv.Detections:
        """Associate this frame's person detections; returns only confirmed tracks.

        ``motion`` holds, per detection, the fraction of moving pixels in its box (from the
        motion gate); without it only the strong-detection path confirms tracks.
        """
        if self._last_ts is not None and ts <= self._last_ts:
            ts = self._last_ts + 1e-3
        self._last_ts = ts
        if motion is not None and len(people):
            people.data["motion"] = np.asarray(motion, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracked = self._bt.update(people, timestamp=ts)
        if tracked.tracker_id is None or len(tracked) == 0:
            return sv.Detections.empty()
        tracked = select(tracked, np.asarray(tracked.tracker_id) >= 0)
        conf = tracked.confidence if tracked.confidence is not None else np.ones(len(tracked))
        moving = tracked.data.get("motion") if motion is not None else None
        keep = np.ones(len(tracked), dtype=bool)
        ids = np.asarray(tracked.tracker_id)
        for i, (tid, score) in enumerate(zip(ids, conf, strict=True)):
            tid = int(tid)
            info = self.info.get(tid)
            if info is None:
                info = self.info[tid] = TrackInfo(tid, ts, ts)
            info.last_ts = ts
            info.observations += 1
            info.max_score = max(info.max_score, float(score))
            info.score_sum += float(score)
            if moving is not None:
                info.max_motion = max(info.max_motion, float(moving[i]))
            keep[i] = self._confirmed(info, ts)
            info.confirmed = info.confirmed or bool(keep[i])
        out = select(tracked, keep)
        if len(out) > 1:
            out_conf = out.confidence if out.confidence is not None else np.ones(len(out))
            out = select(out, ~contained(out.xyxy, out_conf, self.cfg.contained_ioa))
        return out
