"""Save a camera's zones back into ``gemwatch.yml`` without losing the owner's comments.

The file is edited with ruamel.yaml's round-trip mode: zones that keep their id are updated in
place (their comments stay), deleted ones are removed, new ones appended. The whole new text is
validated with the normal config loader before it replaces the file (atomically), so the zone
editor can never leave a config that ``gemwatch run`` refuses. ``version`` (a hash of the file)
guards against overwriting an edit made by hand or in another browser tab meanwhile.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from gemwatch.config.loader import ConfigError, ConfigProblem, parse
from gemwatch.config.models import GemwatchConfig, Zone

_lock = threading.Lock()


class StaleConfigError(Exception):
    """The file changed since the editor loaded it."""


def config_version(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _yaml(text: str) -> YAML:
    """A round-trip dumper that indents like the file it edits (so a save changes only zones)."""
    from ruamel.yaml.util import load_yaml_guess_indent

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    try:
        _, seq_indent, seq_offset = load_yaml_guess_indent(text)
    except Exception:
        seq_indent, seq_offset = None, None
    if seq_indent is None or seq_offset is None:
        yaml.indent(mapping=2, sequence=4, offset=2)
    else:
        yaml.indent(
            mapping=max(2, seq_indent - seq_offset) if seq_offset else seq_indent,
            sequence=seq_indent,
            offset=seq_offset,
        )
    return yaml


def _flow(items: Sequence[Any]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def zone_mapping(zone: Zone) -> dict[str, Any]:
    """A zone as it is written in YAML: no defaults, 4-decimal coordinates (0.1 px at 1000 px)."""
    out: dict[str, Any] = {"id": zone.id}
    if zone.name:
        out["name"] = zone.name
    out["kind"] = zone.kind.value
    out["polygon"] = _flow([_flow([round(x, 4), round(y, 4)]) for x, y in zone.polygon])
    if zone.loitering is not None:
        out["loitering"] = zone.loitering.model_dump(mode="json", exclude_defaults=True) or {
            "dwell_s": zone.loitering.dwell_s
        }
    return out


#: The zone keys the editor draws and names; a zone's other keys (counter, reference_image,
#: tray, case, showing, protocol, ...) are set in the file and kept as written there.
EDITOR_KEYS = frozenset({"id", "name", "kind", "polygon", "loitering"})


def _update_map(target: CommentedMap, values: dict[str, Any], managed: frozenset[str] | None = None) -> None:
    """Write ``values`` into ``target`` in place (comments stay); keys missing from ``values``
    are deleted when ``managed`` is None or names them, else kept."""
    for key in [k for k in target if k not in values and (managed is None or k in managed)]:
        del target[key]
    for key, value in values.items():
        if isinstance(value, dict):
            inner = target.get(key)
            if not isinstance(inner, CommentedMap):
                inner = CommentedMap()
                target[key] = inner
            _update_map(inner, value)
        elif target.get(key) != value or key not in target:
            target[key] = value


def apply_zones(
    text: str,
    camera_id: str,
    zones: Sequence[Zone],
    source: str = "<config>",
    config_dir: Path | None = None,
) -> tuple[str, GemwatchConfig]:
    """The config text with ``camera_id``'s zones replaced, and the validated config.

    Raises ``KeyError`` for an unknown camera and ``ConfigError`` when the result is invalid
    (e.g. a presence rule names a zone that was deleted).
    """
    yaml = _yaml(text)
    root = yaml.load(text)
    cameras = root.get("cameras") if isinstance(root, CommentedMap) else None
    camera = next(
        (c for c in cameras or [] if isinstance(c, CommentedMap) and c.get("id") == camera_id), None
    )
    if camera is None:
        raise KeyError(camera_id)
    wanted = [zone_mapping(z) for z in zones]
    seq = camera.get("zones")
    if not isinstance(seq, CommentedSeq):
        seq = CommentedSeq()
        camera["zones"] = seq
    if seq.fa.flow_style():
        seq.fa.set_block_style()
    by_id = {z["id"]: z for z in wanted}
    for i in reversed(range(len(seq))):
        item = seq[i]
        if not (isinstance(item, CommentedMap) and item.get("id") in by_id):
            del seq[i]
    kept = {item["id"] for item in seq}
    for item in seq:
        _update_map(item, by_id[item["id"]], EDITOR_KEYS)
    for values in wanted:
        if values["id"] not in kept:
            item = CommentedMap()
            _update_map(item, values)
            seq.append(item)
    order = {z["id"]: i for i, z in enumerate(wanted)}
    if [item["id"] for item in seq] != sorted((item["id"] for item in seq), key=order.__getitem__):
        items = sorted(seq, key=lambda m: order[m["id"]])
        seq.clear()
        seq.extend(items)
    buf = io.StringIO()
    yaml.dump(root, buf)
    new_text = buf.getvalue()
    cfg = parse(new_text, source, config_dir=config_dir)  # zone pictures: as ``load`` reads them
    return new_text, cfg


def save_zones(
    config_path: Path, camera_id: str, zones: Sequence[Zone], expected_version: str | None = None
) -> tuple[GemwatchConfig, str]:
    """Write the zones into the config file; returns the new config and its version."""
    with _lock:
        text = config_path.read_text(encoding="utf-8")
        if expected_version is not None and expected_version != config_version(text):
            raise StaleConfigError(f"{config_path} changed since it was loaded; reload the editor")
        new_text, cfg = apply_zones(text, camera_id, zones, str(config_path), config_path.parent.absolute())
        tmp = config_path.with_name(f".{config_path.name}.part")
        try:
            tmp.write_text(new_text, encoding="utf-8")
            with contextlib.suppress(OSError):  # keep the owner's permissions where we may
                os.chmod(tmp, config_path.stat().st_mode & 0o7777)
            os.replace(tmp, config_path)
        finally:
            tmp.unlink(missing_ok=True)
        return cfg, config_version(new_text)


def validate_zones(raw: Any) -> list[Zone]:
    """Zones from JSON; raises ConfigError naming each bad field (``zones[1].polygon``)."""
    from pydantic import TypeAdapter, ValidationError

    try:
        zones = TypeAdapter(list[Zone]).validate_python(raw)
    except ValidationError as exc:
        problems = [
            ConfigProblem(
                "zones" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]),
                None,
                e["msg"].removeprefix("Value error, "),
            )
            for e in exc.errors()
        ]
        raise ConfigError("zones", problems) from None
    seen: set[str] = set()
    for i, zone in enumerate(zones):
        if zone.id in seen:
            raise ConfigError(
                "zones", [ConfigProblem(f"zones[{i}].id", None, f"zone id '{zone.id}' is used twice")]
            )
        seen.add(zone.id)
    return zones
