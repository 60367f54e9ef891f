"""``analyze --annotate``: a zone with an event in progress is drawn red, others blue, in the
written video (encoded and decoded for real)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av
import numpy as np

from gemwatch.annotate import HOLD_S, AnnotatedWriter
from gemwatch.types import Event, Frame, Observation, Severity

W, H = 320, 240
ZONE = [(0.1, 0.2), (0.5, 0.2), (0.5, 0.8), (0.1, 0.8)]
T0 = 1_767_225_600.0


def _redness(image: np.ndarray) -> float:
    """Mean red-minus-blue inside the zone (BGR), well away from its outline and label."""
    patch = image[int(0.45 * H) : int(0.7 * H), int(0.2 * W) : int(0.4 * W)].astype(np.float32)
    return float((patch[..., 2] - patch[..., 0]).mean())


def test_zone_is_red_while_its_event_is_in_progress(tmp_path: Path) -> None:
    out = tmp_path / "annotated.mp4"
    writer = AnnotatedWriter(out, 5.0, [("counter", ZONE)])
    grey = np.full((H, W, 3), 128, np.uint8)
    ev = Event(type="loitering", severity=Severity.MEDIUM, camera_id="c", start_ts=T0 + 2.0,
               description="x", zone_id="counter")  # fmt: skip
    for i in range(60):  # 12 s at 5 fps
        pts = i / 5.0
        if pts == 3.0:  # reported at 3 s (started at 2 s), open: known until now
            writer.event(replace(ev, end_ts=T0 + 3.0))
        if pts == 3.4:  # an update of the open event, then nothing for 4.6 s (> HOLD_S)
            writer.event(replace(ev, end_ts=T0 + 3.4))
        if pts == 8.0:
            writer.event(replace(ev, end_ts=T0 + 8.0, ended=True))
        frame = Frame("c", T0 + pts, pts, grey)
        writer.write(frame, Observation("c", T0 + pts, W, H))
    writer.close()
    with av.open(str(out)) as c:
        images = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(images) == 60
    red = [_redness(im) > 10 for im in images]
    # before the report at 3 s: blue; from the report, while open (also long after its last
    # update), to the end at 8 s + HOLD_S: red; then blue
    assert not any(red[:15])
    assert all(red[15 : int((8.0 + HOLD_S) * 5) + 1])
    assert not any(red[int((8.0 + HOLD_S) * 5) + 2 :])


def test_a_place_that_cannot_be_written_is_one_line_before_any_work(tmp_path: Path) -> None:
    """FFmpeg opens its output only at the first frame: /proc/out.mp4 used to fail after the
    whole analysis, as an 'internal error'; a folder that is a file gave a bare errno."""
    import pytest

    from gemwatch.annotate import AnnotateError

    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        (Path("/proc/out.mp4"), "No such file or directory"),
        (afile / "out.mp4", f"{afile} is not a folder"),
        (tmp_path / "out.notaformat", "Could not determine output format"),
    ]
    for path, why in cases:
        with pytest.raises(AnnotateError) as info:
            AnnotatedWriter(path, 5.0)
        assert str(info.value) == f"--annotate {path}: cannot write there ({why})"
    assert not (tmp_path / "out.notaformat").exists()  # no empty file left behind
