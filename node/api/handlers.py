"""The /v1 endpoints: thin translations between HTTP documents and the ApiBackend."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from node.api.backend import ApiBackend, TxProofPending
from node.api.codec import (
    admit_result_doc,
    block_doc,
    governance_doc,
    parse_address,
    parse_hash,
    parse_height,
    parse_history_number,
    parse_submission,
    render,
    tx_status_doc,
)
from node.api.errors import ApiError, ErrorCode
from node.api.events import events_handler
from node.core.amount import format_som
from node.mempool.results import AdmitCode

# Governance actions per page of the history.
HISTORY_PAGE = 100
# Seconds a client should wait after a 503 mempool_full: about one block, when the pool drains.
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """Per-request limits beyond the body size, which aiohttp enforces itself (client_max_size)."""

    max_txs_per_request: int


BACKEND = web.AppKey("backend", ApiBackend)
LIMITS = web.AppKey("limits", ApiLimits)
WEBSOCKETS = web.AppKey("websockets", set[web.WebSocketResponse])


async def submit_txs(request: web.Request) -> web.Response:
    backend = request.app[BACKEND]
    body = await request.read()  # aiohttp enforces client_max_size here: 413 body_too_large
    raws = parse_submission(request.content_type, body, request.app[LIMITS].max_txs_per_request)
    results = await backend.submit(raws)
    if len(results) != len(raws):
        raise RuntimeError(f"backend answered {len(results)} results for {len(raws)} transactions")
    if all(r.code == AdmitCode.MEMPOOL_FULL for r in results):
        raise ApiError(503, ErrorCode.MEMPOOL_FULL, "the mempool is full; retry later",
                       headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return render(request, {"results": [admit_result_doc(r) for r in results]})


async def get_tx(request: web.Request) -> web.Response:
    tx_hash = parse_hash(request.match_info["hash"])
    return render(request, tx_status_doc(tx_hash, request.app[BACKEND].tx_status(tx_hash)))


async def get_tx_proof(request: web.Request) -> web.Response:
    tx_hash = parse_hash(request.match_info["hash"])
    try:
        # Reads and hashes a whole block's transactions and results: off the loop that drives consensus.
        proof = await asyncio.to_thread(request.app[BACKEND].tx_proof, tx_hash)
    except TxProofPending as exc:
        raise ApiError(409, ErrorCode.RESULT_NOT_YET_PROVABLE, str(exc)) from exc
    if proof is None:
        earliest = request.app[BACKEND].earliest_height()
        kept = f" (it keeps blocks from height {earliest} on)" if earliest > 1 else ""
        raise ApiError(404, ErrorCode.TX_NOT_COMMITTED,
                       f"transaction {tx_hash.hex()} is not committed on this node{kept}")
    return render(request, proof)


async def get_genesis(request: web.Request) -> web.Response:
    text, genesis_hash = request.app[BACKEND].genesis()
    return render(request, {"genesis": text, "hash": genesis_hash.hex()})


async def get_account(request: web.Request) -> web.Response:
    address = request.match_info["address"]
    public_key = parse_address(address)
    backend = request.app[BACKEND]
    balance, nonce = backend.account(public_key)
    return render(request, {
        "address": address,
        "balance": balance,
        "balance_som": format_som(balance),
        "nonce": nonce,
        "pending_nonce": backend.pending_nonce(public_key),
        **backend.account_rules(public_key),
    })


async def get_account_orders(request: web.Request) -> web.Response:
    address = request.match_info["address"]
    public_key = parse_address(address)
    return render(request, {"address": address, "orders": request.app[BACKEND].orders(public_key)})


async def get_block(request: web.Request) -> web.Response:
    return _block_response(request, parse_height(request.match_info["height"]))


async def get_block_txs(request: web.Request) -> web.Response:
    height = parse_height(request.match_info["height"])
    txs = request.app[BACKEND].block_txs(height)
    if txs is None:
        raise _no_block(request, height)
    return render(request, {"height": height, "txs": [raw.hex() for raw in txs]})


async def get_latest_block(request: web.Request) -> web.Response:
    height = request.app[BACKEND].latest_height()
    if height < 1:
        raise ApiError(404, ErrorCode.BLOCK_NOT_FOUND, "no block has been committed yet")
    return _block_response(request, height)


def _block_response(request: web.Request, height: int) -> web.Response:
    block = request.app[BACKEND].block(height)
    if block is None:
        raise _no_block(request, height)
    return render(request, block_doc(block))


def _no_block(request: web.Request, height: int) -> ApiError:
    """Why there is no block at ``height``: not committed yet, or pruned on this node."""
    earliest = request.app[BACKEND].earliest_height()
    if 1 <= height < earliest:
        return ApiError(410, ErrorCode.BLOCK_PRUNED,
                        f"block {height} is pruned on this node, which keeps blocks from height {earliest} on "
                        f"(storage.retain_blocks); a node that keeps every block has it")
    return ApiError(404, ErrorCode.BLOCK_NOT_FOUND, f"no committed block at height {height}")


async def get_status(request: web.Request) -> web.Response:
    return render(request, request.app[BACKEND].status())


async def get_validators(request: web.Request) -> web.Response:
    text = request.query.get("height")
    height = None if text is None else parse_height(text)
    document = request.app[BACKEND].validators(height)
    if document is None:
        raise ApiError(404, ErrorCode.HEIGHT_NOT_DECIDED,
                       f"the validator set of height {height} is not decided yet (a change holds two heights "
                       f"after the block that commits it)")
    return render(request, document)


async def get_governance(request: web.Request) -> web.Response:
    return render(request, request.app[BACKEND].governance())


async def get_governance_history(request: web.Request) -> web.Response:
    text = request.query.get("after")
    after = -1 if text is None else parse_history_number(text)
    entries = request.app[BACKEND].governance_history(after, HISTORY_PAGE)
    return render(request, {
        "actions": [governance_doc(number, height, index, result, stx)
                    for number, height, index, result, stx in entries],
        "next_after": entries[-1][0] if len(entries) == HISTORY_PAGE else None,
    })


async def events(request: web.Request) -> web.WebSocketResponse:
    return await events_handler(request, request.app[BACKEND], request.app[WEBSOCKETS])


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[BACKEND].metrics_registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
