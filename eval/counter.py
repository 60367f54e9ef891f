"""At the counter, on labelled real footage: expected versus detected events, roles and sessions.

For every video entry of ``DIR/labels.yaml`` that is about a counter (it has ``roles``, or events
of the counter vocabulary: item_placed, item_removed, item_unattended, reach_over, hands_cash, drawer_open),
the clip is analysed with the live pipeline and the zones of its counter config: ``DIR/<clip>.counter.yml`` next to the
clip when there is one, else ``tests/fixtures/counter_*.yml`` whose ``clip`` names it. A clip
without a counter config is listed as not evaluated (zones are what tell a counter from a floor).

A labelled event is found when a detected event of a matching type spans it: the event's start
(when the interaction that caused it began) to its detection (when it was first reported) must
overlap the label's window widened by ``--tolerance`` seconds. Roles are checked against the
hand-drawn boxes in the config's ``roles_truth`` (the tracked person overlapping a box best,
IoU ≥ 0.3, must have that role); a clip with staff and a customer in view at the same instant
must have a showing session then.

    .venv/bin/python eval/counter.py [--data ../shared/data] [--fixtures tests/fixtures] [--tolerance 1.0]

Prints one table per clip and ends with one summary line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
from pydantic import ValidationError
from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frames import read_data_labels, read_frame
from gemwatch.analyze import analyze
from gemwatch.config.models import Camera, GemwatchConfig, Perception, Storage
from gemwatch.types import Event, Frame, Observation

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_FIXTURES = REPO_ROOT / "tests" / "fixtures"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # replay start: ts - EPOCH = seconds into the clip

#: Label type → the product's event types that report it.
MATCHES: dict[str, frozenset[str]] = {
    "item_placed": frozenset({"item_placed"}),
    "item_removed": frozenset({"item_removed", "tray_removed", "item_missing"}),
    "item_unattended": frozenset({"item_unattended"}),
    "reach_over": frozenset({"reach_over"}),
    "hands_cash": frozenset({"hand_over"}),
    "drawer_open": frozenset({"case_opened"}),
}
#: Detected types that describe what happened rather than raise a concern: never a false alarm.
INFORMATIONAL = frozenset({"showing_session", "hand_over", "case_opened"})
IOU_MATCH = 0.3


# ------------------------------------------------------------------------------ set-up


@dataclass(slots=True)
class RoleTruth:
    t: float
    boxes: dict[str, tuple[float, float, float, float]]  # role → normalised box


@dataclass(slots=True)
class CounterSetup:
    """One clip's counter config: the pipeline config to run and the hand-labelled roles."""

    clip: str
    config: GemwatchConfig
    camera: Camera
    roles_truth: list[RoleTruth] = field(default_factory=list)


def find_fixture(clip: str, data_dir: Path, fixtures: Path) -> Path | None:
    beside = data_dir / f"{clip}.counter.yml"
    if beside.exists():
        return beside
    for path in sorted(fixtures.glob("counter_*.yml")):
        doc = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        if isinstance(doc, dict) and doc.get("clip") == clip:
            return path
    return None


def cut_picture(spec: Any, clip: str, zone_id: str, data_dir: Path, work_dir: Path) -> Path:
    """A reference picture named in a counter config (seconds, or ``{clip, t}``) as a PNG file."""
    source, t = (str(spec["clip"]), float(spec["t"])) if isinstance(spec, dict) else (clip, float(spec))
    png = work_dir / f"{Path(source).stem}_{zone_id}_{t:.1f}.png"
    cv2.imwrite(str(png), read_frame(data_dir, source, t))
    return png


def load_setup(path: Path, data_dir: Path, work_dir: Path) -> CounterSetup:
    """A counter config file → the GemwatchConfig to analyse its clip with.

    ``references`` (zone id → seconds into the clip, or ``{clip: other clip, t: seconds}`` for a
    picture of the same place from another recording, as a manager would capture the empty
    counter once) become the zones' reference pictures, cut into ``work_dir``; the camera's url
    is the clip in ``data_dir``. ``open_references`` (same form) are case zones' pictures of the
    case open (``case.open_image``; the closed one is the zone's entry in ``references``).
    """
    doc: dict[str, Any] = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    clip = str(doc["clip"])
    video = data_dir / clip
    cam_doc = dict(doc.get("camera") or {})
    refs = {str(k): v for k, v in (doc.get("references") or {}).items()}
    open_refs = {str(k): v for k, v in (doc.get("open_references") or {}).items()}
    zones = []
    for z in cam_doc.pop("zones", []):
        z = dict(z)
        if z["id"] in refs:
            z["reference_image"] = str(cut_picture(refs[z["id"]], clip, z["id"], data_dir, work_dir))
        if z["id"] in open_refs:
            picture = cut_picture(open_refs[z["id"]], clip, f"{z['id']}-open", data_dir, work_dir)
            z["case"] = {**(z.get("case") or {}), "open_image": str(picture)}
        zones.append(z)
    camera = Camera.model_validate(
        {
            "id": cam_doc.pop("id", Path(clip).stem.replace("_", "-")[:64]),
            "url": str(video),
            "zones": zones,
            **cam_doc,
        }
    )
    perception = Perception.model_validate(doc.get("perception") or {})
    config = GemwatchConfig(
        cameras=[camera], perception=perception, storage=Storage(data_dir=work_dir / "data")
    )
    truth = [
        RoleTruth(float(r["t"]), {k: tuple(v) for k, v in r.items() if k != "t"})
        for r in doc.get("roles_truth") or []
    ]
    return CounterSetup(clip, config, camera, truth)


# ----------------------------------------------------------------------------- analysis


@dataclass(slots=True)
class Detected:
    """A detected event as first reported: start (s into the clip) and detection time."""

    id: str
    type: str
    start: float
    detected: float
    end: float | None
    description: str


@dataclass(slots=True)
class ClipRun:
    setup: CounterSetup
    events: list[Detected]
    frames: dict[float, Observation]  # pts → observation (people with roles)
    sessions: list[tuple[float, float]]


class _Capture:
    """An extra event sink: the first report of every event, and its last end time."""

    def __init__(self) -> None:
        self.first: dict[str, Detected] = {}

    def event(self, ev: Event) -> None:
        off = EPOCH.timestamp()
        d = self.first.get(ev.id)
        if d is None:
            detected = (ev.end_ts if ev.end_ts is not None else ev.start_ts) - off
            self.first[ev.id] = d = Detected(
                ev.id, ev.type, ev.start_ts - off, detected, None, ev.description
            )
        if ev.end_ts is not None:
            d.end = ev.end_ts - off


def run_clip(setup: CounterSetup) -> ClipRun:
    frames: dict[float, Observation] = {}

    def on_frame(frame: Frame, obs: Observation) -> None:
        frames[round(frame.pts, 3)] = obs

    capture = _Capture()
    analyze(setup.config, setup.camera.url, start_time=EPOCH, on_frame=on_frame, extra_sinks=(capture,))
    events = sorted(capture.first.values(), key=lambda d: d.start)
    sessions = [
        (d.start, d.end if d.end is not None else d.detected) for d in events if d.type == "showing_session"
    ]
    return ClipRun(setup, events, frames, sessions)


# ------------------------------------------------------------------------------- scoring


@dataclass(slots=True)
class LabelRow:
    type: str
    start: float
    end: float
    found: Detected | None
    covered: bool  # a counter rule reports this kind of thing


def label_window(ev: dict[str, Any]) -> tuple[float, float]:
    if "at" in ev:
        return float(ev["at"]), float(ev["at"])
    start = float(ev.get("start", 0.0))
    return start, float(ev.get("end", start))


def match_events(labels: list[dict[str, Any]], detected: list[Detected], tolerance: float) -> list[LabelRow]:
    rows: list[LabelRow] = []
    used: set[str] = set()
    for lab in labels:
        start, end = label_window(lab)
        kinds = MATCHES.get(str(lab["type"]))
        found = None
        if kinds:
            for d in detected:
                if d.id in used or d.type not in kinds:
                    continue
                if d.start <= end + tolerance and d.detected >= start - tolerance:
                    found = d
                    used.add(d.id)
                    break
        rows.append(LabelRow(str(lab["type"]), start, end, found, kinds is not None))
    return rows


def same_incident(d: Detected, rows: list[LabelRow], tolerance: float) -> str | None:
    """The found label this extra event also reports (a tray_removed beside an item_removed)."""
    for r in rows:
        kinds = MATCHES.get(r.type)
        near = d.start <= r.end + tolerance and d.detected >= r.start - tolerance
        if r.found is not None and kinds and d.type in kinds and near:
            return r.type
    return None


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(slots=True)
class RoleCheck:
    t: float
    role: str
    got: str | None  # None: nobody tracked there


def check_roles(run: ClipRun) -> list[RoleCheck]:
    out: list[RoleCheck] = []
    times = sorted(run.frames)
    for truth in run.setup.roles_truth:
        if not times:
            break
        pts = min(times, key=lambda p: abs(p - truth.t))
        obs = run.frames[pts]
        for role, box in truth.boxes.items():
            best, best_iou = None, IOU_MATCH
            for p in obs.people:
                b = (p.box[0] / obs.width, p.box[1] / obs.height, p.box[2] / obs.width, p.box[3] / obs.height)
                v = iou(box, b)
                if v >= best_iou:
                    best, best_iou = p, v
            out.append(RoleCheck(truth.t, role, None if best is None else best.role.value))
    return out


def sessions_expected(run: ClipRun) -> list[float]:
    """Instants with staff and a customer both in view (from the hand-drawn truth)."""
    return [t.t for t in run.setup.roles_truth if {"staff", "customer"} <= set(t.boxes)]


# ----------------------------------------------------------------------------------- main


def counter_entries(labels: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for clip, entry in (labels.get("video") or {}).items():
        entry = entry or {}
        types = {str(e.get("type")) for e in entry.get("events") or []}
        if "roles" in entry or types & set(MATCHES):
            out.append((str(clip), entry))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with labels.yaml and the clips")
    ap.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES, help="folder of counter_*.yml configs")
    ap.add_argument("--tolerance", type=float, default=1.0, help="seconds either side of a label")
    args = ap.parse_args(argv)
    labels = read_data_labels(args.data)
    found = covered = unlabelled = roles_ok = roles_all = untracked = sess_ok = sess_all = clips_run = 0
    not_evaluated: list[str] = []
    invalid: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gemwatch-eval-counter-") as tmp:
        for clip, entry in counter_entries(labels):
            fixture = find_fixture(clip, args.data, args.fixtures)
            if fixture is None or not (args.data / clip).exists():
                not_evaluated.append(clip)
                print(
                    f"\n{clip}: not evaluated ({'no counter config' if fixture is None else 'clip missing'})"
                )
                continue
            work = Path(tmp) / Path(clip).stem
            work.mkdir(parents=True, exist_ok=True)
            try:
                setup = load_setup(fixture, args.data, work)
            except (ValidationError, KeyError, TypeError, ValueError) as exc:
                invalid.append(clip)
                print(f"\n{clip}: not evaluated: its counter config {fixture} is invalid:")
                for problem in config_problems(exc):
                    print(f"  {problem}")
                continue
            run = run_clip(setup)
            clips_run += 1
            rows = match_events(list(entry.get("events") or []), run.events, args.tolerance)
            print(f"\n{clip}  (config {fixture.name})")
            print(f"  {'expected':<16} {'when (s)':<13} {'detected':<16} {'start→reported (s)':<20} note")
            for r in rows:
                when = f"{r.start:.1f}" if r.start == r.end else f"{r.start:.1f}-{r.end:.1f}"
                if r.found is not None:
                    d = r.found
                    ended = f", ended {d.end:.1f}" if d.end is not None and d.end > d.detected + 0.05 else ""
                    print(
                        f"  {r.type:<16} {when:<13} {d.type:<16} {d.start:5.1f} → {d.detected:5.1f}{'':8} found{ended}"
                    )
                else:
                    print(
                        f"  {r.type:<16} {when:<13} {'-':<16} {'':<20} {'MISSED' if r.covered else 'no counter rule for this'}"
                    )
            matched = {r.found.id for r in rows if r.found is not None}
            for d in (d for d in run.events if d.id not in matched):
                twin = same_incident(d, rows, args.tolerance)
                alarm = d.type not in INFORMATIONAL and twin is None
                unlabelled += alarm
                note = f"also reports {twin}" if twin else ("UNLABELLED" if alarm else "info")
                print(
                    f"  {'':<16} {'':<13} {d.type:<16} {d.start:5.1f} → {d.detected:5.1f}{'':8} {note}: {d.description}"
                )
            found += sum(1 for r in rows if r.found is not None)
            covered += sum(1 for r in rows if r.covered)
            checks = check_roles(run)
            if checks:
                tracked = [c for c in checks if c.got is not None]
                ok = sum(1 for c in tracked if c.got == c.role)
                roles_ok += ok
                roles_all += len(tracked)
                untracked += len(checks) - len(tracked)
                wrong = ", ".join(f"{c.t:.1f}s {c.role}→{c.got}" for c in tracked if c.got != c.role)
                missing = ", ".join(f"{c.t:.1f}s {c.role}" for c in checks if c.got is None)
                print(
                    f"  roles: {ok}/{len(tracked)} tracked hand-labelled sightings right"
                    + (f"; not right: {wrong}" if wrong else "")
                    + (f"; person not tracked: {missing}" if missing else "")
                )
            both = sessions_expected(run)
            if both:
                sess_all += 1
                sess_ok += any(s <= max(both) and e >= min(both) for s, e in run.sessions)
                spans = ", ".join(f"{s:.1f}-{e:.1f}" for s, e in run.sessions) or "none"
                print(
                    f"  showing sessions: {spans} (staff and customer both in view {min(both):.1f}-{max(both):.1f} s)"
                )
    print(
        f"\ncounter: {found}/{covered} labelled counter events found (±{args.tolerance:g} s), "
        f"{unlabelled} unlabelled alarms, roles {roles_ok}/{roles_all} tracked sightings right "
        f"({untracked} not tracked), sessions {sess_ok}/{sess_all} clips, {clips_run} clips run, "
        f"{len(not_evaluated)} without a counter config"
        + (f", {len(invalid)} with an invalid one" if invalid else "")
    )
    return 1 if invalid else 0


def config_problems(exc: Exception) -> list[str]:
    """One line per problem of a counter config that does not validate (key path: message)."""
    if isinstance(exc, ValidationError):
        return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    if isinstance(exc, KeyError):
        return [f"{exc.args[0]}: required key is missing"]
    return [str(exc)]


if __name__ == "__main__":
    raise SystemExit(main())
