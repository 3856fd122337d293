"""The messages validators exchange once a link is authenticated, and their codec.

Consensus messages travel exactly as ``consensus.messages`` defines them; the
signatures inside are not checked here (the runtime hands them to the batch
verifier, whose cache makes a message seen from several peers cost one check).
Decoding only enforces shape: types, fixed sizes and ranges, so nothing that
reaches the runtime can make it raise on a field's type.

Payloads (msgpack, inside a ``[type, payload]`` frame, see ``framing``):

    proposal        [height, round, value, valid_round, proposer, signature]
    vote            [vote_type, height, round, value_id or nil, validator, signature]
    txs             [tx bytes, ...]
    block request   [request_id, from_height, to_height]
    block response  [request_id, [[block bytes, certificate], ...]]
    status          [height]
    certificate     [height, round, value_id, [precommit vote payload, ...]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgpack

from consensus.certificate import CommitCertificate
from consensus.messages import (
    VALUE_ID_SIZE,
    MessageType,
    Proposal,
    Vote,
    is_well_formed,
)
from node.core.block import MAX_BLOCK_BYTES
from node.core.tx import MAX_TX_BYTES, PUBLIC_KEY_SIZE, SIGNATURE_SIZE
from node.p2p.framing import (
    MAX_FRAME_BYTES,
    FrameType,
    WireError,
    pack_frame,
    unpack_frame,
)

MAX_TXS_PER_BATCH = 10_000
MAX_BLOCKS_PER_RESPONSE = 64
MAX_CERTIFICATE_VOTES = 1000
_U64 = 2**64 - 1
_U32 = 2**32 - 1
_M = TypeVar("_M", Proposal, Vote)
# Frame and response headers around the block entries: type, request id, array headers.
_RESPONSE_OVERHEAD = 32


@dataclass(frozen=True, slots=True)
class TxBatch:
    """Raw signed transactions gossiped between mempools; decoded by the receiver's mempool."""

    txs: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """Ask a peer that is ahead for committed blocks ``from_height..to_height`` inclusive."""

    request_id: int
    from_height: int
    to_height: int


@dataclass(frozen=True, slots=True)
class BlockResponse:
    """Committed blocks in ascending height order, each with the certificate that committed it.

    It may hold fewer blocks than asked for (the sender stops at its own height
    or at the frame size); the requester asks again from where it ends.
    """

    request_id: int
    blocks: tuple[tuple[bytes, CommitCertificate], ...]


@dataclass(frozen=True, slots=True)
class Status:
    """The sender's last committed height, so peers know who to catch up from."""

    height: int


WireMessage = Proposal | Vote | TxBatch | BlockRequest | BlockResponse | Status


def encode(message: WireMessage) -> bytes:
    """The frame carrying ``message``."""
    match message:
        case Proposal():
            return pack_frame(FrameType.PROPOSAL, _proposal_fields(message))
        case Vote():
            return pack_frame(FrameType.VOTE, _vote_fields(message))
        case TxBatch():
            return pack_frame(FrameType.TXS, list(message.txs))
        case BlockRequest():
            return pack_frame(
                FrameType.BLOCK_REQUEST, [message.request_id, message.from_height, message.to_height]
            )
        case BlockResponse():
            blocks = [[raw, certificate_fields(cert)] for raw, cert in message.blocks]
            return pack_frame(FrameType.BLOCK_RESPONSE, [message.request_id, blocks])
        case Status():
            return pack_frame(FrameType.STATUS, [message.height])
    raise TypeError(f"not a wire message: {type(message).__name__}")


def decode(data: bytes, max_frame_bytes: int = MAX_FRAME_BYTES) -> WireMessage:
    """Parse and validate one frame; raise WireError saying what is wrong."""
    kind, payload = unpack_frame(data, max_frame_bytes)
    match kind:
        case FrameType.PROPOSAL:
            return _decode_proposal(payload)
        case FrameType.VOTE:
            return _decode_vote(payload)
        case FrameType.TXS:
            return _decode_txs(payload)
        case FrameType.BLOCK_REQUEST:
            return _decode_block_request(payload)
        case FrameType.BLOCK_RESPONSE:
            return _decode_block_response(payload)
        case FrameType.STATUS:
            height, = _array(payload, 1, "status")
            return Status(_uint(height, _U64, "status height"))
    raise WireError("unexpected_type", f"a {kind.name.lower()} frame is only valid during the handshake")


def fit_blocks(
    blocks: Sequence[tuple[bytes, CommitCertificate]], max_frame_bytes: int,
) -> tuple[tuple[bytes, CommitCertificate], ...]:
    """The longest prefix of ``blocks`` (at most MAX_BLOCKS_PER_RESPONSE) whose response fits one frame."""
    budget = max_frame_bytes - _RESPONSE_OVERHEAD
    kept = []
    for raw, cert in blocks[:MAX_BLOCKS_PER_RESPONSE]:
        budget -= len(msgpack.packb([raw, certificate_fields(cert)], use_bin_type=True))
        if budget < 0:
            break
        kept.append((raw, cert))
    return tuple(kept)


def _proposal_fields(p: Proposal) -> list[object]:
    return [p.height, p.round, p.value, p.valid_round, p.proposer, p.signature]


def _vote_fields(v: Vote) -> list[object]:
    return [int(v.type), v.height, v.round, v.value_id, v.validator, v.signature]


def certificate_fields(cert: CommitCertificate) -> list[object]:
    """The certificate as the msgpack array peers exchange (and the store keeps)."""
    return [cert.height, cert.round, cert.value_id, [_vote_fields(v) for v in cert.precommits]]


def _array(payload: object, length: int, what: str) -> list[Any]:
    if type(payload) is not list or len(payload) != length:
        raise WireError("bad_payload", f"a {what} is an array of {length} elements")
    return payload


def _uint(value: object, maximum: int, what: str) -> int:
    if type(value) is not int or not 0 <= value <= maximum:
        raise WireError("bad_field", f"{what} must be an integer in 0..{maximum}")
    return value


def _blob(value: object, what: str, size: int | None = None, max_size: int | None = None) -> bytes:
    if type(value) is not bytes:
        raise WireError("bad_field", f"{what} must be bytes")
    if size is not None and len(value) != size:
        raise WireError("bad_field", f"{what} must be {size} bytes, got {len(value)}")
    if max_size is not None and not 0 < len(value) <= max_size:
        raise WireError("bad_field", f"{what} must be 1..{max_size} bytes, got {len(value)}")
    return value


def _decode_proposal(payload: object) -> Proposal:
    height, round_, value, valid_round, proposer, signature = _array(payload, 6, "proposal")
    if type(valid_round) is not int or not -1 <= valid_round <= _U32:
        raise WireError("bad_field", "proposal valid_round must be -1 or a round number")
    return _well_formed(Proposal(
        height=_uint(height, _U64, "proposal height"),
        round=_uint(round_, _U32, "proposal round"),
        value=_blob(value, "proposal value", max_size=MAX_BLOCK_BYTES),
        valid_round=valid_round,
        proposer=_blob(proposer, "proposer", size=PUBLIC_KEY_SIZE),
        signature=_blob(signature, "proposal signature", size=SIGNATURE_SIZE),
    ))


def _decode_vote(payload: object) -> Vote:
    vote_type, height, round_, vid, validator, signature = _array(payload, 6, "vote")
    if type(vote_type) is not int or vote_type not in (MessageType.PREVOTE, MessageType.PRECOMMIT):
        raise WireError("bad_field", "vote type must be prevote (2) or precommit (3)")
    return _well_formed(Vote(
        type=MessageType(vote_type),
        height=_uint(height, _U64, "vote height"),
        round=_uint(round_, _U32, "vote round"),
        value_id=None if vid is None else _blob(vid, "vote value id", size=VALUE_ID_SIZE),
        validator=_blob(validator, "vote validator", size=PUBLIC_KEY_SIZE),
        signature=_blob(signature, "vote signature", size=SIGNATURE_SIZE),
    ))


def _well_formed(message: _M) -> _M:
    # The engine's own gate, so nothing the wire accepts is dropped later for its shape.
    if not is_well_formed(message):
        raise WireError("bad_field", f"{type(message).__name__.lower()} fields are inconsistent "
                                     "(a proposal's valid_round must be below its round)")
    return message


def _decode_txs(payload: object) -> TxBatch:
    if type(payload) is not list or not 0 < len(payload) <= MAX_TXS_PER_BATCH:
        raise WireError("bad_payload", f"a tx batch is an array of 1..{MAX_TXS_PER_BATCH} transactions")
    return TxBatch(tuple(_blob(tx, "transaction", max_size=MAX_TX_BYTES) for tx in payload))


def _decode_block_request(payload: object) -> BlockRequest:
    request_id, from_height, to_height = _array(payload, 3, "block request")
    request = BlockRequest(
        _uint(request_id, _U64, "request id"),
        _uint(from_height, _U64, "from_height"),
        _uint(to_height, _U64, "to_height"),
    )
    if not 1 <= request.from_height <= request.to_height:
        raise WireError("bad_field", "a block request needs 1 <= from_height <= to_height")
    return request


def _decode_block_response(payload: object) -> BlockResponse:
    request_id, blocks = _array(payload, 2, "block response")
    if type(blocks) is not list or len(blocks) > MAX_BLOCKS_PER_RESPONSE:
        raise WireError("bad_payload", f"a block response holds at most {MAX_BLOCKS_PER_RESPONSE} blocks")
    decoded = []
    for entry in blocks:
        raw, cert = _array(entry, 2, "block entry")
        decoded.append((_blob(raw, "block", max_size=MAX_BLOCK_BYTES), decode_certificate_fields(cert)))
    return BlockResponse(_uint(request_id, _U64, "request id"), tuple(decoded))


def decode_certificate_fields(payload: object) -> CommitCertificate:
    """Validate an unpacked certificate array; raise WireError saying what is wrong."""
    height, round_, vid, votes = _array(payload, 4, "commit certificate")
    if type(votes) is not list or not 0 < len(votes) <= MAX_CERTIFICATE_VOTES:
        raise WireError("bad_payload", f"a certificate holds 1..{MAX_CERTIFICATE_VOTES} precommits")
    precommits = tuple(_decode_vote(v) for v in votes)
    if any(v.type is not MessageType.PRECOMMIT for v in precommits):
        raise WireError("bad_field", "a commit certificate holds precommits only")
    height = _uint(height, _U64, "certificate height")
    round_ = _uint(round_, _U32, "certificate round")
    vid = _blob(vid, "certificate value id", size=VALUE_ID_SIZE)
    return CommitCertificate(height=height, round=round_, value_id=vid, precommits=precommits)
