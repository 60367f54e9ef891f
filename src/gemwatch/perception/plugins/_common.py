"""Config fields every detector plugin shares, so a user learns them once."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gemwatch.perception.detector import COCO_CLASSES

DEFAULT_CLASSES: tuple[str, ...] = ("person", "backpack", "handbag", "suitcase")


class DetectorPluginConfig(BaseModel):
    """Fields shared by every person-detector plugin (subclasses add ``type``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = Field(
        default=None,
        title="ONNX file",
        description="Your own ONNX file to use instead of the provisioned one; must follow the "
        "plugin's input/output contract (docs/models.md).",
    )
    score_threshold: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        title="Score threshold",
        description="Detections scoring below this are dropped.",
    )
    classes: tuple[str, ...] = Field(
        default=DEFAULT_CLASSES,
        min_length=1,
        title="Classes",
        description="COCO class names to keep (e.g. person, handbag, backpack, suitcase).",
    )
    threads: int = Field(
        default=2,
        ge=1,
        le=64,
        title="Threads",
        description="onnxruntime intra-op threads for this model.",
    )

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in COCO_CLASSES]
        if unknown:
            raise ValueError(
                f"unknown COCO class name(s) {unknown}; see gemwatch.perception.detector.COCO_CLASSES"
            )
        return value
