"""Perception: motion gate, models, tracking and zones; knows nothing of rules, alerts or SQL."""
