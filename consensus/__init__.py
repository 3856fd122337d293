"""Tendermint BFT consensus as a sans-I/O state machine.

Nothing in this package touches the network, the clock, the disk or global
randomness: the host feeds events in and carries actions out, in order.  The
same code runs inside the node and inside the deterministic simulator.
"""
