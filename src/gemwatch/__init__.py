"""gemwatch: self-hosted video analytics that guards jewellery stores."""

__version__ = "0.1.0"
