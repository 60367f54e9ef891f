"""Rules: one module per behaviour, each a pure state machine ``update(obs) -> list[Event]``."""
