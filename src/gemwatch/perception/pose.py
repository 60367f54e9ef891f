"""The pose capability: 17 COCO keypoints for the person boxes a detector found.

Pose is a per-person pass that rules request only where hands matter (counters, vaults,
doors), so the interface takes the boxes rather than finding people itself. The top-down base
does the shared crop geometry; a plugin only runs its model on one square RGB crop.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

import cv2
import numpy as np

from gemwatch.perception.letterbox import crop_resize, square_crop_box
from gemwatch.types import KEYPOINTS


def empty_poses(count: int) -> np.ndarray:
    """``count`` poses with every keypoint at score 0 (nothing known)."""
    return np.zeros((count, len(KEYPOINTS), 3), dtype=np.float32)


class PoseEstimator(ABC):
    """Keypoints for person boxes.

    ``stage_ms`` holds the last call's cost in ms (``total``, ``infer``, and for top-down
    models ``per_person``), so the pipeline can show what a pose pass costs.
    """

    def __init__(self) -> None:
        self.stage_ms: dict[str, float] = {}

    @abstractmethod
    def estimate(self, image_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
        """(N, 17, 3) keypoints, one pose per box in order: x, y in frame pixels, score 0-1.

        A person the model cannot place gets scores of 0, never a missing row.
        """


class TopDownPoseEstimator(PoseEstimator):
    """Runs a single-person model on a square crop around each box.

    Subclasses set ``input_size`` and implement ``_infer_crop``.
    """

    def __init__(self, *, input_size: int, margin: float) -> None:
        super().__init__()
        self.input_size = input_size
        self.margin = margin

    @abstractmethod
    def _infer_crop(self, rgb: np.ndarray) -> np.ndarray:
        """(17, 3) keypoints for an ``input_size``² RGB uint8 crop: y, x as 0-1 of the crop, score."""

    def estimate(self, image_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        poses = empty_poses(len(boxes))
        infer_s = 0.0
        for i, box in enumerate(boxes):
            square = square_crop_box(box, self.margin)
            crop = cv2.cvtColor(crop_resize(image_bgr, square, self.input_size), cv2.COLOR_BGR2RGB)
            t_infer = time.perf_counter()
            yx_score = self._infer_crop(crop)
            infer_s += time.perf_counter() - t_infer
            side = square[2] - square[0]
            poses[i, :, 0] = square[0] + yx_score[:, 1] * side
            poses[i, :, 1] = square[1] + yx_score[:, 0] * side
            poses[i, :, 2] = yx_score[:, 2]
        total = (time.perf_counter() - t0) * 1000.0
        self.stage_ms = {"infer": infer_s * 1000.0, "total": total, "per_person": total / max(len(boxes), 1)}
        return poses


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU matrix of x1, y1, x2, y2 boxes."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(1, -1, 4)
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    result: np.ndarray = inter / np.maximum(area_a + area_b - inter, 1e-9)
    return result


def assign_poses(
    person_boxes: np.ndarray, pose_boxes: np.ndarray, poses: np.ndarray, min_iou: float
) -> np.ndarray:
    """Give each person box the best-overlapping pose (greedy by IoU, each pose used once)."""
    result = empty_poses(len(person_boxes))
    if len(person_boxes) == 0 or len(pose_boxes) == 0:
        return result
    iou = box_iou(person_boxes, pose_boxes)
    while True:
        person, pose = np.unravel_index(int(np.argmax(iou)), iou.shape)
        if iou[person, pose] < min_iou or iou[person, pose] <= 0.0:
            return result
        result[person] = poses[pose]
        iou[person, :] = -1.0
        iou[:, pose] = -1.0
