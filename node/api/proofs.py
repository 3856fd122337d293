"""The state proof endpoints: a record after a block, with what proves it against that block's app hash.

A proof of height H leads to ``app_hash(H)``, which block H+1's header carries
as ``previous_app_hash`` under block H+1's commit certificate
(docs/protocol.md, "Proving state").  So the newest height these endpoints
prove by default is the one before the committed tip.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.api.backend import ProofUnavailable, StateProofView
from node.api.codec import parse_address, parse_hex, render
from node.api.errors import ApiError, ErrorCode
from node.api.handlers import BACKEND
from node.core.amount import format_som
from node.ledger import layout as k

# Longer than any key of the ledger's layout (an order's is 45 bytes).
MAX_KEY_BYTES = 64


async def get_state_proof(request: web.Request) -> web.Response:
    text = request.query.get("key")
    if text is None:
        raise ApiError(400, ErrorCode.BAD_REQUEST, "give the state key as ?key=<hex> (docs/ledger.md, Keys)")
    key = parse_hex(text, "the state key")
    if not 1 <= len(key) <= MAX_KEY_BYTES:
        raise ApiError(400, ErrorCode.BAD_HEX, f"a state key is 1 to {MAX_KEY_BYTES} bytes")
    return render(request, state_proof_doc(_prove(request, key)))


async def get_account_proof(request: web.Request) -> web.Response:
    address = request.match_info["address"]
    public_key = parse_address(address)
    view = _prove(request, k.account_key(public_key))
    account = None
    if view.value is not None:
        balance, nonce, tier, flags, day, spent = k.ACCOUNT_VALUE.unpack(view.value)
        account = {"balance": balance, "balance_som": format_som(balance), "nonce": nonce, "tier": tier,
                   "flags": flags, "day": day, "spent": spent}
    return render(request, {"address": address, "account": account, **state_proof_doc(view)})


def state_proof_doc(view: StateProofView) -> dict[str, Any]:
    return {
        "height": view.height,
        "certified_by": view.height + 1,
        "app_hash": view.app_hash.hex(),
        "key": view.key.hex(),
        "value": None if view.value is None else view.value.hex(),
        "proof": {
            "entries": [entry.hex() for entry in view.proof.entries],
            "siblings": [[sibling.hex() for sibling in level] for level in view.proof.siblings],
        },
    }


def _prove(request: web.Request, key: bytes) -> StateProofView:
    text = request.query.get("height")
    if text is not None and not (text.isascii() and text.isdigit() and len(text) <= 20):
        raise ApiError(400, ErrorCode.BAD_REQUEST, f"height must be a non-negative integer, got {text!r}")
    try:
        return request.app[BACKEND].state_proof(key, None if text is None else int(text))
    except ProofUnavailable as exc:
        raise ApiError(404, ErrorCode.PROOF_UNAVAILABLE, str(exc)) from exc
