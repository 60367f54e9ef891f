"""Sources: cameras and files in, upright timestamped frames and encoded packets out. Runs no models."""

from gemwatch.sources.packets import PacketRing, RingPacket, StreamParams
from gemwatch.sources.video import CameraState, CameraStatus, SourceError, VideoSource

__all__ = [
    "CameraState",
    "CameraStatus",
    "PacketRing",
    "RingPacket",
    "SourceError",
    "StreamParams",
    "VideoSource",
]
