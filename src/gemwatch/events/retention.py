"""Retention: delete old evidence (clips, snapshots) by age, then by total size, oldest first.

Pure file-system policy over ``<data_dir>/clips`` and ``<data_dir>/snapshots``: it never touches
the database; it returns what it removed so the caller can null those paths in the store and
write the audit log. Age is the file's modification time (when the clip or snapshot was
finished). Files still being written (hidden ``.*.part`` names) are left alone unless an
hour old (a crash mid-write), then removed without being reported.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

EVIDENCE_DIRS: tuple[str, ...] = ("clips", "snapshots")
EVIDENCE_SUFFIXES = frozenset({".mp4", ".mkv", ".webm", ".avi", ".mov", ".jpg", ".jpeg", ".png"})
_DAY_S = 86_400.0
# A temp file untouched this long was left by a crash mid-write; it is removed quietly.
_STALE_PART_S = 3_600.0


@dataclass(frozen=True, slots=True)
class RemovedFile:
    path: Path
    size: int
    mtime: float
    reason: str  # "age" or "size"


@dataclass(slots=True)
class RetentionReport:
    """What one pass removed and what is left. ``removed`` lists paths as found on disk."""

    removed_files: list[RemovedFile] = field(default_factory=list)
    kept_files: int = 0
    kept_bytes: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def removed(self) -> list[Path]:
        return [r.path for r in self.removed_files]

    @property
    def freed_bytes(self) -> int:
        return sum(r.size for r in self.removed_files)


def _evidence(data_dir: Path, subdirs: tuple[str, ...], now: float) -> list[tuple[Path, int, float]]:
    found: list[tuple[Path, int, float]] = []
    for sub in subdirs:
        root = data_dir / sub
        if not root.is_dir():
            continue
        for dirpath, _dirnames, filenames in os.walk(root):
            for name in filenames:
                path = Path(dirpath) / name
                is_part = name.startswith(".") and name.endswith(".part")
                if not is_part and (name.startswith(".") or path.suffix.lower() not in EVIDENCE_SUFFIXES):
                    continue
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                if not is_part:
                    found.append((path, st.st_size, st.st_mtime))
                elif st.st_mtime < now - _STALE_PART_S:
                    log.info("retention: removing unfinished %s", path)
                    path.unlink(missing_ok=True)
    return found


def _prune_empty_dirs(data_dir: Path, subdirs: tuple[str, ...]) -> None:
    """Remove emptied folders two or more levels down (e.g. per-day folders), keeping the
    per-camera folders that a running pipeline writes into."""
    for sub in subdirs:
        root = data_dir / sub
        if not root.is_dir():
            continue
        for dirpath, _dirnames, _filenames in os.walk(root, topdown=False):
            path = Path(dirpath)
            if len(path.relative_to(root).parts) >= 2 and not any(path.iterdir()):
                with contextlib.suppress(OSError):
                    path.rmdir()


def enforce(
    data_dir: Path,
    *,
    max_age_days: float | None,
    max_bytes: int | None,
    now: float | None = None,
    subdirs: tuple[str, ...] = EVIDENCE_DIRS,
) -> RetentionReport:
    """Delete evidence older than ``max_age_days``, then the oldest until at most ``max_bytes``.

    ``None`` disables a limit. ``now`` (epoch seconds) is for tests. Files that vanish or cannot
    be deleted meanwhile are reported in ``errors`` and do not stop the pass.
    """
    now = time.time() if now is None else now
    report = RetentionReport()
    files = sorted(_evidence(Path(data_dir), subdirs, now), key=lambda f: (f[2], str(f[0])))
    kept: list[tuple[Path, int, float]] = []

    def remove(path: Path, size: int, mtime: float, reason: str) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return True
        except OSError as exc:
            report.errors.append(f"cannot delete {path}: {exc.strerror or exc}")
            return False
        report.removed_files.append(RemovedFile(path, size, mtime, reason))
        return True

    cutoff = None if max_age_days is None else now - max_age_days * _DAY_S
    for path, size, mtime in files:
        if cutoff is not None and mtime < cutoff and remove(path, size, mtime, "age"):
            continue
        kept.append((path, size, mtime))
    total = sum(size for _, size, _ in kept)
    if max_bytes is not None:
        survivors: list[tuple[Path, int, float]] = []
        for i, (path, size, mtime) in enumerate(kept):
            if total <= max_bytes:
                survivors.extend(kept[i:])
                break
            if remove(path, size, mtime, "size"):
                total -= size
            else:
                survivors.append((path, size, mtime))
        kept = survivors
    report.kept_files = len(kept)
    report.kept_bytes = total
    if report.removed_files:
        _prune_empty_dirs(Path(data_dir), subdirs)
        log.info(
            "retention: removed %d file(s), %.1f MB; %d kept (%.1f MB)",
            len(report.removed_files),
            report.freed_bytes / 1e6,
            report.kept_files,
            total / 1e6,
        )
    return report
