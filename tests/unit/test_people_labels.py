"""The hand-labelled person boxes (eval/people_labels.yaml) are well-formed and match the real footage."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("GEMWATCH_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))
LABELS = REPO_ROOT / "eval" / "people_labels.yaml"


def _load_frames_module() -> ModuleType:
    # eval/ is a folder of scripts, not an installed package: load the helper by path.
    spec = importlib.util.spec_from_file_location("gemwatch_eval_frames", REPO_ROOT / "eval" / "frames.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


frames_mod = _load_frames_module()
FRAMES = frames_mod.load_labels(LABELS)


def _needs_data() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"real test footage not found at {DATA_DIR} (set GEMWATCH_TEST_DATA)")
    return DATA_DIR


def test_enough_frames_across_the_footage() -> None:
    assert len(FRAMES) >= 60
    clips_by_folder: dict[str, set[str]] = {}
    for frame in FRAMES:
        clips_by_folder.setdefault(frame.clip.split("/")[0], set()).add(frame.clip)
    assert len(clips_by_folder["shop"]) >= 3
    assert len(clips_by_folder["counter_hands"]) >= 3
    assert sum(f.clip == "pedestrians/vtest.avi" for f in FRAMES) >= 15


def test_frames_are_unique() -> None:
    duplicates = [key for key, n in Counter((f.clip, f.t) for f in FRAMES).items() if n > 1]
    assert duplicates == []


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: f.name)
def test_boxes_inside_frame_with_positive_area(frame) -> None:
    w, h = frame.size
    boxes = frame.boxes
    assert boxes.shape == (len(frame.ignore), 4)
    assert len(frame.notes) == len(frame.ignore)
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


def test_every_ignored_box_says_why() -> None:
    for frame in FRAMES:
        for ignored, note in zip(frame.ignore, frame.notes, strict=True):
            if ignored:
                assert note, f"{frame.name}: ignored box without a note"


def test_both_positives_and_empty_frames_present() -> None:
    counted = [f.n_people for f in FRAMES]
    assert sum(counted) >= 150
    assert counted.count(0) >= 3, "frames with nobody in them keep false alarms measurable"
    assert max(counted) >= 8, "a crowded frame is needed to measure recall in a crowd"


def test_count_check_frames_declare_their_counts() -> None:
    from ruamel.yaml import YAML

    raw = YAML(typ="safe").load(LABELS.read_text())
    declared = {(c["clip"], float(c["t"])): int(c["people"]) for c in raw["count_check"]}
    checked = [f for f in FRAMES if f.count_check]
    assert len(checked) >= 5
    assert {f.clip for f in checked} == {"pedestrians/vtest.avi"}
    for frame in checked:
        assert declared[(frame.clip, frame.t)] == frame.n_people
        assert not frame.ignore.any(), "count_check frames hold no ambiguous people"


def test_malformed_box_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "labels.yaml"
    bad.write_text(
        "version: 1\nframes:\n"
        "  - {clip: pedestrians/vtest.avi, t: 1.0, size: [768, 576], people: [[1, 2, 3]]}\n"
    )
    with pytest.raises(ValueError, match="is not"):
        frames_mod.load_labels(bad)


def test_count_check_of_unlabelled_frame_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "labels.yaml"
    bad.write_text(
        "version: 1\ncount_check:\n  - {clip: pedestrians/vtest.avi, t: 9.0, people: 1}\n"
        "frames:\n  - {clip: pedestrians/vtest.avi, t: 1.0, size: [768, 576], people: []}\n"
    )
    with pytest.raises(ValueError, match="not labelled"):
        frames_mod.load_labels(bad)


@pytest.mark.parametrize(
    ("rotation", "expected"),
    [(0, [[1, 2], [3, 4]]), (-90, [[3, 1], [4, 2]]), (90, [[2, 4], [1, 3]]), (180, [[4, 3], [2, 1]])],
)
def test_upright_turns_like_a_player(rotation: int, expected: list[list[int]]) -> None:
    # PyAV reports the display matrix as counter-clockwise degrees; -90 means "show turned clockwise".
    image = np.array([[1, 2], [3, 4]])
    assert frames_mod.upright(image, rotation).tolist() == expected


def test_recorded_size_matches_decoded_upright_frame() -> None:
    data_dir = _needs_data()
    for frame in FRAMES:
        image = frames_mod.read_frame(data_dir, frame.clip, frame.t)
        w, h = frame.size
        assert image.shape == (h, w, 3), f"{frame.name}: decoded {image.shape}, labelled {frame.size}"


def test_rotated_phone_clip_is_labelled_upright() -> None:
    data_dir = _needs_data()
    clip = "counter_hands/classroom_bag_taken_from_desk.mp4"
    with av.open(str(data_dir / clip)) as container:
        stream = container.streams.video[0]
        coded = (stream.width, stream.height)
    labelled = {f.size for f in FRAMES if f.clip == clip}
    assert labelled == {(coded[1], coded[0])}


@pytest.mark.parametrize(
    "clip", ["pedestrians/vtest.avi", "shop/stock_cctvlook_clothing_conceal_shutterstock.webm"]
)
def test_read_frame_is_first_frame_at_or_after_t(clip: str) -> None:
    data_dir = _needs_data()
    t = max(f.t for f in FRAMES if f.clip == clip)
    with av.open(str(data_dir / clip)) as container:
        expected = next(
            f.to_ndarray(format="bgr24")
            for f in container.decode(video=0)
            if f.time is not None and f.time >= t
        )
    np.testing.assert_array_equal(frames_mod.read_frame(data_dir, clip, t), expected)
