"""Zone pictures (``reference_image``, ``case.open_image``): checked when the config loads (key,
line, relative to the config's folder), and one clear ZonePictureError at run time."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gemwatch.config.counter import CaseParams, ZoneAnalysis
from gemwatch.config.loader import ConfigError, load, parse
from gemwatch.config.models import Camera, Zone, ZoneKind
from gemwatch.perception.zones import ZonePictureError, ZoneWatcher

TRIANGLE = "[[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]"


def config_text(reference: str, opened: str) -> str:
    return (
        "cameras:\n"  # 1
        "  - id: counter\n"  # 2
        "    url: x.mp4\n"  # 3
        "    zones:\n"  # 4
        "      - id: tray1\n"  # 5
        "        kind: tray\n"  # 6
        f"        polygon: {TRIANGLE}\n"  # 7
        f"        reference_image: {reference}\n"  # 8
        "      - id: case1\n"  # 9
        "        kind: case\n"  # 10
        f"        polygon: {TRIANGLE}\n"  # 11
        "        case:\n"  # 12
        f"          open_image: {opened}\n"  # 13
    )


def write_picture(path: Path, image: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((48, 64, 3), 90, np.uint8) if image is None else image)
    return path


def test_missing_and_non_picture_files_are_config_errors_with_key_and_line(tmp_path) -> None:
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "notes.txt").write_text("not a picture\n")
    cfg = tmp_path / "gemwatch.yml"
    cfg.write_text(config_text("refs/missing.png", "refs/notes.txt"))
    with pytest.raises(ConfigError) as info:
        load(cfg)
    problems = info.value.problems
    assert [(p.line, p.path) for p in problems] == [
        (8, "cameras[0].zones[0].reference_image"),
        (13, "cameras[0].zones[1].case.open_image"),
    ]
    assert "reference picture refs/missing.png" in problems[0].message
    assert str(tmp_path / "refs" / "missing.png") in problems[0].message
    assert "no such file" in problems[0].message
    assert "open picture refs/notes.txt" in problems[1].message
    assert "reference picture" not in problems[1].message
    assert "not a picture" in problems[1].message
    assert str(info.value).count("\n") == 1  # one line per problem


def test_a_folder_or_an_empty_file_is_not_a_picture(tmp_path) -> None:
    (tmp_path / "refs").mkdir()
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ConfigError) as info:
        parse(config_text(str(tmp_path / "refs"), str(tmp_path / "empty.png")), "x.yml", config_dir=tmp_path)
    assert [p.line for p in info.value.problems] == [8, 13]
    assert "folder" in info.value.problems[0].message


def test_relative_pictures_are_read_from_the_config_folder(tmp_path, monkeypatch) -> None:
    write_picture(tmp_path / "site" / "refs" / "tray.png")
    write_picture(tmp_path / "site" / "refs" / "open.png")
    cfg = tmp_path / "site" / "gemwatch.yml"
    cfg.write_text(config_text("refs/tray.png", "refs/open.png"))
    monkeypatch.chdir(tmp_path)  # not the config's folder
    loaded = load(cfg)
    tray, case = loaded.cameras[0].zones
    assert tray.reference_image == tmp_path / "site" / "refs" / "tray.png"
    assert case.case_params().open_image == tmp_path / "site" / "refs" / "open.png"
    # the same text without a file (parse) reads relative paths from the working directory
    with pytest.raises(ConfigError):
        parse(cfg.read_text(), "<text>")
    monkeypatch.chdir(tmp_path / "site")
    assert parse(cfg.read_text(), "<text>").cameras[0].zones[0].reference_image == (
        tmp_path / "site" / "refs" / "tray.png"
    )


def test_models_built_in_code_are_not_checked() -> None:
    zone = Zone(
        id="t", kind=ZoneKind.TRAY, polygon=[(0, 0), (1, 0), (1, 1)], reference_image=Path("nope.png")
    )
    assert zone.reference_image == Path("nope.png")
    assert CaseParams(open_image=Path("nope.png")).open_image == Path("nope.png")


# ------------------------------------------------------------------------------------ run time


def scene(seed: int) -> np.ndarray:
    """A textured 320x240 picture (a scene ECC and ORB can lock on to); another seed, another scene."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(
        rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), (320, 240), interpolation=cv2.INTER_NEAREST
    )
    for _ in range(30):
        x, y = (int(v) for v in rng.integers(0, 300, 2))
        cv2.circle(
            img, (x, y % 230), int(rng.integers(4, 20)), tuple(int(c) for c in rng.integers(0, 255, 3)), -1
        )
    return img


def watcher(picture: Path, key: str, stabilise: bool = True) -> ZoneWatcher:
    polygon = [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)]
    if key == "reference_image":
        zone = Zone(id="tray1", kind=ZoneKind.TRAY, polygon=polygon, reference_image=picture)
    else:
        zone = Zone(id="case1", kind=ZoneKind.CASE, polygon=polygon, case=CaseParams(open_image=picture))
    return ZoneWatcher(Camera(id="cam", url="x.mp4", stabilise=stabilise, zones=[zone]), ZoneAnalysis())


@pytest.mark.parametrize("stabilise", [True, False])
@pytest.mark.parametrize(
    ("key", "name"), [("reference_image", "reference picture"), ("open_image", "open picture")]
)
def test_a_picture_of_another_scene_is_one_clear_error(tmp_path, key, name, stabilise) -> None:
    """Also on a fixed camera, which takes a picture where it is: one of another place (another
    camera's frame, here of another shape too) would be the zone at rest and a change for ever."""
    other = write_picture(tmp_path / "other.png", cv2.resize(scene(2), (240, 320)))
    with pytest.raises(ZonePictureError) as info:
        watcher(other, key, stabilise).update(scene(1), 0.0, ())
    msg = str(info.value)
    assert "\n" not in msg
    assert "camera 'cam'" in msg and ("zone 'tray1'" in msg or "zone 'case1'" in msg)
    assert f"{name} {other}" in msg and key in msg
    assert "does not match the camera's view" in msg
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("stabilise", [True, False])
@pytest.mark.parametrize("size", [(320, 240), (640, 480), (352, 288)])
def test_a_picture_of_the_same_scene_is_used(tmp_path, stabilise, size) -> None:
    """At another resolution too, even another shape: a CCTV sub-stream (352x288, 704x576) is
    often the main stream squeezed, so a picture of either fits once scaled."""
    same = write_picture(tmp_path / "same.png", cv2.resize(scene(1), size, interpolation=cv2.INTER_NEAREST))
    states = watcher(same, "reference_image", stabilise).update(scene(1), 0.0, ())
    assert states["tray1"].armed


def test_a_picture_gone_since_the_config_loaded_says_so_without_opencv_warnings(tmp_path, capfd) -> None:
    with pytest.raises(ZonePictureError) as info:
        watcher(tmp_path / "gone.png", "open_image", stabilise=False).update(scene(1), 0.0, ())
    assert "open picture" in str(info.value) and "case.open_image" in str(info.value)
    assert "no such file" in str(info.value)
    captured = capfd.readouterr()
    assert "imread" not in captured.err and "WARN" not in captured.err
