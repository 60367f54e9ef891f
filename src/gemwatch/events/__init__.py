"""Events: the bus, the SQL store, clips, snapshots and retention. Decides nothing suspicious."""
