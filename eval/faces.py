"""Face verification accuracy on labelled stills, and watchlist hits on labelled clips.

Stills (``faces:`` in ``DIR/labels.yaml``): every face is found with CenterFace and described
with dlib's ResNet, exactly as enrollment and live matching do; group photos contribute their
listed identities' faces (the largest faces, left to right). All genuine pairs (same name)
and impostor pairs (different names) are scored; the script prints TAR at FAR 1 % and 0.1 %,
TAR and FAR at the operating threshold (``watchlist.match_distance``), every failure at that
threshold, and the hard cases the labels name.

Clips (``video:`` entries with ``identities:``): each identity that also has stills is
enrolled from those stills; the clip runs through the live pipeline (10 analysed fps) and
each labelled appearance of an enrolled identity must raise exactly one hit; any other hit
is a false alarm.

    .venv/bin/python eval/faces.py [--data ../shared/data] [--threshold 0.6] [--no-video]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frames import read_data_labels
from gemwatch.perception.faces import FaceAnalyzer, FaceShot, load_image
from gemwatch.watchlist.config import WatchlistConfig

REPO = Path(__file__).resolve().parents[1]


def faces_of(analyzer: FaceAnalyzer, path: Path, count: int) -> list[FaceShot]:
    """The ``count`` largest faces of a picture, left to right."""
    shots = sorted(analyzer.faces(load_image(path)), key=lambda s: -s.quality.width_px)[:count]
    return sorted(shots, key=lambda s: s.box[0])


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the largest threshold whose impostor acceptance stays ≤ ``far``."""
    imp = np.sort(impostor)
    allowed = int(np.floor(far * len(imp)))
    thr = float(imp[allowed] - 1e-6) if allowed < len(imp) else float("inf")
    return float(np.mean(genuine <= thr)) if len(genuine) else float("nan"), thr


def stills(
    data: Path, labels: dict[str, Any], analyzer: FaceAnalyzer, threshold: float
) -> tuple[int, int, int]:
    folder = data / labels["folder"]
    hard = set(labels.get("hard", []))
    samples: list[tuple[str, str, np.ndarray | None]] = []  # (name, source, embedding)
    for name, files in labels.get("identities", {}).items():
        for f in files:
            got = faces_of(analyzer, folder / f, 1)
            samples.append((name, f, got[0].embedding if got else None))
    for group, names in labels.get("groups", {}).items():
        got = faces_of(analyzer, folder / group, len(names))
        if len(got) < len(names):
            got = [None] * len(names)  # type: ignore[list-item]
        for name, shot in zip(names, got, strict=True):
            samples.append((name, f"{group}[{name}]", None if shot is None else shot.embedding))
    missing = [s for _, s, e in samples if e is None]
    rows = []
    for (n1, s1, e1), (n2, s2, e2) in itertools.combinations(samples, 2):
        d = float("inf") if e1 is None or e2 is None else float(np.linalg.norm(e1 - e2))
        rows.append((n1 == n2, d, s1, s2))
    gen = np.array([d for g, d, *_ in rows if g])
    imp = np.array([d for g, d, *_ in rows if not g])
    print(f"stills: {len(samples)} faces of {len(labels.get('identities', {}))} identities in {folder}")
    if missing:
        print(f"  no face found in: {', '.join(missing)}")
    print(f"  {len(gen)} genuine pairs (distance {gen.min():.3f}–{gen[np.isfinite(gen)].max():.3f}), "
          f"{len(imp)} impostor pairs (closest {imp.min():.3f})")  # fmt: skip
    print(f"  {'FAR target':>12} | {'TAR':>6} | threshold")
    for far in (0.01, 0.001):
        tar, thr = tar_at_far(gen, imp, far)
        print(f"  {far * 100:>11.1f}% | {tar * 100:5.1f}% | {thr:.3f}")
    tar = float(np.mean(gen <= threshold))
    far = float(np.mean(imp <= threshold))
    print(f"  operating threshold {threshold:.2f}: TAR {tar * 100:.1f}% ({int((gen <= threshold).sum())}/{len(gen)}), "
          f"FAR {far * 100:.2f}% ({int((imp <= threshold).sum())}/{len(imp)})")  # fmt: skip
    print(
        f"  (with {len(imp)} impostor pairs, FAR below {100 / len(imp):.2f}% cannot be resolved: 0.1% means none)"
    )
    for h in sorted(hard):
        mine = [d for g, d, a, b in rows if g and h in (a.split("[")[0], b.split("[")[0])]
        worst = max(mine) if mine else float("nan")
        print(f"  hard case {h}: {len(mine)} genuine pairs, worst distance {worst:.3f}")
    fails = [(g, d, a, b) for g, d, a, b in rows if (g and d > threshold) or (not g and d <= threshold)]
    print(f"  failures at {threshold:.2f}: {len(fails)}")
    for g, d, a, b in sorted(fails, key=lambda r: r[1]):
        kind = "genuine rejected" if g else "IMPOSTOR ACCEPTED"
        tag = " (hard case)" if any(x.split("[")[0] in hard for x in (a, b)) else ""
        print(f"    {kind:17s} {d:.3f}  {a} ~ {b}{tag}")
    clear_misses = [r for r in fails if r[0] and not any(x.split("[")[0] in hard for x in r[2:])]
    return len(clear_misses), int((imp <= threshold).sum()), len(gen)


def clips(
    data: Path, labels: dict[str, Any], analyzer: FaceAnalyzer, threshold: float
) -> tuple[int, int, int]:
    """(appearances, correctly hit once, false hits) over every labelled clip with identities."""
    from sqlalchemy.orm import Session

    from gemwatch.analyze import analyze
    from gemwatch.config.models import GemwatchConfig, Storage
    from gemwatch.watchlist.runtime import watchlist_for
    from gemwatch.web.auth import create_user

    folder = data / labels["faces"]["folder"]
    stills_by_name = labels["faces"].get("identities", {})
    hard = set(labels["faces"].get("hard", []))
    total = good = false = 0
    for clip, entry in (labels.get("video") or {}).items():
        apps = entry.get("identities") if isinstance(entry, dict) else None
        if not apps:
            continue
        enrolled = sorted({a["name"] for a in apps if a["name"] in stills_by_name})
        with tempfile.TemporaryDirectory() as tmp:
            cfg = GemwatchConfig(
                storage=Storage(data_dir=Path(tmp)),
                watchlist=WatchlistConfig(
                    policy="face_matching", dpia_reference="eval", match_distance=threshold
                ),
            )
            wl = watchlist_for(cfg, analyzer=analyzer)
            with Session(wl.engine) as s, s.begin():
                create_user(s, "eval-a", "eval-password-1", "manager")
                create_user(s, "eval-b", "eval-password-2", "manager")
            ids: dict[str, str] = {}
            for name in enrolled:
                images = []
                for f in stills_by_name[name]:
                    if f in hard:
                        continue
                    try:
                        wl.face_from_image(load_image(folder / f), name=f)
                        images.append((f, load_image(folder / f)))
                    except ValueError:
                        continue  # below the enrollment gate
                if not images:
                    continue
                ids[wl.enroll(label=name, by="eval-a", images=images, reason="eval", evidence="eval")] = name
            for entry_id in ids:
                wl.approve(entry_id, "eval-b")
            start = datetime(2026, 1, 1, tzinfo=UTC)
            report = analyze(cfg, str(data / clip), fps=10.0, start_time=start)
            with av.open(str(data / clip)) as c:
                first = next(c.decode(video=0))
                offset = float(first.pts * first.time_base)
            hit_rows = {h.id: h.entry_id for h in wl.hits()}
            hits = [
                (ids[hit_rows[e.id]], e.start_ts - start.timestamp() + offset)
                for e in report.events
                if e.type == "watchlist.hit" and e.id in hit_rows
            ]
        print(f"clip {clip}: enrolled {', '.join(ids.values()) or 'nobody'} from stills")
        print(f"  {'identity':20s} {'appearance':>13} | hits")
        used: set[int] = set()
        for a in apps:
            if a["name"] not in ids.values():
                print(f"  {a['name']:20s} {a['start']:5.1f}–{a['end']:5.1f} s | (not enrolled)")
                continue
            total += 1
            mine = [
                i
                for i, (n, t) in enumerate(hits)
                if n == a["name"] and a["start"] - 0.6 <= t <= a["end"] + 0.6
            ]
            used.update(mine)
            good += len(mine) == 1
            print(f"  {a['name']:20s} {a['start']:5.1f}–{a['end']:5.1f} s | {len(mine)}")
        stray = [h for i, h in enumerate(hits) if i not in used]
        false += len(stray)
        for name, t in stray:
            print(f"  FALSE HIT: {name} at {t:.1f} s")
    return total, good, false


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--threshold", type=float, default=WatchlistConfig().match_distance)
    parser.add_argument("--no-video", action="store_true", help="stills only")
    args = parser.parse_args()
    labels = read_data_labels(args.data)
    analyzer = FaceAnalyzer()
    summary = []
    if labels.get("faces"):
        misses, imp_acc, gen = stills(args.data, labels["faces"], analyzer, args.threshold)
        summary.append(
            f"stills: {misses} clear genuine pairs missed of {gen}, {imp_acc} impostor pairs accepted"
        )
    if not args.no_video and labels.get("faces"):
        total, good, false = clips(args.data, labels, analyzer, args.threshold)
        summary.append(f"clips: {good}/{total} appearances with exactly one hit, {false} false hits")
    print(f"SUMMARY threshold {args.threshold:.2f}: " + "; ".join(summary or ["no face labels found"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
