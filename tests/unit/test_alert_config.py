"""The alerts section of gemwatch.yml: references are checked and errors name key and line."""

from __future__ import annotations

import textwrap

import pytest

from gemwatch.config.loader import ConfigError, parse

BASE = """
alerts:
  mqtt: {host: 127.0.0.1}
  recipients:
    - id: manager
      apprise: ["ntfy://ntfy.sh/shop-1"]
    - id: building
      mqtt: true
  actions:
    - id: lock
      label: Lock the doors
      mqtt: {topic: store/doors/set, payload: LOCK}
      allowed: [manager]
  routes:
    - id: counter
      event_types: [loitering]
      recipients: [manager, building]
      actions: [lock]
      escalation:
        - {after_s: 120, recipients: [manager]}
"""


def test_valid_section() -> None:
    cfg = parse(textwrap.dedent(BASE))
    route = cfg.alerts.routes[0]
    assert route.sound is False and route.cooldown_s == 60.0  # silent and de-duplicated by default
    assert cfg.alerts.action("lock").mqtt.payload == "LOCK"
    assert cfg.alerts.mqtt.discovery_prefix == "homeassistant"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("recipients: [manager, building]", "recipients: [manager, owner]"), "unknown recipient(s): owner"),
        (("actions: [lock]", "actions: [unlock]"), "unknown action(s): unlock"),
        (("allowed: [manager]", "allowed: [boss]"), "action 'lock' names unknown recipient(s): boss"),
        (("  mqtt: {host: 127.0.0.1}\n", ""), "alerts.mqtt is not configured"),
        (("      mqtt: true\n", ""), "has no channel"),
        (("after_s: 120", "after_s: 0"), "greater than 0"),
    ],
)
def test_problems_are_named(change: tuple[str, str], message: str) -> None:
    text = textwrap.dedent(BASE).replace(*change)
    with pytest.raises(ConfigError) as err:
        parse(text, "gemwatch.yml")
    assert message in str(err.value)
    assert "gemwatch.yml: line " in str(err.value)


def test_unknown_key_is_rejected_with_line() -> None:
    text = textwrap.dedent(BASE).replace("      event_types: [loitering]", "      event_type: [loitering]")
    with pytest.raises(ConfigError) as err:
        parse(text, "gemwatch.yml")
    assert "line 16: alerts.routes[0].event_type: unknown key" in str(err.value)
