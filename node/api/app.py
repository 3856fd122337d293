"""The client API application factory: routes, limits and middlewares, no globals.

Everything a handler needs travels on the application under typed keys, so two
nodes in one process (a local testnet, the tests) serve two independent apps.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from node.api import handlers, proofs
from node.api.backend import ApiBackend
from node.api.events import close_all
from node.api.explorer import add_explorer
from node.api.handlers import BACKEND, LIMITS, WEBSOCKETS, ApiLimits
from node.api.middleware import error_middleware, metrics_middleware
from node.app.metrics import NodeMetrics
from node.core.tx import MAX_TX_BYTES

DEFAULT_MAX_TXS_PER_REQUEST = 5000


def make_api_app(
    node: ApiBackend,
    *,
    max_body_bytes: int,
    max_txs_per_request: int = DEFAULT_MAX_TXS_PER_REQUEST,
    metrics: NodeMetrics | None = None,
) -> web.Application:
    """The /v1 client API over ``node``, and the explorer at ``/`` that reads it; ``metrics``
    (if given) counts requests by route and status.

    ``max_body_bytes`` bounds what one request may make the node buffer; it must
    at least fit one transaction in the bulkiest encoding (JSON hex).
    """
    if max_body_bytes < 2 * MAX_TX_BYTES + 64:
        raise ValueError(f"max_body_bytes {max_body_bytes} cannot hold one transaction")
    if max_txs_per_request < 1:
        raise ValueError("max_txs_per_request must be positive")
    middlewares: list[Middleware] = [error_middleware]
    if metrics is not None:
        middlewares.insert(0, metrics_middleware(metrics))  # outermost: counts the final status, errors included
    app = web.Application(client_max_size=max_body_bytes, middlewares=middlewares)
    app[BACKEND] = node
    app[LIMITS] = ApiLimits(max_txs_per_request)
    app[WEBSOCKETS] = set()
    app.on_shutdown.append(_close_websockets)
    app.router.add_post("/v1/txs", handlers.submit_txs)
    app.router.add_get("/v1/txs/{hash}", handlers.get_tx)
    app.router.add_get("/v1/txs/{hash}/proof", handlers.get_tx_proof)
    app.router.add_get("/v1/genesis", handlers.get_genesis)
    app.router.add_get("/v1/accounts/{address}", handlers.get_account)
    app.router.add_get("/v1/accounts/{address}/orders", handlers.get_account_orders)
    app.router.add_get("/v1/accounts/{address}/proof", proofs.get_account_proof)
    app.router.add_get("/v1/state/proof", proofs.get_state_proof)
    app.router.add_get("/v1/blocks/latest", handlers.get_latest_block)
    app.router.add_get("/v1/blocks/{height}", handlers.get_block)
    app.router.add_get("/v1/blocks/{height}/txs", handlers.get_block_txs)
    app.router.add_get("/v1/status", handlers.get_status)
    app.router.add_get("/v1/validators", handlers.get_validators)
    app.router.add_get("/v1/governance", handlers.get_governance)
    app.router.add_get("/v1/governance/history", handlers.get_governance_history)
    app.router.add_get("/v1/events", handlers.events)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/metrics", handlers.metrics)
    add_explorer(app)
    return app


async def _close_websockets(app: web.Application) -> None:
    await close_all(app[WEBSOCKETS])
