"""``gemwatch run``: one process per camera, one bus and one SQL writer in the main process.

A camera process that dies (bad stream, crash in a model) is logged and restarted with
backoff; the others keep running. A camera stopped by its own config (a zone picture that is
not this camera's view, a file camera whose file is missing, a still picture or no video)
exits with :data:`CONFIG_EXIT`, and a file camera whose file stops early (truncated, corrupt)
with :data:`DATA_EXIT`: either is logged once, its state becomes ``failed`` with the reason,
and it is not restarted, since a restart cannot fix it. When every camera has ended on its
own (file cameras: a replay), the node's exit code is 1 if any of them failed, as
``gemwatch analyze`` exits 1 for a truncated file; a node stopped by a signal exits 0.
SIGINT/SIGTERM stop every camera cleanly: open events get their final duration and pending
clips are written before the processes exit.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gemwatch.config.models import Camera, GemwatchConfig
from gemwatch.events.bus import EventLog, FanoutSink, StoreSink, drain
from gemwatch.events.retention import enforce
from gemwatch.events.store import EventStore
from gemwatch.types import uuid7

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 600.0
#: Exit code of a camera process stopped by a config problem (sysexits' EX_CONFIG): not restarted.
CONFIG_EXIT = 78
#: Exit code of a file camera whose file ended early or with a read error (sysexits' EX_DATAERR).
DATA_EXIT = 65


def _camera_main(
    cfg: GemwatchConfig, camera: Camera, q: Any, stop: Any, start_time: datetime | None, ctl: Any = None
) -> None:
    """Entry point of a camera process: build models, run the pipeline until ``stop``.

    ``ctl`` (optional queue) brings edited Camera configs from the web console; they are applied
    between two frames, on the pipeline's own thread. Live pictures for the console are drawn
    only while a viewer marker is fresh (see ``gemwatch.web.live``).
    """
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s [{camera.id}] %(message)s")
    from gemwatch.events.bus import QueueSink
    from gemwatch.perception.plugins import build_detector, build_pose
    from gemwatch.pipeline import CameraPipeline
    from gemwatch.web.live import LiveWriter, OpenZones

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    from gemwatch.sources.video import CameraState, CameraStatus

    duration: float | None = None  # a file camera's stated length, for truncation
    if _is_file(camera):
        # before the models load: a missing file, a still picture or a file that is no video
        # is one clear line, as ``analyze`` says it, not "online" then "end of file"
        from gemwatch.analyze import probe_duration
        from gemwatch.sources.video import SourceError

        try:
            duration = probe_duration(camera.detect_url or camera.url)
        except SourceError as exc:
            QueueSink(q).status(
                CameraStatus(camera.id, CameraState.FAILED, f"camera '{camera.id}': {exc}", time.time())
            )
            raise SystemExit(CONFIG_EXIT) from None
    detector = build_detector(cfg.perception.detector)
    pose = build_pose(cfg.perception.pose) if cfg.perception.pose is not None else None
    sink = OpenZones(QueueSink(q))
    pending: list[Camera] = []
    live = LiveWriter(
        cfg.storage.data_dir,
        camera.id,
        cfg.store.tz,
        max_fps=cfg.web.live_fps,
        zones=lambda: pipeline.camera.zones,
        alerts=sink.zones,
    )

    def on_frame(frame: Any, obs: Any) -> None:
        if pending:
            pipeline.set_camera(pending.pop())
            pending.clear()
            log.info("camera %s: new zones applied (%d zone(s))", camera.id, len(pipeline.camera.zones))
        live.on_frame(frame, obs)

    pipeline = CameraPipeline(
        cfg, camera, sink, detector=detector, pose=pose, start_time=start_time, on_frame=on_frame
    )

    def watch_stop() -> None:
        # Polled, not stop.wait(): a thread that dies inside a multiprocessing Event's wait (this
        # process ending with its file, or crashing) leaves a sleeper that never wakes, and the
        # parent's next stop.set() then blocks for ever.
        while not stop.is_set():
            time.sleep(0.2)
        pipeline.stop()

    def watch_ctl() -> None:
        while (update := ctl.get()) is not None:
            pending.append(update)

    threading.Thread(target=watch_stop, daemon=True).start()
    if ctl is not None:
        threading.Thread(target=watch_ctl, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: pipeline.stop())
    cpu_start = time.process_time()
    from gemwatch.perception.zones import ZonePictureError

    try:
        result = pipeline.run()
    except ZonePictureError as exc:
        # the node logs the reason once and does not restart this camera (no traceback)
        sink.status(CameraStatus(camera.id, CameraState.FAILED, str(exc), time.time()))
        raise SystemExit(CONFIG_EXIT) from None
    log.info(
        "camera %s used %.1f CPU-s for %d frames; live view: %d pictures, %.1f ms CPU each",
        camera.id,
        time.process_time() - cpu_start,
        result.frames,
        live.written,
        1000 * live.cost_s / max(1, live.written),
    )
    log.info(
        "camera %s stopped after %d frames%s",
        camera.id,
        result.frames,
        f": {result.error}" if result.error else "",
    )
    if _is_file(camera) and not stop.is_set():
        # a file that ended with an error, or well before its stated length: as ``analyze`` says
        from gemwatch.analyze import truncation_error

        truncated = truncation_error(camera.detect_url or camera.url, result, duration)
        problem = result.error or (truncated and f"camera '{camera.id}': {truncated}")
        if problem:  # result.error names the camera already
            sink.status(CameraStatus(camera.id, CameraState.FAILED, problem, time.time()))
            raise SystemExit(DATA_EXIT)


@dataclass(slots=True)
class _Worker:
    camera: Camera
    process: Any
    started: float
    restarts: int = 0
    finished: bool = False


def _is_file(camera: Camera) -> bool:
    url = camera.detect_url or camera.url
    return "://" not in url and not url.startswith("/dev/")


class _Control:
    """What the web console may ask of the node: hand a camera its edited zones (no restart)."""

    def __init__(self, workers: dict[str, _Worker], ctls: dict[str, Any]) -> None:
        self.workers = workers
        self.ctls = ctls

    def reload_camera(self, camera: Camera) -> bool:
        w = self.workers.get(camera.id)
        if w is None:
            return False
        w.camera = camera  # a restart after this uses the new zones too
        if not w.process.is_alive():
            return False
        self.ctls[camera.id].put(camera)
        return True


def run_node(
    cfg: GemwatchConfig,
    *,
    start_time: datetime | None = None,
    stop_after_s: float | None = None,
    config_path: Path | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (or every file camera has ended); returns the exit code.

    With ``web.enabled`` the web console serves from a thread of this process; ``config_path``
    is where its zone editor saves.
    """
    store = EventStore(cfg.storage.resolved_database_url(), cfg.store.tz)
    run_id = uuid7()
    cameras = [c for c in cfg.cameras if c.enabled]
    store.start_run(run_id, "run", [c.url for c in cameras])
    from gemwatch.alerts.dispatcher import from_config as alert_dispatcher

    alerts = alert_dispatcher(cfg, store.engine)  # None without alert routes
    from gemwatch.web.hub import Hub

    hub = Hub()  # camera states and live updates for the web console
    from gemwatch.watchlist.runtime import hit_sink, node_service

    hits = hit_sink(cfg, store.engine)  # None unless face matching is on
    watchlist = node_service(cfg, store.engine)  # HQ sync and expiry; None while the policy is off
    from gemwatch.events.compliance import ComplianceSink

    compliance = ComplianceSink(store.engine, cfg.store.tz)  # showing sessions, protocol violations
    store_sink = StoreSink(store, run_id)  # also remembers each camera's last status
    sink = FanoutSink(
        store_sink, compliance, *([hits] if hits else []), *([alerts] if alerts else []), hub, EventLog(log)
    )
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    stop = ctx.Event()
    workers: dict[str, _Worker] = {}
    ctls: dict[str, Any] = {}
    failed: dict[str, str] = {}  # camera id -> why it stopped for good

    def spawn(camera: Camera, restarts: int = 0) -> None:
        ctl = ctls.setdefault(camera.id, ctx.Queue())
        p = ctx.Process(
            target=_camera_main,
            args=(cfg, camera, q, stop, start_time, ctl),
            name=f"gemwatch-{camera.id}",
            daemon=False,
        )
        p.start()
        workers[camera.id] = _Worker(camera, p, time.monotonic(), restarts)

    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        # Only a flag here: the main loop sets ``stop``. Setting a multiprocessing Event inside a
        # signal handler deadlocks when the handler interrupts the main thread's own stop.set().
        log.info("received %s, stopping cameras", signal.Signals(signum).name)
        stopping.set()

    web = _start_web(cfg, store, hub, _Control(workers, ctls), config_path)
    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    for camera in cameras:
        spawn(camera)
    log.info("gemwatch node running %d camera(s); data in %s", len(cameras), cfg.storage.data_dir)
    started = time.monotonic()
    next_retention = 0.0
    try:
        while True:
            drain(q, sink)
            if stopping.is_set():
                stop.set()
            now = time.monotonic()
            if stop_after_s is not None and now - started > stop_after_s and not stopping.is_set():
                stopping.set()
                stop.set()
            if now >= next_retention:
                _retention(cfg, store)
                next_retention = now + RETENTION_EVERY_S
            if watchlist is not None:
                watchlist.tick()
            alive = 0
            for cam_id, w in list(workers.items()):
                if w.process.is_alive():
                    alive += 1
                    continue
                if w.finished:
                    continue
                code = w.process.exitcode
                if stopping.is_set() or (code == 0 and _is_file(w.camera)):
                    w.finished = True
                    continue
                if code in (CONFIG_EXIT, DATA_EXIT):
                    w.finished = True
                    failed[cam_id] = _camera_failure(cam_id, q, sink, store_sink, code)
                    continue
                delay = min(60.0, 2.0 ** min(w.restarts, 6))
                if now - w.started < delay:
                    alive += 1
                    continue
                log.error(
                    "camera %s process exited with code %s; restarting (attempt %d)",
                    cam_id,
                    code,
                    w.restarts + 1,
                )
                spawn(w.camera, w.restarts + 1)
                alive += 1
            if alive == 0:
                break
    finally:
        stop.set()
        if watchlist is not None:
            watchlist.stop()
        deadline = time.monotonic() + 15.0
        for w in workers.values():
            w.process.join(timeout=max(0.1, deadline - time.monotonic()))
            if w.process.is_alive():
                log.warning("camera %s did not stop in time; terminating", w.camera.id)
                w.process.terminate()
        drain(q, sink, timeout=0.5)
        for ctl in ctls.values():
            ctl.put(None)
        if web is not None:
            web.stop()
        if alerts is not None:
            alerts.close(drain_s=5.0)  # what is left is sent after the next start
        store.end_run(run_id, "stopped" if stopping.is_set() else "done")
        store.close()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    if failed and not stopping.is_set():
        log.error("%d of %d camera(s) failed: %s", len(failed), len(cameras), ", ".join(sorted(failed)))
        return 1
    return 0


def _camera_failure(cam_id: str, q: Any, sink: Any, store_sink: StoreSink, code: int = CONFIG_EXIT) -> str:
    """A camera process stopped for good (its config, or its file): one error line with its
    reason, state ``failed`` (the process sent it just before exiting; sent here if it got
    lost). Returns the reason."""
    from gemwatch.sources.video import CameraState, CameraStatus

    drain(q, sink, timeout=0.5)  # the process's last report may still be in the queue
    status = store_sink.statuses.get(cam_id)
    if status is None or status.state != CameraState.FAILED:
        what = "a config problem" if code == CONFIG_EXIT else "its file ended with an error"
        status = CameraStatus(cam_id, CameraState.FAILED, f"camera '{cam_id}': {what}", time.time())
        sink.status(status)
    fix = " (fix the config, then restart gemwatch)" if code == CONFIG_EXIT else ""
    reason = status.reason or f"camera '{cam_id}' failed"
    log.error("%s; this camera is not restarted%s", reason, fix)
    return reason


def _start_web(
    cfg: GemwatchConfig, store: EventStore, hub: Any, control: _Control, config_path: Path | None
) -> Any:
    """Start the web console; a console that cannot start is logged, analysis goes on."""
    if not cfg.web.enabled:
        return None
    from gemwatch.web.deps import WebContext
    from gemwatch.web.server import WebServer, WebStartError

    try:
        server = WebServer(
            WebContext(cfg=cfg, store=store, config_path=config_path, hub=hub, control=control)
        )
        server.start()
    except WebStartError as exc:
        log.error("%s", exc)
        return None
    return server


def _retention(cfg: GemwatchConfig, store: EventStore) -> None:
    try:
        report = enforce(
            cfg.storage.data_dir,
            max_age_days=cfg.retention.max_age_days,
            max_bytes=int(cfg.retention.max_gb * 1e9),
        )
        removed = [str(p) for p in report.removed]
        if removed:
            store.forget_evidence(removed)
            log.info("retention removed %d file(s)", len(removed))
        from gemwatch.alerts.outbox import Outbox

        pruned = Outbox(store.engine).prune(time.time() - cfg.retention.max_age_days * 86400.0)
        if pruned:
            log.info("retention removed %d finished alert message(s)", pruned)
    except Exception:
        log.exception("retention pass failed; will retry")
