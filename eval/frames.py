"""Hand-labelled person boxes on real footage: loading the labels and decoding the labelled frames.

The labels live in ``eval/people_labels.yaml`` (its header documents the format). A frame is named by its
clip (path relative to the data dir) and a time in seconds; :func:`read_frame` turns that into the exact
upright BGR image the boxes were drawn on, so every consumer (the person-detector eval, tests, the
labelling helper below) decodes the same pixels. Rotation flags of phone clips are applied, because the
boxes are in the upright frame a person would see in a player.

Run as a script to write labelled frames with their boxes drawn, for checking the labels by eye::

    python eval/frames.py --out /tmp/labels/check
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from ruamel.yaml import YAML

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LABELS = Path(__file__).resolve().parent / "people_labels.yaml"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

# A frame's pts is compared with the requested time with this slack, so a time written with a few
# decimals (12.0) still selects the frame whose exact pts is 11.99999...
_PTS_EPS = 1e-4


def read_data_labels(data_dir: Path) -> dict[str, Any]:
    """``DIR/labels.yaml`` of a data folder (the shared eval schema), or SystemExit with one
    line saying what is wrong: every eval script's ``--data`` reads it."""
    path = Path(data_dir) / "labels.yaml"
    if not path.is_file():
        raise SystemExit(
            f"error: no labels.yaml in {data_dir} (--data is a folder laid out like ../shared/data)"
        )
    try:
        labels = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except Exception as exc:  # ruamel's errors, a file that is not text
        raise SystemExit(f"error: {path}: cannot read it: {str(exc).splitlines()[0]}") from None
    if not isinstance(labels, dict):
        raise SystemExit(f"error: {path}: expected a mapping of clips and faces")
    return labels


@dataclass(frozen=True, slots=True)
class LabelledFrame:
    """One labelled frame: which clip, when, how big (upright) and where the people are.

    ``boxes`` is an ``(N, 4)`` float array of ``[x1, y1, x2, y2]`` pixels in the upright frame;
    ``ignore[i]`` marks a box that should neither reward nor penalise a detector (heavily occluded,
    tiny, or only a limb visible). ``notes[i]`` is the labeller's remark, empty when none.
    """

    clip: str
    t: float
    size: tuple[int, int]
    boxes: np.ndarray
    ignore: np.ndarray
    notes: tuple[str, ...]
    count_check: bool

    @property
    def n_people(self) -> int:
        """Number of people that count (not ignored)."""
        return int((~self.ignore).sum())

    @property
    def name(self) -> str:
        """A short file-name-safe identifier, e.g. ``vtest_12.0``."""
        return f"{Path(self.clip).stem}_{self.t:.1f}"


def _parse_person(entry: Any) -> tuple[list[float], bool, str]:
    if isinstance(entry, dict):
        box = [float(v) for v in entry["box"]]
        return box, bool(entry.get("ignore", False)), str(entry.get("note", ""))
    return [float(v) for v in entry], False, ""


def load_labels(path: Path | str = DEFAULT_LABELS) -> list[LabelledFrame]:
    """Read the labels file into :class:`LabelledFrame` objects, in file order.

    Raises ``ValueError`` for a malformed box (not four numbers) or an unknown version, so a typo in
    the ground truth fails loudly instead of silently shifting an evaluation.
    """
    data = YAML(typ="safe").load(Path(path).read_text())
    if data.get("version") != 1:
        raise ValueError(f"{path}: unsupported labels version {data.get('version')!r}")
    checked = {(str(c["clip"]), float(c["t"])) for c in data.get("count_check", [])}
    frames: list[LabelledFrame] = []
    for item in data["frames"]:
        parsed = [_parse_person(p) for p in item.get("people") or []]
        for box, _, _ in parsed:
            if len(box) != 4:
                raise ValueError(f"{path}: {item['clip']} t={item['t']}: box {box} is not [x1, y1, x2, y2]")
        boxes = np.array([p[0] for p in parsed], dtype=np.float64).reshape(-1, 4)
        w, h = (int(v) for v in item["size"])
        clip, t = str(item["clip"]), float(item["t"])
        frames.append(
            LabelledFrame(
                clip=clip,
                t=t,
                size=(w, h),
                boxes=boxes,
                ignore=np.array([p[1] for p in parsed], dtype=bool),
                notes=tuple(p[2] for p in parsed),
                count_check=(clip, t) in checked,
            )
        )
    missing = checked - {(f.clip, f.t) for f in frames}
    if missing:
        raise ValueError(f"{path}: count_check names frames that are not labelled: {sorted(missing)}")
    return frames


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display-matrix rotation (degrees counter-clockwise, as PyAV reports it) to an image."""
    quarter_turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=quarter_turns)) if quarter_turns else image


def read_frame(data_dir: Path | str, clip: str, t: float) -> np.ndarray:
    """Decode the first frame of ``clip`` whose timestamp is at or after ``t`` seconds, upright, BGR.

    Seeks to the key frame before ``t`` and decodes forward, so the result is the same whatever the
    key-frame spacing. Raises ``ValueError`` when ``t`` lies beyond the last frame.
    """
    with av.open(str(Path(data_dir) / clip)) as container:
        stream = container.streams.video[0]
        if stream.time_base is not None and t > 0:
            container.seek(int(t / stream.time_base), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.time is None or frame.time + _PTS_EPS < t:
                continue
            return upright(frame.to_ndarray(format="bgr24"), frame.rotation)
    raise ValueError(f"{clip}: no frame at or after t={t}s")


def draw_labels(image: np.ndarray, frame: LabelledFrame) -> np.ndarray:
    """Return a copy of ``image`` with the frame's boxes drawn: green counted, red ignored, numbered."""
    import cv2

    out = image.copy()
    for i, (box, ign) in enumerate(zip(frame.boxes, frame.ignore, strict=True)):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        color = (0, 0, 255) if ign else (0, 255, 0)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 1)
        cv2.putText(out, str(i), (x1 + 2, y1 + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
    return out


def main() -> None:
    """Write every labelled frame with its boxes drawn to ``--out`` for a by-eye check."""
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for frame in load_labels(args.labels):
        image = read_frame(args.data_dir, frame.clip, frame.t)
        cv2.imwrite(str(args.out / f"{frame.name}.png"), draw_labels(image, frame))
        print(f"{frame.name}: {frame.n_people} people, {int(frame.ignore.sum())} ignored")


if __name__ == "__main__":
    main()
