from __future__ import annotations

import pytest

from gemwatch.config import EXAMPLE_PATH, ConfigError, load, parse
from gemwatch.config.models import ZoneKind

GOOD = """\
store:
  name: Test
  timezone: Europe/London
cameras:
  - id: door
    url: /videos/door.mp4
    zones:
      - id: entrance
        kind: entrance
        polygon: [[0, 0.5], [1, 0.5], [1, 1]]
"""


def test_example_config_is_valid() -> None:
    cfg = load(EXAMPLE_PATH)
    assert cfg.store.timezone == "Europe/London"
    assert {c.id for c in cfg.cameras} == {"front-door", "counter-1"}
    assert any(z.kind is ZoneKind.VAULT for c in cfg.cameras for z in c.zones)


def test_defaults_for_loitering_by_zone_kind() -> None:
    cfg = parse(GOOD)
    zone = cfg.cameras[0].zones[0]
    params = zone.loitering_params()
    assert params is not None and params.dwell_s == 60.0
    assert cfg.storage.resolved_database_url().endswith("gemwatch-data/gemwatch.db")


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "test.yml")
    return [str(p) for p in info.value.problems]


def test_unknown_key_names_path_and_line() -> None:
    text = GOOD.replace("  timezone: Europe/London", "  timezone: Europe/London\n  colour: red")
    assert _problems(text) == [
        "line 4: store.colour: unknown key (not part of the gemwatch config; check the spelling)"
    ]


def test_all_problems_reported_at_once_with_lines() -> None:
    text = """\
store:
  timezone: Mars/Olympus
cameras:
  - id: door
    url: x.mp4
    fps: -1
    zones:
      - id: a
        kind: entrance
        polygon: [[0, 0], [1, 0]]
      - id: b
        kind: counterz
        polygon: [[0, 0], [1, 0], [1, 1.5]]
"""
    problems = _problems(text)
    assert len(problems) == 5, problems
    joined = "\n".join(problems)
    assert "line 2: store.timezone: unknown timezone 'Mars/Olympus'" in joined
    assert "line 6: cameras[0].fps:" in joined
    assert "line 10: cameras[0].zones[0].polygon: a polygon needs at least 3 points, got 2" in joined
    assert "line 12: cameras[0].zones[1].kind:" in joined
    assert "line 13: cameras[0].zones[1].polygon: point 2 (1.0, 1.5) is outside 0..1" in joined


def test_missing_required_key() -> None:
    assert _problems("cameras:\n  - id: door\n") == ["line 2: cameras[0].url: required key is missing"]


def test_yaml_syntax_error_has_line() -> None:
    problems = _problems("store:\n  name: [unclosed\n")
    assert len(problems) == 1 and problems[0].startswith("line ") and "YAML syntax" in problems[0]


def test_detector_plugin_fields_are_validated() -> None:
    problems = _problems(GOOD + "perception:\n  detector: {type: centernet, score_threshold: 2}\n")
    assert problems and "perception.detector" in problems[0] and "score_threshold" in problems[0]
    problems = _problems(GOOD + "perception:\n  detector: {type: magic}\n")
    assert problems and "perception.detector" in problems[0]


def test_duplicate_ids_and_unknown_presence_zone() -> None:
    dup = GOOD + "  - id: door\n    url: y.mp4\n"
    assert any("camera id 'door' is used twice" in p for p in _problems(dup))
    bad_rule = GOOD + "rules:\n  presence:\n    - id: vault\n      zones: [nowhere]\n"
    assert any("unknown zone(s): nowhere" in p for p in _problems(bad_rule))


def test_env_overrides_storage() -> None:
    cfg = parse(GOOD, env={"GEMWATCH_DATABASE_URL": "sqlite:////tmp/x.db"})
    assert cfg.storage.resolved_database_url() == "sqlite:////tmp/x.db"


def test_missing_file_is_one_clear_problem(tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "nope.yml")
    assert "cannot read" in str(info.value) and "nope.yml" in str(info.value)
