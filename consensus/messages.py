"""Consensus messages and the bytes their senders sign.

The names follow the paper (Buchman, Kwon, Milosevic, "The latest gossip on BFT
consensus", arXiv:1807.04938): a PROPOSAL carries a value and its ``validRound``;
PREVOTE and PRECOMMIT carry ``id(v)`` or nil.  The signed bytes are a domain tag,
the chain id, and the fixed-width fields, so a signature from one chain, height,
round or message type can never be replayed as another.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from enum import IntEnum

CONSENSUS_DOMAIN = b"somnode-consensus-v1\x00"
VALUE_ID_SIZE = 32
NIL = None  # a vote for nil carries no value id


class MessageType(IntEnum):
    PROPOSAL = 1
    PREVOTE = 2
    PRECOMMIT = 3


def value_id(value: bytes) -> bytes:
    """``id(v)`` of the paper: SHA-256 of the value's head, when it has one, else of the whole value.

    A value may be ``u32be len(head) || head || body`` (well formed: the length
    fits, ``len(head) <= len(value) - 4``); its id is then SHA-256(head).  A head
    that commits to its body (the node's block header names the root of its
    transactions) lets a light client check a commit certificate from the head
    alone, without the body.  This is safe only because of the host's valid(v):
    it accepts a value only when the body matches what the head commits to, so
    two different values with one head can never both be valid, and a
    certificate for an id still decides exactly one value.  Any other byte
    string (the simulator's and the tests' values) keeps id = SHA-256(value).
    The engine never looks inside a value beyond this.
    """
    if len(value) >= _HEAD_LENGTH.size:
        (length,) = _HEAD_LENGTH.unpack_from(value)
        if length <= len(value) - _HEAD_LENGTH.size:
            return hashlib.sha256(value[_HEAD_LENGTH.size:_HEAD_LENGTH.size + length]).digest()
    return hashlib.sha256(value).digest()


_HEAD_LENGTH = struct.Struct(">I")


_FIELDS = struct.Struct(">BQIq")  # type, height, round, valid_round (-1 for none)


def signing_bytes(
    chain_id: str,
    kind: MessageType,
    height: int,
    round: int,
    vid: bytes | None,
    valid_round: int = -1,
) -> bytes:
    """The bytes a validator signs for a proposal or vote."""
    chain = chain_id.encode("utf-8")
    id_field = b"\x00" + bytes(VALUE_ID_SIZE) if vid is None else b"\x01" + vid
    return (
        CONSENSUS_DOMAIN
        + bytes([len(chain)])
        + chain
        + _FIELDS.pack(int(kind), height, round, valid_round)
        + id_field
    )


@dataclass(frozen=True, slots=True)
class Proposal:
    """⟨PROPOSAL, h, r, v, validRound⟩ signed by the round's proposer."""

    height: int
    round: int
    value: bytes
    valid_round: int
    proposer: bytes
    signature: bytes
    # id(v) is asked for at every step that handles the proposal; the value is a
    # whole block, so it is hashed once, when first asked for (a mistyped value
    # from the wire must still construct, for the engine to drop it).
    _value_id: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def value_id(self) -> bytes:
        if self._value_id is None:
            object.__setattr__(self, "_value_id", value_id(self.value))
        assert self._value_id is not None
        return self._value_id

    def signing_bytes(self, chain_id: str) -> bytes:
        return signing_bytes(
            chain_id, MessageType.PROPOSAL, self.height, self.round, self.value_id, self.valid_round
        )


@dataclass(frozen=True, slots=True)
class Vote:
    """⟨PREVOTE or PRECOMMIT, h, r, id(v) or nil⟩ signed by ``validator``."""

    type: MessageType
    height: int
    round: int
    value_id: bytes | None
    validator: bytes
    signature: bytes

    def signing_bytes(self, chain_id: str) -> bytes:
        return signing_bytes(chain_id, self.type, self.height, self.round, self.value_id)


Message = Proposal | Vote


_MAX_HEIGHT = 2**64 - 1
_MAX_ROUND = 2**32 - 1
_KEY_SIZE = 32
_SIGNATURE_SIZE = 64


def is_well_formed(message: object) -> bool:
    """Fields of the right types, sizes and ranges for their signing bytes.

    Decoders and the engine call this before anything else, so a malformed
    message from the network is dropped instead of raising deep inside.
    Signatures are not checked here.
    """
    if isinstance(message, Proposal):
        return (
            _uint(message.height, _MAX_HEIGHT)
            and _uint(message.round, _MAX_ROUND)
            and type(message.valid_round) is int
            and -1 <= message.valid_round < message.round
            and isinstance(message.value, bytes)
            and _sized(message.proposer, _KEY_SIZE)
            and _sized(message.signature, _SIGNATURE_SIZE)
        )
    if isinstance(message, Vote):
        return (
            isinstance(message.type, int)
            and message.type in (MessageType.PREVOTE, MessageType.PRECOMMIT)
            and _uint(message.height, _MAX_HEIGHT)
            and _uint(message.round, _MAX_ROUND)
            and (message.value_id is None or _sized(message.value_id, VALUE_ID_SIZE))
            and _sized(message.validator, _KEY_SIZE)
            and _sized(message.signature, _SIGNATURE_SIZE)
        )
    return False


def _uint(value: object, maximum: int) -> bool:
    return type(value) is int and 0 <= value <= maximum


def _sized(value: object, size: int) -> bool:
    return isinstance(value, bytes) and len(value) == size
