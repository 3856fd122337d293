"""Transactions waiting for a block: admission into the pool and relay to the other validators."""
