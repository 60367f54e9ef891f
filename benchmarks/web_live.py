"""What watching costs: analysis throughput of a ``gemwatch run`` node with N cameras, with nobody
watching and with every camera's live view open. Prints figures; asserts nothing.

Each run is a real node (``gemwatch run``, one process per camera, the web console in the main
process) over the same recorded clip per camera; file cameras run as fast as the CPU allows, so
analysed frames per wall second is the node's throughput. A viewer asks every camera for its
live picture the way the live page does (next request after the previous picture arrived, then
``1 / web.live_fps``): ``--viewer http`` from a separate light process (a remote browser's
requests), ``--viewer chromium`` as headless Chromium tabs on the same machine (the browser's
own CPU counts against the node then: a worst case). Rounds alternate so a noisy neighbour hits
both conditions alike.

    .venv/bin/python benchmarks/web_live.py [--cameras 4] [--rounds 2] [--viewer http|chromium]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures.clips import trim

DEFAULT_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pedestrians" / "vtest.avi"
PASSWORD = "benchmark-password-1"
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")


@dataclass
class Run:
    viewers: bool
    frames: int
    wall_s: float
    cpu_s: float
    pictures: int
    camera_cpu_s: float = 0.0
    main_cpu_s: float = 0.0
    live_written: int = 0
    live_ms: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s

    @property
    def cpu_ms_per_frame(self) -> float:
        return 1000.0 * self.cpu_s / self.frames


def _proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of one process from /proc, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """Latest CPU time of the node's main process (web console + bus), sampled from /proc every
    0.2 s; camera processes report their own analysis CPU in the node's log."""

    def __init__(self, node_pid: int) -> None:
        self.node_pid = node_pid
        self.main = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            main = _proc_cpu(self.node_pid)
            if main is not None:
                self.main = main
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(video: Path, data: Path, port: int, cameras: int, fps: float) -> str:
    cams = "".join(
        f"""  - id: cam{i}
    url: {video}
    fps: {fps}
    zones:
      - id: walkway
        kind: entrance
        polygon: [[0.0, 0.35], [1.0, 0.35], [1.0, 1.0], [0.0, 1.0]]
        loitering: {{dwell_s: 3}}
"""
        for i in range(cameras)
    )
    head = f"store: {{timezone: Europe/London}}\nstorage: {{data_dir: {data}}}\n"
    head += f"web: {{port: {port}, live_fps: 4}}\n"
    return head + "cameras:\n" + cams


def prepare_owner(config: Path) -> str:
    """An owner and an API token in the node's database before it starts (no set-up link)."""
    from gemwatch.config.loader import load
    from gemwatch.events.store import EventStore
    from gemwatch.web.auth import create_api_token, create_user

    cfg = load(config)
    store = EventStore(cfg.storage.resolved_database_url(), cfg.store.tz)
    try:
        with store._sessions.begin() as s:
            user = create_user(s, "owner", PASSWORD, "owner")
            return create_api_token(s, user, "benchmark")[0]
    finally:
        store.close()


HTTP_VIEWER = textwrap.dedent(
    """
    import sys, threading, time, httpx
    base, token, cams, period = sys.argv[1], sys.argv[2], sys.argv[3].split(","), float(sys.argv[4])
    got = [0]
    def watch(cam):
        with httpx.Client(base_url=base, headers={"Authorization": "Bearer " + token}, timeout=10) as c:
            while True:
                try:
                    r = c.get(f"/api/v1/cameras/{cam}/live.jpg")
                    if r.status_code == 200:
                        got[0] += 1
                except httpx.HTTPError:
                    pass
                time.sleep(period)
    for cam in cams:
        threading.Thread(target=watch, args=(cam,), daemon=True).start()
    try:
        for line in sys.stdin:
            pass
    finally:
        import resource
        ru = resource.getrusage(resource.RUSAGE_SELF)
        print(got[0], ru.ru_utime + ru.ru_stime, flush=True)
    """
)

CHROMIUM_VIEWER = textwrap.dedent(
    """
    import sys, time
    from playwright.sync_api import sync_playwright
    base, cams = sys.argv[1], sys.argv[2].split(",")
    args = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        ctx = b.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto(base + "/login")
        page.fill("input[name=username]", "owner")
        page.fill("input[name=password]", sys.argv[3])
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        pages = []
        for cam in cams:
            tab = ctx.new_page()
            tab.goto(base + "/live/" + cam)
            pages.append(tab)
        for line in sys.stdin:
            pass
        count = "() => parseInt(document.getElementById('live').dataset.count || '0')"
        got = sum(int(t.evaluate(count)) for t in pages)
        print(got, flush=True)
        b.close()
    """
)


def log_stamp(line: str) -> float:
    m = LOG_TIME.match(line)
    if not m:
        return 0.0
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def one_run(video: Path, cameras: int, fps: float, viewer: str | None) -> Run:
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        config = tmp / "gemwatch.yml"
        config.write_text(config_text(video, tmp / "data", port, cameras, fps))
        token = prepare_owner(config)
        base = f"http://127.0.0.1:{port}"
        log = tmp / "node.log"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with log.open("wb") as out:
            node = subprocess.Popen(
                [sys.executable, "-c", "from gemwatch.cli import main; main()", "run", "-c", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        sampler = CpuSampler(node.pid)
        watcher = None
        if viewer is not None:
            deadline = time.monotonic() + 60
            while "web console on" not in log.read_text(errors="replace") and time.monotonic() < deadline:
                time.sleep(0.05)
            cams = ",".join(f"cam{i}" for i in range(cameras))
            cmd = (
                [sys.executable, "-c", HTTP_VIEWER, base, token, cams, "0.25"]
                if viewer == "http"
                else [sys.executable, "-c", CHROMIUM_VIEWER, base, cams, PASSWORD]
            )
            watcher = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        node.wait(1800)
        sampler.stop()
        pictures = 0
        viewer_cpu = 0.0
        if watcher is not None:
            out_text, _ = watcher.communicate("", timeout=120)
            fields = out_text.strip().splitlines()[-1].split()
            pictures = int(fields[0])
            viewer_cpu = float(fields[1]) if len(fields) > 1 else 0.0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        text = log.read_text(errors="replace")
        starts = [log_stamp(line) for line in text.splitlines() if "' online" in line]
        ends = [log_stamp(line) for line in text.splitlines() if "stopped after" in line]
        frames = sum(int(n) for n in re.findall(r"stopped after (\d+) frames", text))
        if len(ends) != cameras or not starts:
            raise SystemExit(f"node run incomplete:\n{text[-3000:]}")
        live_pictures = (
            len(list((tmp / "data" / "live").glob("*.jpg"))) if (tmp / "data" / "live").exists() else 0
        )
        if viewer is not None and live_pictures != cameras:
            raise SystemExit(f"viewers were on but {live_pictures}/{cameras} cameras wrote live pictures")
        # CPU of the node's whole tree (it waits for its camera processes); the HTTP viewer
        # stands for a browser on another machine, so its own CPU is taken out.
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) - viewer_cpu
        used = re.findall(
            r"used ([\d.]+) CPU-s for (\d+) frames; live view: (\d+) pictures, ([\d.]+) ms CPU each", text
        )
        written = sum(int(n) for _, _, n, _ in used)
        live_ms = sum(int(n) * float(ms) for _, _, n, ms in used) / written if written else 0.0
        analysis_cpu = sum(float(c) for c, _, _, _ in used)
        return Run(
            viewer is not None,
            frames,
            max(ends) - min(starts),
            cpu,
            pictures,
            camera_cpu_s=analysis_cpu,
            main_cpu_s=sampler.main,
            live_written=written,
            live_ms=live_ms,
        )


def picture_cost(video: Path, n: int = 40) -> tuple[float, float, int]:
    """Milliseconds to draw one live picture and to encode it (with its description), on a
    real frame with the detector's real boxes; and how many people were drawn."""
    import av

    from gemwatch.config.models import GemwatchConfig, Zone
    from gemwatch.perception.plugins import build_detector
    from gemwatch.types import Observation, Person
    from gemwatch.web.live import draw_live, jpeg_with_info

    with av.open(str(video)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    detections = build_detector(GemwatchConfig().perception.detector).detect(frame)
    people = tuple(
        Person(i, tuple(float(v) for v in box), 0.9)  # type: ignore[arg-type]
        for i, box in enumerate(detections.xyxy)
    )
    zone = Zone(id="walkway", kind="entrance", polygon=[(0.0, 0.35), (1.0, 0.35), (1.0, 1.0), (0.0, 1.0)])
    obs = Observation("bench", 0.0, frame.shape[1], frame.shape[0], people, {"walkway": (0, 1)})
    t0 = time.perf_counter()
    for _ in range(n):
        image, info = draw_live(frame, obs, [zone], {"walkway": "loitering"}, "2026-03-29 02:00:00 BST")
    t1 = time.perf_counter()
    for _ in range(n):
        jpeg_with_info(image, info)
    t2 = time.perf_counter()
    return 1000 * (t1 - t0) / n, 1000 * (t2 - t1) / n, len(people)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--viewer", choices=("http", "chromium"), default="http")
    ap.add_argument("--seconds", type=float, default=30.0, help="use the first N s of the video (0 = all)")
    args = ap.parse_args()
    if not args.video.exists():
        print(f"video not found: {args.video}")
        return 1
    if args.seconds > 0:
        clip_dir = tempfile.mkdtemp(prefix="gw-bench-clip-")
        args.video = trim(
            args.video, Path(clip_dir) / f"first{args.seconds:g}s{args.video.suffix}", args.seconds
        )
    cores = len(os.sched_getaffinity(0))
    print(
        f"gemwatch live-view benchmark — {cores} cores, {args.cameras} cameras × {args.video.name} at "
        f"{args.fps:g} fps, viewer: {args.viewer}, {args.rounds} round(s)"
    )
    draw_ms, encode_ms, drawn = picture_cost(args.video)
    per_s = args.cameras * 4.0 * (draw_ms + encode_ms) / 1000.0
    print(
        f"one live picture ({drawn} people): draw {draw_ms:.1f} ms + JPEG {encode_ms:.1f} ms; "
        f"{args.cameras} cameras × 4 pictures/s = {per_s:.3f} CPU-s per s ({100 * per_s / cores:.1f}% of "
        f"{cores} cores)"
    )
    runs: list[Run] = []
    for r in range(args.rounds):
        for viewers in (False, True) if r % 2 == 0 else (True, False):
            run = one_run(args.video, args.cameras, args.fps, args.viewer if viewers else None)
            runs.append(run)
            print(
                f"  round {r + 1} {'viewers ' if viewers else 'nobody  '}: {run.frames} frames in "
                f"{run.wall_s:.1f} s = {run.fps:.2f} frames/s; analysis "
                f"{1000 * run.camera_cpu_s / run.frames:.1f} ms CPU/frame; main process (web + bus) "
                f"{run.main_cpu_s:.1f} CPU-s"
                + (
                    f"; {run.pictures} pictures fetched, {run.live_written} drawn at {run.live_ms:.1f} ms"
                    if viewers
                    else f"; {run.live_written} pictures drawn"
                )
            )
    base = [r for r in runs if not r.viewers]
    seen = [r for r in runs if r.viewers]
    fps0 = sum(r.fps for r in base) / len(base)
    fps1 = sum(r.fps for r in seen) / len(seen)
    cpu0 = sum(r.cpu_ms_per_frame for r in base) / len(base)
    cpu1 = sum(r.cpu_ms_per_frame for r in seen) / len(seen)
    cam0 = sum(r.camera_cpu_s for r in base) / sum(r.frames for r in base)
    cam1 = sum(r.camera_cpu_s for r in seen) / sum(r.frames for r in seen)
    main0 = sum(r.main_cpu_s for r in base) / sum(r.frames for r in base)
    main1 = sum(r.main_cpu_s for r in seen) / sum(r.frames for r in seen)
    extra = (cam1 - cam0) + (main1 - main0)
    print(
        f"\nCPU per analysed frame: analysis (camera pipelines) {1000 * cam0:.1f} → {1000 * cam1:.1f} ms, main process "
        f"{1000 * main0:.1f} → {1000 * main1:.1f} ms; live view adds {1000 * extra:.1f} ms per frame = "
        f"{100 * extra / cam0:.1f}% of the analysis' CPU (the throughput lost when the CPU is the limit)"
    )
    print(
        f"throughput (wall clock, noisy on a shared machine): nobody watching {fps0:.2f} frames/s, {args.cameras} live views open "
        f"{fps1:.2f} frames/s → cost {100 * (fps0 - fps1) / fps0:+.1f}% of throughput"
    )
    print(
        f"CPU per analysed frame (node processes{', viewer included' if args.viewer == 'chromium' else ''}): "
        f"{cpu0:.1f} ms → {cpu1:.1f} ms "
        f"({100 * (cpu1 - cpu0) / cpu0:+.1f}%)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
