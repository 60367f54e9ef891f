"""Configuration: typed models of gemwatch.yml and a loader whose errors name key and line."""

from gemwatch.config.loader import EXAMPLE_PATH, ConfigError, ConfigProblem, load, parse
from gemwatch.config.models import Camera, GemwatchConfig, PresenceRule, Zone, ZoneKind

__all__ = [
    "EXAMPLE_PATH",
    "Camera",
    "ConfigError",
    "ConfigProblem",
    "GemwatchConfig",
    "PresenceRule",
    "Zone",
    "ZoneKind",
    "load",
    "parse",
]
