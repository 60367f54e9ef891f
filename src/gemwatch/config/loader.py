"""Read ``gemwatch.yml`` and turn every validation problem into one line naming key and line.

The YAML is parsed with ruamel.yaml's round-trip loader because it keeps each key's line
number; pydantic's error locations are then walked through the parsed tree to find it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from gemwatch.config.models import GemwatchConfig, Zone

ENV_OVERRIDES = {
    "GEMWATCH_DATA_DIR": ("storage", "data_dir"),
    "GEMWATCH_DATABASE_URL": ("storage", "database_url"),
}


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.path or '<root>'}: {self.message}"


class ConfigError(Exception):
    """All problems of one config file; ``str()`` lists each on its own line."""

    def __init__(self, source: str, problems: Sequence[ConfigProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _line_of(root: Any, loc: Sequence[int | str]) -> int | None:
    """1-based line of the deepest existing node on ``loc`` (the key itself where possible)."""
    node = root
    line: int | None = None
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            if line is None and hasattr(node, "lc"):
                line = node.lc.line + 1
            break
    return line


def format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in {"tagged-union"}:
            continue
        else:
            out += f".{part}" if out else part
    return out


def _clean_loc(loc: Sequence[int | str]) -> list[int | str]:
    """Drop pydantic's union/discriminator tags (e.g. 'centernet') that are not YAML keys."""
    return [p for p in loc if not (isinstance(p, str) and (p.startswith("function-") or "[" in p))]


def parse(
    text: str,
    source: str = "<config>",
    *,
    env: Mapping[str, str] | None = None,
    config_dir: Path | None = None,
) -> GemwatchConfig:
    """Validate config text; relative zone pictures are read from ``config_dir`` (the config
    file's folder; None: the working directory) and must exist and decode."""
    root = _load_yaml(text, source)
    return _validate(CommentedMap() if root is None else root, source, env=env, config_dir=config_dir)


def _validate(
    root: Any, source: str, *, env: Mapping[str, str] | None = None, config_dir: Path | None = None
) -> GemwatchConfig:
    """The parsed YAML of a config as a validated config, or every problem at once."""
    zones_file = "this looks like a zones file (for analyze --zones); a config has cameras: [...]"
    if isinstance(root, CommentedSeq):
        raise ConfigError(source, [ConfigProblem("", 1, f"a list, not a mapping of keys: {zones_file}")])
    if not isinstance(root, CommentedMap):
        raise ConfigError(source, [ConfigProblem("", 1, "the file must be a mapping of keys")])
    if list(root) == ["zones"]:
        raise ConfigError(source, [ConfigProblem("zones", root.lc.key("zones")[0] + 1, zones_file)])
    data = _plain(root)
    for var, (section, key) in ENV_OVERRIDES.items():
        value = (env if env is not None else os.environ).get(var)
        if value:
            data.setdefault(section, {})[key] = value
    try:
        return GemwatchConfig.model_validate(data, context={"config_dir": config_dir})
    except ValidationError as exc:
        problems = _problems(exc, root)
        twice = _twice_used(root.get("cameras"), ["cameras"], root, "camera id '{}' is used twice")
        cameras = root.get("cameras")
        for i, cam in enumerate(cameras if isinstance(cameras, list) else []):
            if isinstance(cam, Mapping):
                what = f"zone id '{{}}' is used twice on camera '{cam.get('id')}'"
                twice += _twice_used(cam.get("zones"), ["cameras", i, "zones"], root, what)
        # the model's own duplicate check names the camera's line; these name the id's
        problems = [p for p in problems if p.message not in {t.message for t in twice}] + twice
        raise ConfigError(source, sorted(problems, key=lambda p: (p.line or 0, p.path))) from None


def _twice_used(items: Any, prefix: list[int | str], root: Any, message: str) -> list[ConfigProblem]:
    """Ids used twice in a raw list of mappings, at the second one's ``id`` line. Read from the
    YAML rather than the model, so a duplicate is reported with the other problems at once (the
    model's own check runs only once everything else in the list is valid)."""
    if not isinstance(items, list):
        return []
    seen: set[str] = set()
    out = []
    for i, item in enumerate(items):
        ident = item.get("id") if isinstance(item, Mapping) else None
        if not isinstance(ident, str):
            continue
        if ident in seen:
            loc: list[int | str] = [*prefix, i, "id"]
            out.append(ConfigProblem(format_loc(loc), _line_of(root, loc), message.format(ident)))
        seen.add(ident)
    return out


def _problems(exc: ValidationError, root: Any, prefix: Sequence[int | str] = ()) -> list[ConfigProblem]:
    """pydantic's errors as problems naming the key and its line in the parsed ``root``; the
    errors' locations are relative to ``root``'s node at ``prefix``."""
    problems = []
    for err in exc.errors():
        loc = [*prefix, *_clean_loc(err["loc"])]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the gemwatch config; check the spelling)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] in ("enum", "literal_error") and isinstance(err.get("input"), str | int | float):
            msg = f"{msg} (got {err['input']!r})"
        problems.append(ConfigProblem(format_loc(loc), _line_of(root, loc), msg))
    problems.sort(key=lambda p: (p.line or 0, p.path))
    return problems


def _read_yaml(p: Path, what: str) -> Any:
    """A config or zones file's round-trip parse, or a ConfigError saying why it cannot be read.
    An empty file (or only comments) is an error: a config or zones file that says nothing is a
    mistake (the wrong file, a failed copy), and taken as it is it would watch nothing without
    a word."""
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        read_as = "" if p.is_absolute() else f" (read as {p.absolute()})"
        raise ConfigError(
            str(p), [ConfigProblem("", None, f"cannot read: {exc.strerror or exc}{read_as}")]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            str(p),
            [ConfigProblem("", None, "not a text file (a YAML file is text: is this a picture or a video?)")],
        ) from None
    root = _load_yaml(text, str(p))
    if root is None:
        raise ConfigError(str(p), [ConfigProblem("", None, f"the file is empty (expected {what})")])
    return root


def _load_yaml(text: str, source: str) -> Any:
    """The round-trip parse (it keeps each key's line), or a ConfigError naming the line."""
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(source, [ConfigProblem("", line, f"YAML syntax: {exc.problem}")]) from None


def load_zones(path: str | Path) -> list[Zone]:
    """Zones from a YAML file (``analyze --zones``): a list of zones, or a mapping whose only key
    is ``zones``; the same schema as a camera's zones, and the same errors naming key and line.
    Anything else in the file is an error rather than ignored: a misspelt ``zone:`` or a whole
    config given as the zones file would otherwise analyse the video with no zones at all.
    Relative zone pictures are read from the zones file's folder, as in a config file."""
    p = Path(path)
    root = _read_yaml(p, "a list of zones, or zones: [...]")
    prefix: tuple[str, ...] = ()
    if isinstance(root, CommentedMap):
        extra = [str(k) for k in root if k != "zones"]
        if {"cameras", "store", "storage"} & set(extra):
            hint = "this looks like a gemwatch config (give it with -c); a zones file is a list of zones, or zones: [...]"
            raise ConfigError(str(p), [ConfigProblem("", 1, hint)])
        if extra:
            raise ConfigError(
                str(p),
                [
                    ConfigProblem(
                        k,
                        root.lc.key(k)[0] + 1,
                        "unknown key in a zones file (a list of zones, or zones: [...])",
                    )
                    for k in extra
                ],
            )
        prefix = ("zones",)
        zones = root.get("zones")
    else:
        zones = root
    if zones is None:
        zones = []
    if not isinstance(zones, list):
        raise ConfigError(str(p), [ConfigProblem("zones" if prefix else "", 1, "must be a list of zones")])
    twice = _twice_used(zones, list(prefix), root, "zone id '{}' is used twice")
    try:
        loaded = TypeAdapter(list[Zone]).validate_python(
            _plain(zones), context={"config_dir": p.parent.absolute()}
        )
    except ValidationError as exc:
        problems = _problems(exc, root, prefix) + twice
        raise ConfigError(str(p), sorted(problems, key=lambda p: (p.line or 0, p.path))) from None
    if twice:
        raise ConfigError(str(p), twice)
    return loaded


def load(path: str | Path) -> GemwatchConfig:
    """Load and validate a config file; raises ConfigError listing every problem at once.

    Relative ``storage.data_dir`` and camera file paths stay relative to the working directory,
    like any command-line path; relative zone pictures (``reference_image``, ``case.open_image``)
    are read from the config file's folder, where the admin keeps them with the config.
    """
    p = Path(path)
    root = _read_yaml(p, "a gemwatch config, such as src/gemwatch/config/example.yml")
    return _validate(root, str(p), config_dir=p.parent.absolute())


def key_line(path: str | Path, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the key at ``loc`` (e.g. ``["cameras", 0, "url"]``) in a config file
    that has loaded, for problems found after validation (a camera's file that is missing)."""
    return _line_of(_read_yaml(Path(path), "a gemwatch config"), loc)


EXAMPLE_PATH = Path(__file__).with_name("example.yml")
