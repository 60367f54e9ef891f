"""Person-detection accuracy on hand-labelled real frames (eval/people_labels.yaml).

For every configuration — model, input size, score threshold, and with or without
confirmation over time by the tracker — prints recall and precision (box IoU ≥ 0.3, greedy
matching, 'ignore' boxes neither rewarded nor penalised) and ms per frame, then ends with the
default configuration's figures.

Tracked configurations run the detector and ByteTrack over the 4 s before each labelled frame
(at 5 fps) and score the tracker's output on the labelled frame, as the live pipeline would see it.

    .venv/bin/python eval/people.py [--data ../shared/data] [--labels eval/people_labels.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import supervision as sv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frames import DEFAULT_LABELS, LabelledFrame, load_labels, upright
from gemwatch.config.models import GemwatchConfig, Tracker
from gemwatch.perception.motion import MotionGate
from gemwatch.perception.perceiver import PERSON_CLASS
from gemwatch.perception.plugins import build_detector
from gemwatch.perception.plugins.centernet import CenterNetConfig
from gemwatch.perception.plugins.multipose_nanodet import MultiPoseNanoDetConfig
from gemwatch.perception.plugins.nanodet import NanoDetConfig
from gemwatch.perception.tracker import PersonTracker

IOU_MATCH = 0.3
WINDOW_S = 4.0
WINDOW_FPS = 5.0
FLOOR = 0.1  # detections are cached at this score; every configuration filters from here
# The tracker settings that suit CenterNet's score scale (found with this script).
CENTERNET_TRACKING = {"new_track_min_score": 0.2, "confirm_score": 0.45, "confirm_mean_score": 0.22}
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    config: object


@dataclass(frozen=True, slots=True)
class Setting:
    label: str
    model: str
    threshold: float
    tracker: Tracker | None = None  # None: single frame, no tracking
    use_motion: bool = True


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter + _EPS)


def score_frame(pred: np.ndarray, frame: LabelledFrame) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) for one frame.

    Greedy matching by IoU, best pairs first; a prediction matched to an ignore box is dropped.
    """
    gt = frame.boxes
    ious = iou_matrix(pred, gt)
    used_pred: set[int] = set()
    used_gt: set[int] = set()
    pairs = np.argwhere(ious >= IOU_MATCH)
    order = np.argsort(-ious[pairs[:, 0], pairs[:, 1]]) if len(pairs) else []
    tp = 0
    ignored_pred = 0
    for k in order:
        p, g = (int(v) for v in pairs[k])
        if p in used_pred or g in used_gt:
            continue
        used_pred.add(p)
        used_gt.add(g)
        if frame.ignore[g]:
            ignored_pred += 1
        else:
            tp += 1
    fp = len(pred) - tp - ignored_pred
    fn = int((~frame.ignore).sum()) - tp
    return tp, fp, fn


def decode_windows(data: Path, frames: list[LabelledFrame]) -> dict[str, list[list[np.ndarray]]]:
    """For every labelled frame: the frames at 5 fps over the 4 s before it, ending with the labelled one.

    Each clip is decoded once; the labelled frame is the first with pts ≥ t (as eval/frames.py).
    """
    by_clip: dict[str, list[LabelledFrame]] = defaultdict(list)
    for f in frames:
        by_clip[f.clip].append(f)
    out: dict[str, list[list[np.ndarray]]] = {}
    for clip, items in by_clip.items():
        wanted = {f.name: f.t for f in items}
        windows: dict[str, list[tuple[float, np.ndarray]]] = {n: [] for n in wanted}
        done: set[str] = set()
        with av.open(str(data / clip)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for vf in container.decode(stream):
                if vf.time is None:
                    continue
                t = float(vf.time)
                image = None
                for name, target in wanted.items():
                    if name in done or t < target - WINDOW_S - _EPS:
                        continue
                    window = windows[name]
                    is_target = t + _EPS >= target
                    if is_target or not window or t - window[-1][0] >= 1.0 / WINDOW_FPS - 1e-3:
                        if image is None:
                            image = upright(vf.to_ndarray(format="bgr24"), vf.rotation)
                        window.append((t, image))
                    if is_target:
                        done.add(name)
                if len(done) == len(wanted):
                    break
        for name in wanted:
            out[name] = [[img for _, img in windows[name]], [t for t, _ in windows[name]]]  # type: ignore[list-item]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="Person-detection recall/precision on labelled real frames.")
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    ap.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    ap.add_argument(
        "--quick", action="store_true", help="only the default and single-frame CenterNet settings"
    )
    args = ap.parse_args()
    frames = [f for f in load_labels(args.labels) if (args.data / f.clip).exists()]
    if not frames:
        print(f"no labelled clips found under {args.data}")
        return 1
    default_cfg = GemwatchConfig().perception
    models = [
        Model(
            "multipose+nanodet",
            MultiPoseNanoDetConfig(type="multipose_nanodet", score_threshold=FLOOR, classes=("person",)),
        ),
        Model("centernet-512", CenterNetConfig(type="centernet", score_threshold=FLOOR, classes=("person",))),
        Model("nanodet-416", NanoDetConfig(type="nanodet", score_threshold=FLOOR, classes=("person",))),
    ]
    if not args.quick:
        models.append(
            Model(
                "centernet-640",
                CenterNetConfig(type="centernet", score_threshold=FLOOR, input_size=640, classes=("person",)),
            )
        )
    d_thr = default_cfg.detector.score_threshold
    d_trk = default_cfg.tracker
    plain = Tracker(new_track_min_score=0.4, confirm_score=0.0, contained_ioa=1.0)
    ens = "multipose+nanodet"
    settings = [
        Setting(f"{ens} single frame ≥0.10", ens, 0.10),
        Setting(f"{ens} single frame ≥0.15", ens, 0.15),
        Setting(f"{ens} + plain ByteTrack", ens, 0.10, plain.model_copy(update={"new_track_min_score": 0.1})),
        Setting(f"{ens} + ByteTrack + confirmation, no motion", ens, d_thr, d_trk, False),
        *[
            Setting(
                f"{ens} + ByteTrack + confirm ≥{c:.2f} or moved & mean ≥{m:.2f}",
                ens,
                d_thr,
                d_trk.model_copy(update={"confirm_score": c, "confirm_mean_score": m}),
            )
            for c, m in ((0.2, 0.1), (0.25, 0.12), (0.3, 0.15), (0.35, 0.15))
        ],
        Setting("centernet-512 single frame ≥0.15", "centernet-512", 0.15),
        Setting("centernet-512 single frame ≥0.20", "centernet-512", 0.20),
        Setting("centernet-512 single frame ≥0.25", "centernet-512", 0.25),
        Setting("centernet-512 single frame ≥0.35", "centernet-512", 0.35),
        Setting("centernet-512 single frame ≥0.45", "centernet-512", 0.45),
        Setting("nanodet-416 single frame ≥0.20", "nanodet-416", 0.20),
        Setting("nanodet-416 single frame ≥0.30", "nanodet-416", 0.30),
        Setting("centernet-512 + plain ByteTrack det≥0.25 new≥0.40", "centernet-512", 0.25, plain),
        Setting(
            "centernet-512 + ByteTrack + confirmation (≥0.45 or moved & mean ≥0.22)",
            "centernet-512",
            0.2,
            d_trk.model_copy(update=CENTERNET_TRACKING),
        ),
        Setting(
            "nanodet-416 + ByteTrack + confirmation",
            "nanodet-416",
            0.2,
            d_trk.model_copy(update=CENTERNET_TRACKING),
        ),
    ]
    if not args.quick:
        settings += [
            Setting("centernet-640 single frame ≥0.25", "centernet-640", 0.25),
            Setting(
                "centernet-640 + ByteTrack + confirmation",
                "centernet-640",
                0.2,
                d_trk.model_copy(update=CENTERNET_TRACKING),
            ),
        ]
    default = Setting(f"DEFAULT {ens} ≥{d_thr:.2f} + ByteTrack + confirmation", ens, d_thr, d_trk)
    settings.append(default)
    print(f"{len(frames)} labelled frames, {sum(f.n_people for f in frames)} people, from {args.data}")
    t0 = time.perf_counter()
    windows = decode_windows(args.data, frames)
    print(f"decoded windows in {time.perf_counter() - t0:.1f} s")
    cache: dict[str, dict[str, list[sv.Detections]]] = {}
    gate_cfg = default_cfg.motion
    ms: dict[str, float] = {}
    for model in models:
        if not any(s.model == model.name for s in settings):
            continue
        detector = build_detector(model.config)  # type: ignore[arg-type]
        need_window = any(s.model == model.name and s.tracker is not None for s in settings)
        per: dict[str, list[sv.Detections]] = {}
        spent, n = 0.0, 0
        for f in frames:
            images = windows[f.name][0] if need_window else windows[f.name][0][-1:]
            dets = []
            gate = MotionGate(gate_cfg)
            for img in images:
                gate.measure(img)
                t1 = time.perf_counter()
                d = detector.detect(img)
                spent += time.perf_counter() - t1
                n += 1
                d = d[d.class_id == PERSON_CLASS]
                d.data["motion"] = gate.moving_fraction(d.xyxy)
                dets.append(d)
            per[f.name] = dets
        cache[model.name] = per
        ms[model.name] = 1000 * spent / max(n, 1)
    rows = []
    for s in settings:
        tp = fp = fn = 0
        for f in frames:
            dets = cache[s.model][f.name]
            if s.tracker is not None:
                tracker = PersonTracker(s.tracker)
                times = windows[f.name][1]
                pred = sv.Detections.empty()
                for d, t in zip(dets, times, strict=True):
                    d = d[d.confidence >= s.threshold]  # type: ignore[operator]
                    motion = np.asarray(d.data["motion"]) if s.use_motion else None
                    pred = tracker.update(d, float(t), motion)
                boxes = pred.xyxy
            else:
                d = dets[-1]
                boxes = d.xyxy[d.confidence >= s.threshold]  # type: ignore[operator]
            a, b, c = score_frame(np.asarray(boxes).reshape(-1, 4), f)
            tp, fp, fn = tp + a, fp + b, fn + c
        recall = tp / max(tp + fn, 1)
        precision = tp / max(tp + fp, 1)
        rows.append((s, tp, fp, fn, recall, precision))
    width = max(len(s.label) for s in settings)
    print(f"\n{'configuration':<{width}}  found  false  missed  recall  precision  ms/frame")
    for s, tp, fp, fn, recall, precision in rows:
        print(
            f"{s.label:<{width}}  {tp:5d}  {fp:5d}  {fn:6d}  {recall:6.3f}  {precision:9.3f}  {ms[s.model]:8.1f}"
        )
    s, tp, fp, fn, recall, precision = rows[-1]
    print(
        f"\ndefault ({s.label.removeprefix('DEFAULT ')}): recall {recall:.3f}, precision {precision:.3f} "
        f"({tp} of {tp + fn} people, {fp} false boxes on {len(frames)} frames)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
