"""Counter benchmark: what watching trays, pads and cases costs per analysed frame, on the real
counter clips with their checked-in counter configs (the zones and pictures eval/counter.py uses).

The zone watcher (``perception/zones.py``: occlusion masks, cell comparison, piece counting, case
votes, per-zone alignment on stabilised cameras) is timed inside a real ``analyze`` run, so it
sees the same frames and people it sees live; the whole pipeline's CPU per frame is measured in
the same run, for the share. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/counter.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from counter import DEFAULT_DATA, DEFAULT_FIXTURES, counter_entries, find_fixture, load_setup, run_clip
from frames import read_data_labels
from gemwatch.perception import zones as zones_module


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    labels = read_data_labels(args.data)
    original = zones_module.ZoneWatcher.update
    costs: list[float] = []

    def timed(self, *a, **kw):  # type: ignore[no-untyped-def]
        c0 = time.thread_time()  # this thread only: the recorder's and ONNX's threads are not zones
        try:
            return original(self, *a, **kw)
        finally:
            costs.append(time.thread_time() - c0)

    zones_module.ZoneWatcher.update = timed  # type: ignore[method-assign]
    print(f"{'clip':<40} {'zones':>5} {'stab.':>5} {'frames':>6} {'zones ms/frame':>15} {'p95':>6} "
          f"{'pipeline ms/frame':>18} {'share':>6}")  # fmt: skip
    total_zone = total_all = 0.0
    frames_all = 0
    with tempfile.TemporaryDirectory(prefix="gemwatch-bench-counter-") as tmp:
        for clip, _entry in counter_entries(labels):
            fixture = find_fixture(clip, args.data, DEFAULT_FIXTURES)
            if fixture is None or not (args.data / clip).exists():
                continue
            work = Path(tmp) / Path(clip).stem
            work.mkdir(parents=True)
            setup = load_setup(fixture, args.data, work)
            costs.clear()
            c0 = time.process_time()
            run = run_clip(setup)
            cpu = time.process_time() - c0
            n = max(1, len(run.frames))
            watched = sum(1 for z in setup.camera.zones if z.kind in zones_module.APPEARANCE_KINDS)
            ms = 1000 * np.asarray(costs or [0.0])
            print(
                f"{Path(clip).name:<40} {watched:>5} {'yes' if setup.camera.stabilise else 'no':>5} {n:>6} "
                f"{ms.sum() / n:>15.1f} {np.percentile(ms, 95):>6.1f} {1000 * cpu / n:>18.1f} "
                f"{ms.sum() / 1000 / max(cpu, 1e-9):>6.0%}"
            )
            total_zone += ms.sum() / 1000
            total_all += cpu
            frames_all += n
    zones_module.ZoneWatcher.update = original  # type: ignore[method-assign]
    print(
        f"\ncounter zones: {1000 * total_zone / max(frames_all, 1):.1f} ms CPU per analysed frame "
        f"({total_zone / max(total_all, 1e-9):.0%} of the pipeline's {1000 * total_all / max(frames_all, 1):.1f} ms) "
        f"over {frames_all} frames"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
