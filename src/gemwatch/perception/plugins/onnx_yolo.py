"""A user-supplied YOLO-family ONNX detector (e.g. a YOLOv8 you exported yourself).

Contract: input float32 NCHW [1,3,S,S], RGB scaled to 0-1, letterboxed. Output either
[1,N,6] = (x1, y1, x2, y2, score, class) in input pixels after NMS, or the raw YOLOv8 layout
[1,4+C,A] = (cx, cy, w, h, C class scores) per anchor, which this plugin decodes with NMS.
Class ids must be COCO-80 ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from gemwatch.perception.plugins._common import DetectorPluginConfig


class OnnxYoloConfig(DetectorPluginConfig):
    """A YOLO-family ONNX file of your own; there is no provisioned default, so ``path`` is required."""

    type: Literal["onnx_yolo"] = Field(title="Type", description="Selects the user-ONNX YOLO plugin.")
    path: Path = Field(  # type: ignore[assignment]
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
