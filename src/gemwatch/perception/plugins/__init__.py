"""The model plugin registry: one module per model, chosen in config by its ``type``.

Import is light on purpose (pydantic, numpy and OpenCV; onnxruntime loads when a model is
built and supervision on the first detection), because the config package imports
``DetectorConfig`` and ``PoseConfig`` from here. A plugin module that fails to import is
logged and left out of the registry instead of breaking start-up.
"""

from __future__ import annotations

import functools
import importlib
import logging
import operator
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from gemwatch.perception.detector import PersonDetector
    from gemwatch.perception.plugins.centernet import CenterNetConfig
    from gemwatch.perception.plugins.movenet import MoveNetConfig, MoveNetMultiPoseConfig
    from gemwatch.perception.plugins.multipose_nanodet import MultiPoseNanoDetConfig
    from gemwatch.perception.plugins.nanodet import NanoDetConfig
    from gemwatch.perception.plugins.onnx_yolo import OnnxYoloConfig
    from gemwatch.perception.pose import PoseEstimator

log = logging.getLogger(__name__)

# (module, config class name) per capability; the module's build() turns a config into a model.
_DETECTOR_PLUGINS = (
    ("multipose_nanodet", "MultiPoseNanoDetConfig"),
    ("centernet", "CenterNetConfig"),
    ("nanodet", "NanoDetConfig"),
    ("onnx_yolo", "OnnxYoloConfig"),
)
_POSE_PLUGINS = (
    ("movenet", "MoveNetConfig"),
    ("movenet", "MoveNetMultiPoseConfig"),
)


_MODULE_OF_TYPE: dict[str, str] = {}


def _load(plugins: tuple[tuple[str, str], ...]) -> dict[str, type[BaseModel]]:
    """Config classes keyed by their ``type`` literal, skipping modules that fail to import."""
    found: dict[str, type[BaseModel]] = {}
    for module_name, class_name in plugins:
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except Exception:
            log.exception("model plugin %s failed to import; it is not available", module_name)
            continue
        config_cls: type[BaseModel] = getattr(module, class_name)
        type_name = config_cls.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
        found[type_name] = config_cls
        _MODULE_OF_TYPE[type_name] = module_name
    return found


DETECTOR_TYPES: dict[str, type[BaseModel]] = _load(_DETECTOR_PLUGINS)
POSE_TYPES: dict[str, type[BaseModel]] = _load(_POSE_PLUGINS)


def _union(configs: dict[str, type[BaseModel]]) -> Any:
    """A discriminated union over the loaded config classes (a lone class needs no union)."""
    members = tuple(configs.values())
    if not members:
        raise ImportError("no model plugin could be imported; see the errors logged above")
    if len(members) == 1:
        return members[0]
    return Annotated[functools.reduce(operator.or_, members), Field(discriminator="type")]


if TYPE_CHECKING:
    DetectorConfig = Annotated[
        MultiPoseNanoDetConfig | CenterNetConfig | NanoDetConfig | OnnxYoloConfig, Field(discriminator="type")
    ]
    PoseConfig = Annotated[MoveNetConfig | MoveNetMultiPoseConfig, Field(discriminator="type")]
else:
    DetectorConfig = _union(DETECTOR_TYPES)
    PoseConfig = _union(POSE_TYPES)


def _plugin_module(cfg: BaseModel, registry: dict[str, type[BaseModel]]) -> Any:
    type_name = getattr(cfg, "type", None)
    if type_name not in registry or not isinstance(cfg, registry[type_name]):
        raise ValueError(
            f"no plugin for {type(cfg).__name__} (type {type_name!r}); available: {sorted(registry)}"
        )
    return importlib.import_module(f"{__name__}.{_MODULE_OF_TYPE[type_name]}")


def build_detector(cfg: BaseModel) -> PersonDetector:
    """Build the person detector a config names; loads onnxruntime and the model file.

    Raises ``ModelMissingError`` / ``ModelLoadError`` (``gemwatch.perception.provision``) with a
    message a store's installer can act on.
    """
    detector: PersonDetector = _plugin_module(cfg, DETECTOR_TYPES).build(cfg)
    return detector


def build_pose(cfg: BaseModel) -> PoseEstimator:
    """Build the pose estimator a config names; loads onnxruntime and the model file."""
    estimator: PoseEstimator = _plugin_module(cfg, POSE_TYPES).build(cfg)
    return estimator


__all__ = [
    "DETECTOR_TYPES",
    "POSE_TYPES",
    "DetectorConfig",
    "PoseConfig",
    "build_detector",
    "build_pose",
]
