"""Settings of the validator network, checked when built."""

from __future__ import annotations

from dataclasses import dataclass

from node.core.fields import Endpoint, parse_endpoint
from node.core.tx import PUBLIC_KEY_SIZE, chain_id_bytes
from node.p2p.framing import MAX_FRAME_BYTES
from node.p2p.handshake import GENESIS_HASH_SIZE


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """Who the validators are and how hard each link may be used.

    ``validators`` is the genesis list of (public key, "host:port"), this node
    included; it is both the dial list and the set of keys allowed to connect.
    """

    chain_id: str
    genesis_hash: bytes
    validators: tuple[tuple[bytes, str], ...]
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    max_frame_bytes: int = MAX_FRAME_BYTES
    outbox_size: int = 4096
    outbox_bytes: int = 64 * 1024 * 1024
    handshake_timeout_s: float = 5.0
    request_timeout_s: float = 10.0
    heartbeat_s: float = 10.0
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 10.0
    rate_frames_per_s: float = 2000.0
    rate_burst: float = 4000.0
    flood_strikes: int = 2000
    max_pending_handshakes: int = 16
    max_pending_requests: int = 64
    max_observers: int = 8  # observer links served at once (node/p2p/transport.py)

    def __post_init__(self) -> None:
        chain_id_bytes(self.chain_id)
        if len(self.genesis_hash) != GENESIS_HASH_SIZE:
            raise ValueError("genesis_hash must be 32 bytes")
        keys = [key for key, _ in self.validators]
        if any(type(key) is not bytes or len(key) != PUBLIC_KEY_SIZE for key in keys):
            raise ValueError("every validator key must be 32 bytes")
        if len(set(keys)) != len(keys):
            raise ValueError("a validator key appears twice")
        for key, address in self.validators:
            try:
                parse_endpoint(address)
            except ValueError as exc:
                raise ValueError(f"validator {key.hex()} address: {exc}") from None
        if not 0 <= self.listen_port <= 65535:
            raise ValueError("listen_port must be 0..65535")
        if self.max_observers < 0:
            raise ValueError("max_observers must be at least 0")
        if self.max_frame_bytes < 1024 or self.outbox_size < 1 or self.max_pending_handshakes < 1:
            raise ValueError("max_frame_bytes >= 1024, outbox_size >= 1 and max_pending_handshakes >= 1")
        if self.outbox_bytes < self.max_frame_bytes:
            raise ValueError("outbox_bytes must hold at least one frame of max_frame_bytes")
        if min(self.handshake_timeout_s, self.request_timeout_s, self.heartbeat_s) <= 0:
            raise ValueError("timeouts must be positive")

    def endpoints(self) -> dict[bytes, Endpoint]:
        return {key: parse_endpoint(address) for key, address in self.validators}
