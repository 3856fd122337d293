"""Batch Ed25519 verification, the node's hot path: scheduling, helper processes and the cache."""
