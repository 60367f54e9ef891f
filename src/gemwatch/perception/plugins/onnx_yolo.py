"""A user-supplied YOLO-family ONNX detector (e.g. a YOLOv8 you exported yourself).

Contract: input float32 NCHW [1,3,S,S], RGB scaled to 0-1, letterboxed. Output either
[1,N,6] = (x1, y1, x2, y2, score, class) in input pixels after NMS, or the raw YOLOv8 layout
[1,4+C,A] = (cx, cy, w, h, C class scores) per anchor, which this plugin decodes with NMS.
Class ids must be COCO-80 ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from gemwatch.perception.detector import PersonDetector, RawDetections, batched_nms
from gemwatch.perception.plugins._common import DetectorPluginConfig
from gemwatch.perception.plugins._onnx import check_input, open_session
from gemwatch.perception.provision import ModelLoadError, ModelMissingError


class OnnxYoloConfig(DetectorPluginConfig):
    """A YOLO-family ONNX file of your own; there is no provisioned default, so ``path`` is required."""

    type: Literal["onnx_yolo"] = Field(title="Type", description="Selects the user-ONNX YOLO plugin.")
    path: Path = Field(
        title="ONNX file",
        description="Your YOLO-family ONNX file (contract in docs/models.md).",
    )
    input_size: int = Field(
        default=640,
        ge=64,
        le=2048,
        multiple_of=32,
        title="Input size",
        description="Square model input in pixels; must match the exported model.",
    )
    iou_threshold: float = Field(
        default=0.45,
        gt=0.0,
        le=1.0,
        title="NMS IoU",
        description="Raw-layout boxes of one class overlapping more than this are suppressed.",
    )


def decode_yolo(out: np.ndarray, threshold: float, class_ids: np.ndarray, iou: float) -> RawDetections:
    """Either output layout of the contract, as boxes in input pixels.

    ``[1,N,6]`` is taken as already suppressed; ``[1,4+C,A]`` (YOLOv8 and later: centre, size
    and one score per class for each anchor) gets the best class per anchor and per-class NMS.
    """
    det = np.asarray(out, dtype=np.float32)
    if det.ndim != 3 or det.shape[0] != 1:
        raise ModelLoadError(f"expected a [1,N,6] or [1,4+C,A] output, got {list(det.shape)}")
    det = det[0]
    if det.shape[1] == 6 and det.shape[0] != 6:
        det = det[np.isin(det[:, 5].astype(np.int64), class_ids) & (det[:, 4] >= threshold)]
        return RawDetections(det[:, :4].copy(), det[:, 4].copy(), det[:, 5].astype(np.int64))
    if det.shape[0] < 5:
        raise ModelLoadError(
            f"expected a [1,N,6] or [1,4+C,A] output, got [1, {det.shape[0]}, {det.shape[1]}]"
        )
    wanted = class_ids[class_ids < det.shape[0] - 4]
    scores = det[4 + wanted]  # (classes kept, anchors)
    best = scores.argmax(axis=0)
    best_score = scores[best, np.arange(scores.shape[1])]
    anchors = np.nonzero(best_score >= threshold)[0]
    cx, cy, w, h = det[:4, anchors]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    raw_scores = best_score[anchors].astype(np.float32)
    raw_ids = wanted[best[anchors]].astype(np.int64)
    keep = batched_nms(xyxy, raw_scores, raw_ids, iou)
    return RawDetections(xyxy[keep], raw_scores[keep], raw_ids[keep])


class OnnxYoloDetector(PersonDetector):
    """Your YOLO-family ONNX on the letterboxed frame (contract in the module docstring)."""

    def __init__(self, cfg: OnnxYoloConfig) -> None:
        super().__init__(input_size=cfg.input_size, classes=cfg.classes, score_threshold=cfg.score_threshold)
        self.iou_threshold = cfg.iou_threshold
        self.path = Path(cfg.path).expanduser()
        if not self.path.is_file():
            raise ModelMissingError(
                f"the onnx_yolo model `path: {cfg.path}` does not exist; fix the path in gemwatch.yml"
            )
        self.session = open_session(self.path, cfg.threads)
        size = cfg.input_size
        self.input_name = check_input(self.session, self.path, rank=4, fixed={0: 1, 1: 3, 2: size, 3: size})
        self._input = np.zeros((1, 3, size, size), dtype=np.float32)

    def _infer(self, rgb: np.ndarray) -> RawDetections:
        np.multiply(rgb.transpose(2, 0, 1), np.float32(1 / 255), out=self._input[0], casting="unsafe")
        out = self.session.run(None, {self.input_name: self._input})[0]
        try:
            return decode_yolo(out, self.score_threshold, self.class_ids, self.iou_threshold)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from None


def build(cfg: OnnxYoloConfig) -> OnnxYoloDetector:
    return OnnxYoloDetector(cfg)
