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
    status          [height, earliest height whose block the sender keeps]
    certificate     [height, round, value_id, [precommit vote payload, ...]]
    snapshots request   [request_id]
    snapshots response  [request_id, [manifest bytes, ...]]   newest first
    chunk request       [request_id, height, chunk index]
    chunk response      [request_id, chunk bytes or nil]        nil: that snapshot is not kept
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import msgpack

from consensus.certificate import CommitCertificate
from consensus.messages import Proposal, Vote, is_well_formed
from node.core.block import MAX_BLOCK_BYTES
from node.core.certificate import (
    U32,
    U64,
    certificate_fields,
    decode_certificate_fields,
    decode_vote_fields,
    vote_fields,
)
from node.core.codec import CodecError, array, blob, uint
from node.core.tx import MAX_TX_BYTES, PUBLIC_KEY_SIZE, SIGNATURE_SIZE
from node.p2p.framing import (
    MAX_FRAME_BYTES,
    FrameType,
    WireError,
    pack_frame,
    unpack_frame,
)
from node.statesync.snapshot import CHUNKS, MAX_CHUNK_BYTES, MAX_MANIFEST_BYTES

MAX_TXS_PER_BATCH = 10_000
MAX_BLOCKS_PER_RESPONSE = 64
# A node keeps a few snapshots (storage.snapshot_keep); a list longer than this is not an honest one.
MAX_SNAPSHOTS_LISTED = 16
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
    """The sender's last committed height, and the lowest height whose block it still keeps (1 unless it
    prunes), so peers know who to catch up from."""

    height: int
    earliest: int = 1


@dataclass(frozen=True, slots=True)
class SnapshotsRequest:
    """Ask a peer which state snapshots it keeps (node/statesync/)."""

    request_id: int


@dataclass(frozen=True, slots=True)
class SnapshotsResponse:
    """The manifests of the snapshots the sender keeps, newest first; checked by the asker, not here."""

    request_id: int
    manifests: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ChunkRequest:
    request_id: int
    height: int
    index: int


@dataclass(frozen=True, slots=True)
class ChunkResponse:
    """One chunk of a snapshot, as the sender stores it; None when it no longer keeps that snapshot."""

    request_id: int
    chunk: bytes | None


Response = BlockResponse | SnapshotsResponse | ChunkResponse
WireMessage = Proposal | Vote | TxBatch | Status | BlockRequest | SnapshotsRequest | ChunkRequest | Response


def encode(message: WireMessage) -> bytes:
    """The frame carrying ``message``."""
    match message:
        case Proposal():
            return pack_frame(FrameType.PROPOSAL, _proposal_fields(message))
        case Vote():
            return pack_frame(FrameType.VOTE, vote_fields(message))
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
            return pack_frame(FrameType.STATUS, [message.height, message.earliest])
        case SnapshotsRequest():
            return pack_frame(FrameType.SNAPSHOTS_REQUEST, [message.request_id])
        case SnapshotsResponse():
            return pack_frame(FrameType.SNAPSHOTS_RESPONSE, [message.request_id, list(message.manifests)])
        case ChunkRequest():
            return pack_frame(FrameType.CHUNK_REQUEST, [message.request_id, message.height, message.index])
        case ChunkResponse():
            return pack_frame(FrameType.CHUNK_RESPONSE, [message.request_id, message.chunk])
    raise TypeError(f"not a wire message: {type(message).__name__}")


def decode(data: bytes, max_frame_bytes: int = MAX_FRAME_BYTES) -> WireMessage:
    """Parse and validate one frame; raise WireError saying what is wrong."""
    kind, payload = unpack_frame(data, max_frame_bytes)
    try:
        return _decode_payload(kind, payload)
    except WireError:
        raise
    except CodecError as exc:
        raise WireError(exc.code, str(exc)) from exc


def _decode_payload(kind: FrameType, payload: object) -> WireMessage:
    match kind:
        case FrameType.PROPOSAL:
            return _decode_proposal(payload)
        case FrameType.VOTE:
            return decode_vote_fields(payload)
        case FrameType.TXS:
            return _decode_txs(payload)
        case FrameType.BLOCK_REQUEST:
            return _decode_block_request(payload)
        case FrameType.BLOCK_RESPONSE:
            return _decode_block_response(payload)
        case FrameType.STATUS:
            height, earliest = array(payload, 2, "status")
            return Status(uint(height, U64, "status height"), uint(earliest, U64, "status earliest height"))
        case FrameType.SNAPSHOTS_REQUEST:
            (request_id,) = array(payload, 1, "snapshots request")
            return SnapshotsRequest(uint(request_id, U64, "request id"))
        case FrameType.SNAPSHOTS_RESPONSE:
            return _decode_snapshots_response(payload)
        case FrameType.CHUNK_REQUEST:
            request_id, height, index = array(payload, 3, "chunk request")
            return ChunkRequest(uint(request_id, U64, "request id"), uint(height, U64, "snapshot height"),
                                uint(index, CHUNKS - 1, "chunk index"))
        case FrameType.CHUNK_RESPONSE:
            request_id, chunk = array(payload, 2, "chunk response")
            return ChunkResponse(uint(request_id, U64, "request id"),
                                 None if chunk is None else blob(chunk, "chunk", max_size=MAX_CHUNK_BYTES))
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


def _decode_proposal(payload: object) -> Proposal:
    height, round_, value, valid_round, proposer, signature = array(payload, 6, "proposal")
    if type(valid_round) is not int or not -1 <= valid_round <= U32:
        raise WireError("bad_field", "proposal valid_round must be -1 or a round number")
    return _well_formed(Proposal(
        height=uint(height, U64, "proposal height"),
        round=uint(round_, U32, "proposal round"),
        value=blob(value, "proposal value", max_size=MAX_BLOCK_BYTES),
        valid_round=valid_round,
        proposer=blob(proposer, "proposer", size=PUBLIC_KEY_SIZE),
        signature=blob(signature, "proposal signature", size=SIGNATURE_SIZE),
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
    return TxBatch(tuple(blob(tx, "transaction", max_size=MAX_TX_BYTES) for tx in payload))


def _decode_block_request(payload: object) -> BlockRequest:
    request_id, from_height, to_height = array(payload, 3, "block request")
    request = BlockRequest(
        uint(request_id, U64, "request id"),
        uint(from_height, U64, "from_height"),
        uint(to_height, U64, "to_height"),
    )
    if not 1 <= request.from_height <= request.to_height:
        raise WireError("bad_field", "a block request needs 1 <= from_height <= to_height")
    return request


def _decode_block_response(payload: object) -> BlockResponse:
    request_id, blocks = array(payload, 2, "block response")
    if type(blocks) is not list or len(blocks) > MAX_BLOCKS_PER_RESPONSE:
        raise WireError("bad_payload", f"a block response holds at most {MAX_BLOCKS_PER_RESPONSE} blocks")
    decoded = []
    for entry in blocks:
        raw, cert = array(entry, 2, "block entry")
        decoded.append((blob(raw, "block", max_size=MAX_BLOCK_BYTES), decode_certificate_fields(cert)))
    return BlockResponse(uint(request_id, U64, "request id"), tuple(decoded))


def _decode_snapshots_response(payload: object) -> SnapshotsResponse:
    request_id, manifests = array(payload, 2, "snapshots response")
    if type(manifests) is not list or len(manifests) > MAX_SNAPSHOTS_LISTED:
        raise WireError("bad_payload", f"a snapshots response lists at most {MAX_SNAPSHOTS_LISTED} manifests")
    return SnapshotsResponse(uint(request_id, U64, "request id"),
                             tuple(blob(m, "snapshot manifest", max_size=MAX_MANIFEST_BYTES) for m in manifests))
