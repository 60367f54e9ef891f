"""``gemwatch analyze VIDEO -c config`` finds the configured camera (and its zones) for the file
however its path is written; anything else is analysed without zones, with a warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gemwatch.analyze import camera_for
from gemwatch.config.models import Camera, GemwatchConfig


def _cfg(*urls: str) -> GemwatchConfig:
    return GemwatchConfig(cameras=[Camera(id=f"c{i}", url=u) for i, u in enumerate(urls)])


def test_same_file_written_differently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = tmp_path / "clips" / "counter.mp4"
    clip.parent.mkdir()
    clip.write_bytes(b"")
    (tmp_path / "link.mp4").symlink_to(clip)
    monkeypatch.chdir(tmp_path)
    cfg = _cfg("rtsp://cam/1", "clips/counter.mp4")
    for written in (
        "clips/counter.mp4",
        "./clips/counter.mp4",
        str(clip),
        "clips/../clips/counter.mp4",
        "link.mp4",
    ):
        found = camera_for(cfg, written)
        assert found is not None and found.id == "c1", written
    assert camera_for(cfg, "clips/other.mp4") is None
    assert camera_for(cfg, "rtsp://cam/1") is not None and camera_for(cfg, "rtsp://cam/2") is None


def test_unmatched_file_warns_that_zones_are_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from gemwatch.analyze import analyze
    from gemwatch.config.models import Storage

    cfg = _cfg(str(tmp_path / "configured.mp4")).model_copy(
        update={"storage": Storage(data_dir=tmp_path / "d")}
    )
    with caplog.at_level(logging.WARNING, logger="gemwatch.analyze"):
        report = analyze(cfg, str(tmp_path / "missing.mp4"), alerts=False)
    assert "no camera in the config has url" in caplog.text
    assert report.camera.zones == [] and report.result.error  # the file itself is missing too
