"""State snapshots and state sync: joining a long chain from a verified snapshot instead of replaying it."""
