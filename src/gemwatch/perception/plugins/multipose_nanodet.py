"""The default person detector: MoveNet MultiPose and NanoDet together (both Apache-2.0).

Measured on hand-labelled real store frames (eval/people.py, docs/models.md): MultiPose at 512
finds upright, nearby people with very few false boxes but at most six per frame; NanoDet finds
the people in crowds and at a distance that MultiPose misses, and the bags (handbag, backpack,
suitcase) the counter rules need. Their union, merged by non-maximum suppression, beats either
alone, and every MultiPose box arrives with its 17 keypoints (wrists included) at no extra cost.
CenterNet was better still but its weights carry no licence, so it is opt-in (``type: centernet``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import numpy as np
import supervision as sv
from pydantic import Field

from gemwatch.perception.detector import COCO_CLASSES, PersonDetector, RawDetections, batched_nms
from gemwatch.perception.plugins._common import DetectorPluginConfig
from gemwatch.perception.plugins.movenet import MoveNetMultiPose, MoveNetMultiPoseConfig
from gemwatch.perception.plugins.nanodet import NanoDetConfig, NanoDetDetector

PERSON = 0


class MultiPoseNanoDetConfig(DetectorPluginConfig):
    """MultiPose (people + keypoints) united with NanoDet (people at a distance, bags)."""

    type: Literal["multipose_nanodet"] = Field(
        title="Type", description="Selects the MultiPose + NanoDet ensemble (the default)."
    )
    path: Path | None = Field(
        default=None, title="NanoDet ONNX file", description="Your own NanoDet-contract ONNX file."
    )
    score_threshold: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        title="MultiPose score threshold",
        description="MultiPose people below this are dropped.",
    )
    multipose_input_size: int = Field(
        default=512, ge=128, le=1024, multiple_of=32, description="Longer side of MultiPose's input."
    )
    nanodet_threshold: float = Field(
        default=0.4, ge=0.0, le=1.0, description="NanoDet people and bags below this are dropped."
    )
    nanodet_score_scale: float = Field(
        default=0.6,
        gt=0.0,
        le=1.0,
        description="NanoDet scores are multiplied by this to sit on MultiPose's (lower) score scale.",
    )
    merge_iou: float = Field(
        default=0.45,
        gt=0.0,
        le=1.0,
        description="Person boxes of both models overlapping this much are one person.",
    )
    multipose_path: Path | None = Field(default=None, description="Your own MultiPose-contract ONNX file.")


class MultiPoseNanoDet(PersonDetector):
    def __init__(self, cfg: MultiPoseNanoDetConfig) -> None:
        super().__init__(input_size=416, classes=cfg.classes, score_threshold=cfg.score_threshold)
        self.cfg = cfg
        self.multipose = MoveNetMultiPose(
            MoveNetMultiPoseConfig(
                type="movenet_multipose",
                path=cfg.multipose_path,
                input_size=cfg.multipose_input_size,
                threads=cfg.threads,
            )
        )
        self.nanodet = NanoDetDetector(
            NanoDetConfig(
                type="nanodet",
                path=cfg.path,
                classes=cfg.classes,
                score_threshold=cfg.nanodet_threshold,
                threads=cfg.threads,
            )
        )

    def _infer(self, rgb: np.ndarray) -> RawDetections:  # pragma: no cover - detect() is overridden
        raise NotImplementedError

    def detect(self, image_bgr: np.ndarray) -> sv.Detections:
        t0 = time.perf_counter()
        keypoints, mp_boxes, mp_scores = self.multipose.poses(image_bgr)
        t1 = time.perf_counter()
        nd = self.nanodet.detect(image_bgr)
        t2 = time.perf_counter()
        keep_mp = mp_scores >= self.score_threshold
        mp_boxes, mp_scores, keypoints = mp_boxes[keep_mp], mp_scores[keep_mp], keypoints[keep_mp]
        h, w = image_bgr.shape[:2]
        mp_boxes = np.clip(mp_boxes, 0, [w, h, w, h]).astype(np.float32)
        nd_scores = (
            nd.confidence if nd.confidence is not None else np.ones(len(nd))
        ) * self.cfg.nanodet_score_scale
        nd_ids = nd.class_id if nd.class_id is not None else np.zeros(len(nd), dtype=np.int64)
        xyxy = np.vstack([mp_boxes.reshape(-1, 4), nd.xyxy.reshape(-1, 4)]).astype(np.float32)
        scores = np.concatenate([mp_scores, nd_scores]).astype(np.float32)
        class_ids = np.concatenate([np.full(len(mp_scores), PERSON, dtype=np.int64), nd_ids.astype(np.int64)])
        kps = np.zeros((len(scores), 17, 3), dtype=np.float32)
        kps[: len(keypoints)] = keypoints
        wanted = np.isin(class_ids, self.class_ids)
        xyxy, scores, class_ids, kps = xyxy[wanted], scores[wanted], class_ids[wanted], kps[wanted]
        # MultiPose comes first, so on equal scores its box (with keypoints) survives the merge.
        keep = batched_nms(
            xyxy,
            scores + np.where(np.arange(len(scores)) < len(mp_scores), 1e-4, 0),
            class_ids,
            self.cfg.merge_iou,
        )
        keep = np.asarray(keep, dtype=np.int64)
        order = keep[np.argsort(-scores[keep], kind="stable")]
        names = np.array([COCO_CLASSES[i] for i in class_ids[order]], dtype=object)
        out = sv.Detections(
            xyxy=xyxy[order].reshape(-1, 4),
            confidence=scores[order],
            class_id=class_ids[order],
            data={"class_name": names, "keypoints": kps[order]},
        )
        self.stage_ms = {
            "multipose": (t1 - t0) * 1000.0,
            "nanodet": (t2 - t1) * 1000.0,
            "total": (time.perf_counter() - t0) * 1000.0,
        }
        return out


def build(cfg: MultiPoseNanoDetConfig) -> MultiPoseNanoDet:
    return MultiPoseNanoDet(cfg)
