"""Foundation benchmark: where the CPU goes per analysed frame, how many 5-fps camera streams
fit on this machine, what the motion gate saves against a naive decode-and-infer-every-frame
loop (measured in the same run), and peak memory. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/pipeline.py [--data ../shared/data] [--fps 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import av

from gemwatch.config.models import Camera, GemwatchConfig, Storage
from gemwatch.events.bus import StoreSink
from gemwatch.events.store import EventStore
from gemwatch.perception.plugins import build_detector
from gemwatch.pipeline import CameraPipeline
from gemwatch.types import uuid7

EMPTY = "empty-store (generated from counter_hands/classroom_bag_taken_from_desk.mp4)"
# (clip, what it is, also run with the motion gate off?)
CLIPS = [
    ("pedestrians/vtest.avi", "outdoor walkway, 3-10 people at all times", False),
    ("shop/convenience_store_overhead_cctv.mp4", "overhead shop CCTV, 2 customers", False),
    (EMPTY, "a closed store: 30 s of a real empty frame (classroom desk at 6 s) with sensor noise", True),
]


def make_empty_clip(data: Path, out: Path, seconds: float = 30.0, fps: int = 25) -> Path:
    """A static camera over an empty room: one real frame with fresh sensor noise each frame."""
    from fractions import Fraction

    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
    from frames import read_frame

    base = read_frame(data, "counter_hands/classroom_bag_taken_from_desk.mp4", 6.0).astype(np.int16)
    rng = np.random.default_rng(0)
    with av.open(str(out), "w") as c:
        st = c.add_stream("libx264", rate=Fraction(fps))
        st.width, st.height, st.pix_fmt = base.shape[1], base.shape[0], "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            for p in st.encode(vf):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    return out


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def gated(cfg: GemwatchConfig, video: Path, detector, fps: float) -> dict[str, float]:
    camera = Camera(id="bench", url=str(video), fps=fps)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = cfg.model_copy(update={"storage": Storage(data_dir=Path(tmp))})
        store = EventStore(cfg.storage.resolved_database_url())
        sink = StoreSink(store, uuid7())
        pipe = CameraPipeline(cfg, camera, sink, detector=detector)
        c0, w0 = cpu_s(), time.perf_counter()
        result = pipe.run()
        cpu, wall = cpu_s() - c0, time.perf_counter() - w0
        store.close()
    return {
        "frames": result.frames,
        "detector_runs": result.detector_runs,
        "media_s": result.media_s,
        "wall_s": wall,
        "cpu_s": cpu,
        **{f"ms_{k}": v for k, v in result.stage_ms.items()},
    }


def naive(video: Path, detector, max_s: float) -> dict[str, float]:
    """Decode every frame to BGR and run the detector on every one: no pacing, no gate
    (only the first ``max_s`` seconds of video, to keep the benchmark short)."""
    c0, w0 = cpu_s(), time.perf_counter()
    frames = 0
    first = last = None
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for vf in container.decode(stream):
            image = vf.to_ndarray(format="bgr24")
            detector.detect(image)
            frames += 1
            if vf.time is not None:
                first = vf.time if first is None else first
                last = vf.time
                if last - first >= max_s:
                    break
    media = (last or 0.0) - (first or 0.0)
    return {"frames": frames, "media_s": media, "wall_s": time.perf_counter() - w0, "cpu_s": cpu_s() - c0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--naive-seconds", type=float, default=10.0, help="cap the naive loop to this much video")
    args = ap.parse_args()
    cfg = GemwatchConfig()
    detector = build_detector(cfg.perception.detector)
    cores = len(os.sched_getaffinity(0))
    print(
        f"gemwatch pipeline benchmark — {cores} cores, analysis at {args.fps:g} fps, detector "
        f"{cfg.perception.detector.type}"
    )
    rows = []
    tmp = Path(tempfile.mkdtemp())
    for rel, what, gate_off in CLIPS:
        if rel == EMPTY:
            if not (args.data / "counter_hands").exists():
                continue
            video = make_empty_clip(args.data, tmp / "empty.mp4")
        else:
            video = args.data / rel
        if not video.exists():
            print(f"  skip {rel}: not found under {args.data}")
            continue
        g = gated(cfg, video, detector, args.fps)
        ng = (
            g
            if not gate_off
            else gated(
                cfg.model_copy(
                    update={
                        "perception": cfg.perception.model_copy(
                            update={"motion": cfg.perception.motion.model_copy(update={"enabled": False})}
                        )
                    }
                ),
                video,
                detector,
                args.fps,
            )
        )
        nv = naive(video, detector, args.naive_seconds)
        cpu_ms = 1000.0 * g["cpu_s"] / g["frames"]
        streams = cores * 1000.0 / (args.fps * cpu_ms)
        gated_cost = g["cpu_s"] / g["media_s"]
        naive_cost = nv["cpu_s"] / nv["media_s"]
        rows.append((rel, g, ng, nv))
        print(f"\n{rel} ({what})")
        print(
            f"  analysed {g['frames']} frames over {g['media_s']:.1f} s; detector ran on {g['detector_runs']} "
            f"({100 * g['detector_runs'] / g['frames']:.0f}%)"
        )
        stages = ["decode", "motion", "detector", "tracker", "zones", "rules", "pipeline"]
        print("  ms per analysed frame: " + ", ".join(f"{s} {g.get('ms_' + s, 0.0):.2f}" for s in stages))
        print(
            f"  CPU per analysed frame {cpu_ms:.1f} ms → {streams:.1f} camera streams at {args.fps:g} fps "
            f"on {cores} cores; wall {g['wall_s']:.1f} s = {g['media_s'] / g['wall_s']:.1f}× real time"
        )
        gate_note = (
            f", same pipeline with the gate off {ng['cpu_s'] / ng['media_s']:.3f} "
            f"(×{(ng['cpu_s'] / ng['media_s']) / gated_cost:.1f} from the motion gate alone)"
            if ng is not g
            else ""
        )
        print(
            f"  CPU seconds per video second: gated {gated_cost:.3f}{gate_note}; naive loop decoding and "
            f"inferring every frame {naive_cost:.3f} ({nv['frames']} frames) → ×{naive_cost / gated_cost:.1f} saving"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak_mb:.0f} MB")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
