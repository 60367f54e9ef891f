"""The watchlist: known offenders and staff faces, enrolled with four-eyes approval, encrypted
at rest, shared between stores as signed bundles, matched only where policy allows.

Importing this package is cheap; the heavy parts (face models, MQTT) load on use.
"""
