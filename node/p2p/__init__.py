"""The validator peer network: authenticated aiohttp websocket links between validators."""

from node.p2p.config import NetworkConfig
from node.p2p.framing import WireError
from node.p2p.handshake import Refusal
from node.p2p.requests import BadResponse, LinkLost, PeerError
from node.p2p.transport import PeerInfo, PeerNetwork, build_p2p_app
from node.p2p.wire import (
    BlockRequest,
    BlockResponse,
    Status,
    TxBatch,
    WireMessage,
    decode,
    encode,
)

__all__ = [
    "BadResponse", "BlockRequest", "BlockResponse", "LinkLost", "NetworkConfig", "PeerError", "PeerInfo",
    "PeerNetwork", "Refusal", "Status", "TxBatch", "WireError", "WireMessage", "build_p2p_app", "decode", "encode",
]
