"""The person-detector capability: one base class that does the shared work for every model.

A plugin (``perception/plugins/<model>.py``) only runs its model on a letterboxed RGB picture
and decodes the raw output into boxes in model-input pixels; this base letterboxes the frame,
filters classes and scores, maps boxes back to frame pixels and times each stage, so every
detector answers in the same vocabulary: a ``supervision.Detections`` with COCO-80 class ids.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from gemwatch.perception.letterbox import clip_boxes, letterbox, unletterbox_boxes

if TYPE_CHECKING:
    import supervision as sv

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

_CLASS_NAMES = np.array(COCO_CLASSES, dtype=object)

COCO_IDS: dict[str, int] = {name: i for i, name in enumerate(COCO_CLASSES)}

PERSON = COCO_IDS["person"]


@dataclass(frozen=True, slots=True)
class RawDetections:
    """A plugin's decoded output: boxes (N, 4) x1, y1, x2, y2 in model-input pixels,
    scores (N,) and COCO-80 class ids (N,)."""

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    @staticmethod
    def empty() -> RawDetections:
        return RawDetections(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64)
        )


def class_ids_for(names: tuple[str, ...] | list[str]) -> np.ndarray:
    """COCO-80 ids for class names; unknown names raise ``KeyError`` naming the class."""
    try:
        return np.array(sorted({COCO_IDS[name] for name in names}), dtype=np.int64)
    except KeyError as exc:
        raise KeyError(f"unknown COCO class {exc.args[0]!r}") from None


def nms(xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first.

    Vectorised per kept box (one IoU row at a time), which is plenty for the few hundred
    candidates left after the score threshold.
    """
    order = np.argsort(-scores, kind="stable")
    boxes = xyxy.astype(np.float32)
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        x1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def batched_nms(
    xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Per-class NMS (a person box never suppresses the handbag they carry)."""
    if len(scores) == 0:
        return np.zeros((0,), dtype=np.int64)
    # Shift each class into its own region so one NMS pass never compares across classes.
    offset = class_ids.astype(np.float32)[:, None] * (float(xyxy.max()) + 1.0)
    return nms(xyxy + offset, scores, iou_threshold)


class PersonDetector(ABC):
    """Finds people (and the bags they carry) in a BGR frame.

    Subclasses set ``input_size`` and implement ``_infer``. ``stage_ms`` holds the cost of the
    last call per stage (``preprocess``, ``infer``, ``postprocess``, ``total``) so benchmarks
    and the pipeline can report where time goes.
    """

    #: Square model-input side in pixels.
    input_size: int

    def __init__(
        self, *, input_size: int, classes: tuple[str, ...] | list[str], score_threshold: float
    ) -> None:
        self.input_size = input_size
        self.class_ids = class_ids_for(classes)
        self.score_threshold = float(score_threshold)
        self.stage_ms: dict[str, float] = {}

    @abstractmethod
    def _infer(self, rgb: np.ndarray) -> RawDetections:
        """Run the model on a letterboxed ``input_size``² RGB uint8 picture; decode its output.

        Boxes are in model-input pixels. The plugin may pre-filter by ``score_threshold`` for
        speed; the base class filters classes and scores again anyway.
        """

    def detect(self, image_bgr: np.ndarray) -> sv.Detections:
        """People and bags in ``image_bgr`` with boxes in frame pixels, best score first."""
        import supervision as sv

        t0 = time.perf_counter()
        height, width = image_bgr.shape[:2]
        padded, scale, pad_x, pad_y = letterbox(image_bgr, self.input_size)
        rgb = cv2.cvtColor(padded, cv2.COLOR_BGR2RGB)
        t1 = time.perf_counter()
        raw = self._infer(rgb)
        t2 = time.perf_counter()
        keep = np.isin(raw.class_ids, self.class_ids) & (raw.scores >= self.score_threshold)
        xyxy = clip_boxes(unletterbox_boxes(raw.xyxy[keep], scale, pad_x, pad_y), width, height)
        scores = raw.scores[keep].astype(np.float32)
        class_ids = raw.class_ids[keep].astype(np.int64)
        area_ok = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        xyxy, scores, class_ids = xyxy[area_ok], scores[area_ok], class_ids[area_ok]
        order = np.argsort(-scores, kind="stable")
        xyxy, scores, class_ids = xyxy[order], scores[order], class_ids[order]
        names = _CLASS_NAMES[class_ids]
        detections = sv.Detections(
            xyxy=xyxy.reshape(-1, 4), confidence=scores, class_id=class_ids, data={"class_name": names}
        )
        t3 = time.perf_counter()
        self.stage_ms = {
            "preprocess": (t1 - t0) * 1000.0,
            "infer": (t2 - t1) * 1000.0,
            "postprocess": (t3 - t2) * 1000.0,
            "total": (t3 - t0) * 1000.0,
        }
        return detections
