"""Request parsing and response rendering: JSON by default, msgpack on request.

Both encodings carry the same documents (byte strings as lowercase hex), so a
client can switch encodings without changing how it reads a field.  Parsing is
strict: anything that is not exactly the documented shape is a 4xx with a
stable code, never a guess.
"""

from __future__ import annotations

import binascii
import json
from typing import Any

import msgpack
from aiohttp import web

from node.api.backend import BlockView, GovernanceView, RegistrationView, TxState, TxStatus, TxView
from node.api.errors import ApiError, ErrorCode
from node.core.actions import (
    Action,
    AddBank,
    AddObserver,
    DefineTier,
    Freeze,
    OrderReference,
    RemoveBank,
    RemoveObserver,
    ReplaceIssuer,
    RotateValidatorKey,
    Seize,
    SetBoard,
    SetValidator,
    SetWallet,
    Unfreeze,
    describe,
)
from node.core.address import AddressError, decode_address, encode_address
from node.core.amount import format_som
from node.core.governance import SignedGovernance
from node.core.tiers import Tier
from node.core.transactions import AnyTransaction
from node.mempool.results import AdmitResult

MSGPACK_TYPES = frozenset({"application/msgpack", "application/x-msgpack", "application/vnd.msgpack"})
MSGPACK_CONTENT_TYPE = "application/msgpack"
HASH_SIZE = 32


def parse_hex(text: object, what: str) -> bytes:
    """Strict hex: a string of hex digit pairs, no prefix or whitespace."""
    if not isinstance(text, str):
        raise ApiError(400, ErrorCode.BAD_REQUEST, f"{what} must be a hex string")
    try:
        return binascii.a2b_hex(text)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, ErrorCode.BAD_HEX, f"{what} is not hex: {exc}") from exc


def parse_hash(text: str) -> bytes:
    digest = parse_hex(text, "the transaction hash")
    if len(digest) != HASH_SIZE:
        raise ApiError(400, ErrorCode.BAD_HEX, f"a transaction hash is {HASH_SIZE} bytes ({2 * HASH_SIZE} hex digits)")
    return digest


def parse_address(text: str) -> bytes:
    """The public key of a ``som1…`` address in a path, or a 400 saying what is wrong with it."""
    try:
        return decode_address(text)
    except AddressError as exc:
        raise ApiError(400, ErrorCode.BAD_ADDRESS, str(exc)) from exc


def parse_height(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 20) or int(text) < 1:
        raise ApiError(400, ErrorCode.BAD_REQUEST, f"height must be a positive integer, got {text!r}")
    return int(text)


def parse_history_number(text: str) -> int:
    """A position in the governance history: 0 .. 2^64 - 2, so that the next one still has a key."""
    if not (text.isascii() and text.isdigit() and len(text) <= 20) or int(text) > 2**64 - 2:
        raise ApiError(400, ErrorCode.BAD_REQUEST, f"after is a history number 0..2^64-2, got {text!r}")
    return int(text)


def parse_submission(content_type: str, body: bytes, max_txs: int) -> list[bytes]:
    """The raw transactions in a POST /v1/txs body.

    JSON: ``{"txs": ["<hex>", ...]}`` or ``{"tx": "<hex>"}``.  msgpack: an array
    of bin.  Any other content type is read as JSON, so ``curl -d`` just works.
    """
    if content_type in MSGPACK_TYPES:
        raws = _parse_msgpack_submission(body)
    else:
        raws = _parse_json_submission(body)
    if not raws:
        raise ApiError(400, ErrorCode.BAD_REQUEST, "no transactions in the request")
    if len(raws) > max_txs:
        raise ApiError(400, ErrorCode.TOO_MANY_TXS, f"{len(raws)} transactions in one request; the limit is {max_txs}")
    return raws


def _parse_json_submission(body: bytes) -> list[bytes]:
    # JSON on the wire is UTF-8 (RFC 8259); json.loads(bytes) would also guess UTF-16/32 and
    # let surrogates through, so the body is decoded strictly first.
    try:
        doc = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ApiError(400, ErrorCode.BAD_JSON, f"the body is not UTF-8 JSON: {exc}") from exc
    if not isinstance(doc, dict) or len(doc) != 1 or not ({"tx", "txs"} & doc.keys()):
        raise ApiError(400, ErrorCode.BAD_REQUEST, 'the body must be {"txs": ["<hex>", ...]} or {"tx": "<hex>"}')
    if "tx" in doc:
        return [parse_hex(doc["tx"], "tx")]
    txs = doc["txs"]
    if not isinstance(txs, list):
        raise ApiError(400, ErrorCode.BAD_REQUEST, '"txs" must be a list of hex strings')
    return [parse_hex(item, f"txs[{i}]") for i, item in enumerate(txs)]


def _parse_msgpack_submission(body: bytes) -> list[bytes]:
    try:
        doc = msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, RecursionError) as exc:
        raise ApiError(400, ErrorCode.BAD_MSGPACK, f"the body is not one msgpack value: {exc}") from exc
    if not isinstance(doc, list) or not all(type(item) is bytes for item in doc):
        raise ApiError(400, ErrorCode.BAD_REQUEST, "a msgpack body is an array of bin (one signed transaction each)")
    return doc


def wants_msgpack(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return any(kind in accept for kind in MSGPACK_TYPES)


def render(request: web.Request, document: Any, status: int = 200) -> web.Response:
    """``document`` as msgpack if the client asked for it, JSON otherwise."""
    if wants_msgpack(request):
        return web.Response(body=msgpack.packb(document, use_bin_type=True), status=status,
                            content_type=MSGPACK_CONTENT_TYPE)
    return web.json_response(document, status=status)


# ---- documents

def admit_result_doc(result: AdmitResult) -> dict[str, Any]:
    doc: dict[str, Any] = {"accepted": result.accepted, "code": result.code}
    if result.tx_hash is not None:
        doc["hash"] = result.tx_hash.hex()
    if not result.accepted:
        doc["message"] = result.message
    return doc


def tx_status_doc(tx_hash: bytes, status: TxStatus) -> dict[str, Any]:
    doc: dict[str, Any] = {"hash": tx_hash.hex(), "status": status.state.value}
    if status.state is TxState.COMMITTED:
        doc.update(height=status.height, index=status.index, result=status.result)
    if status.waterfall is not None:
        credited, passed_on, linked = status.waterfall
        doc["waterfall"] = {"credited": credited, "credited_som": format_som(credited), "passed_on": passed_on,
                            "passed_on_som": format_som(passed_on), "linked_account": encode_address(linked)}
    if status.tx is not None:
        doc["tx"] = tx_doc(status.tx)
    return doc


def tx_doc(tx: TxView | GovernanceView | RegistrationView) -> dict[str, Any]:
    if isinstance(tx, RegistrationView):
        return {
            "kind": "register",
            "bank": encode_address(tx.bank),
            "nonce": tx.nonce,
            "wallet": encode_address(tx.wallet),
            "tier": tx.tier,
            "linked_account": encode_address(tx.linked) if tx.linked else None,
        }
    if isinstance(tx, GovernanceView):
        return {
            "kind": "governance",
            "sequence": tx.sequence,
            "expiry_height": tx.expiry_height,
            "action": action_doc(tx.action),
            "approvals": [encode_address(signer) for signer in tx.signers],
        }
    return {
        "kind": tx.kind,
        "sender": encode_address(tx.sender),
        "recipient": None if tx.recipient is None else encode_address(tx.recipient),
        "amount": tx.amount,
        "amount_som": format_som(tx.amount),
        "nonce": tx.nonce,
        "memo": tx.memo,
    }


def block_doc(block: BlockView) -> dict[str, Any]:
    """A block document: the header's fields, its exact bytes (``header``, whose SHA-256 is ``hash``),
    what applying the block produced, the transaction hashes and the certificate."""
    commit, header = block.commit, block.header
    return {
        "height": header.height,
        "chain_id": header.chain_id,
        "time_ms": header.time_ms,
        "hash": block.block_hash.hex(),
        "proposer": encode_address(header.proposer),
        "previous_block_hash": header.previous_block_hash.hex(),
        "previous_app_hash": header.previous_app_hash.hex(),
        "previous_results_hash": header.previous_results_hash.hex(),
        "next_validators_hash": header.next_validators_hash.hex(),
        "tx_root": header.tx_root.hex(),
        "tx_count": header.tx_count,
        "header": header.encode().hex(),
        "app_hash": block.app_hash.hex(),
        "results_hash": block.results_hash.hex(),
        "txs": [h.hex() for h in block.tx_hashes],
        "commit": {
            "round": commit.round,
            "value_id": commit.value_id.hex(),
            "precommits": [
                {"validator": encode_address(p.validator), "signature": p.signature.hex()}
                for p in commit.precommits
            ],
        },
    }


def action_doc(action: Action) -> dict[str, Any]:
    """A governance action as a document: its type, its fields (keys as addresses) and the same in words."""
    doc: dict[str, Any]
    match action:
        case AddBank(name=name, bank=bank):
            doc = {"type": "add_bank", "name": name, "bank": encode_address(bank)}
        case RemoveBank(bank=bank):
            doc = {"type": "remove_bank", "bank": encode_address(bank)}
        case SetValidator(validator=validator, power=power):
            doc = {"type": "set_validator", "validator": encode_address(validator), "power": power}
        case RotateValidatorKey(old_key=old_key, new_key=new_key):
            doc = {"type": "rotate_validator_key", "old_key": encode_address(old_key),
                   "new_key": encode_address(new_key)}
        case ReplaceIssuer(issuer=issuer):
            doc = {"type": "replace_issuer", "issuer": encode_address(issuer)}
        case SetBoard(threshold=threshold, members=members):
            doc = {"type": "set_board", "threshold": threshold, "members": [encode_address(m) for m in members]}
        case DefineTier(tier=tier):
            doc = {"type": "define_tier", **tier_doc(tier)}
        case SetWallet(wallet=wallet, tier=tier, linked=linked):
            doc = {"type": "set_wallet", "wallet": encode_address(wallet), "tier": tier,
                   "linked_account": encode_address(linked) if linked else None}
        case Freeze() | Unfreeze() | Seize():
            doc = {"type": type(action).__name__.lower(), "account": encode_address(action.account),
                   **({"amount": action.amount, "amount_som": format_som(action.amount),
                       "destination": encode_address(action.destination)} if isinstance(action, Seize)
                      else {"scope": action.scope.name.lower()}),
                   "reference": reference_doc(action.reference)}
        case AddObserver(name=name, observer=observer):
            doc = {"type": "add_observer", "name": name, "observer": encode_address(observer)}
        case RemoveObserver(observer=observer):
            doc = {"type": "remove_observer", "observer": encode_address(observer)}
    return {**doc, "description": describe(action)}


def tier_doc(tier: Tier) -> dict[str, Any]:
    return {"id": tier.id, "name": tier.name,
            "max_balance": tier.max_balance, "max_balance_som": format_som(tier.max_balance),
            "max_payment": tier.max_payment, "max_payment_som": format_som(tier.max_payment),
            "max_daily_out": tier.max_daily_out, "max_daily_out_som": format_som(tier.max_daily_out)}


def reference_doc(ref: OrderReference) -> dict[str, Any]:
    return {"authority": ref.authority, "number": ref.number, "date": ref.date,
            "document_sha256": ref.document_sha256.hex()}


def governance_doc(number: int, height: int, index: int, result: str, stx: AnyTransaction) -> dict[str, Any]:
    """One applied governance transaction, the ``number``-th of the history."""
    assert isinstance(stx, SignedGovernance), "the history holds governance transactions"
    return {
        "number": number,
        "sequence": stx.tx.sequence,
        "height": height,
        "index": index,
        "hash": stx.hash.hex(),
        "result": result,
        "expiry_height": stx.tx.expiry_height,
        "action": action_doc(stx.tx.action),
        "approvals": [encode_address(signer) for signer in stx.signers],
        # The signed bytes, so a client checks the approvals and the hash itself.
        "raw": stx.raw.hex(),
    }
