"""The bundled demo: a real clip and zones drawn for it, so ``gemwatch demo`` shows the whole
pipeline (tracking, loitering, after-hours presence, clips) on a fresh machine."""

from __future__ import annotations

from pathlib import Path

from gemwatch.config.models import (
    Camera,
    GemwatchConfig,
    LoiteringParams,
    PresenceRule,
    Rules,
    Storage,
    Store,
    TimeWindow,
    Zone,
    ZoneKind,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_VIDEOS = (
    REPO_ROOT.parent / "shared" / "data" / "pedestrians" / "vtest.avi",
    Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi"),
)

# Drawn on vtest.avi (768×576, elevated view of a campus walkway): the paved area on the right
# where people stop and talk stands in for a shop entrance; the lawn path on the left for a
# counter approach. Thresholds are short because the clip is only 80 s long.
VTEST_ZONES = [
    Zone(
        id="entrance",
        name="Entrance",
        kind=ZoneKind.ENTRANCE,
        polygon=[(0.55, 0.45), (0.98, 0.45), (0.98, 0.80), (0.55, 0.80)],
        loitering=LoiteringParams(dwell_s=10.0, grace_s=2.0),
    ),
    Zone(
        id="lawn",
        name="Lawn",
        kind=ZoneKind.NO_GO,
        polygon=[(0.0, 0.45), (0.45, 0.58), (0.45, 1.0), (0.0, 1.0)],
    ),
]


def find_demo_video() -> str | None:
    for path in DEMO_VIDEOS:
        if path.is_file():
            return str(path)
    return None


def demo_config(video: str, data_dir: Path) -> GemwatchConfig:
    return GemwatchConfig(
        store=Store(name="Demo Jewellers", timezone="Europe/London"),
        storage=Storage(data_dir=data_dir),
        cameras=[Camera(id="walkway", name="Walkway", url=video, fps=5.0, zones=VTEST_ZONES)],
        rules=Rules(
            presence=[
                PresenceRule(id="no-go", zones=["lawn"], min_s=1.0, grace_s=2.0),
                PresenceRule(
                    id="after-hours",
                    whole_frame=True,
                    windows=[TimeWindow(start="20:00", end="07:00")],  # type: ignore[arg-type]
                    min_s=2.0,
                ),
            ]
        ),
    )
