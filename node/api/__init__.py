"""The client HTTP API (aiohttp), versioned under /v1; docs/api.md documents it."""

from node.api.app import make_api_app
from node.api.backend import (
    ApiBackend,
    BlockView,
    CommitCertificateView,
    PrecommitView,
    TxProofPending,
    TxState,
    TxStatus,
    TxView,
)
from node.api.events import BlockFeed, SubscriberLagged, TooManySubscribers

__all__ = [
    "ApiBackend",
    "BlockFeed",
    "BlockView",
    "CommitCertificateView",
    "PrecommitView",
    "SubscriberLagged",
    "TooManySubscribers",
    "TxProofPending",
    "TxState",
    "TxStatus",
    "TxView",
    "make_api_app",
]
