"""Governance transactions: the board's multi-signed actions (node/core/actions.py).

The genesis names a board (keys and a threshold M).  A governance
transaction carries one action, the board's next sequence number (replay
protection), the last height at which it may be committed, and the
approvals: signatures of board members (at least M distinct ones) over the
same domain-separated bytes, which include the chain id.  A validator may
also rotate its own consensus key: the old key's approval then suffices.

Signed form (msgpack array, docs/protocol.md §13):

    [version, 4, sequence, expiry_height, action, [[signer, signature], ...]]

with the approvals sorted by signer key, each signer once.  Every approval
signs ``signing_bytes(chain_id)``: GOVERNANCE_DOMAIN, the chain id (one
length byte, then UTF-8) and the msgpack array without the approvals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from node.core import tx as _tx
from node.core.actions import (
    MAX_BOARD_MEMBERS,
    Action,
    RotateValidatorKey,
    action_fields,
    check_action,
    decode_action,
    proof_bytes,
)
from node.core.codec import CodecError, unpack_bounded
from node.core.tx import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    TX_VERSION,
    Signer,
    TxDecodeCode,
    TxDecodeError,
    TxKind,
    chain_id_bytes,
)

GOVERNANCE_DOMAIN = b"somnode-governance-v1\x00"
_U64 = 2**64 - 1


@dataclass(frozen=True, slots=True)
class GovernanceTransaction:
    """An unsigned governance transaction; ``kind`` is always GOVERNANCE, like a payment's ``kind``."""

    sequence: int
    expiry_height: int
    action: Action

    def __post_init__(self) -> None:
        _check(self)

    @property
    def kind(self) -> TxKind:
        return TxKind.GOVERNANCE

    def fields(self) -> list[object]:
        return [TX_VERSION, int(TxKind.GOVERNANCE), self.sequence, self.expiry_height, action_fields(self.action)]

    def unsigned_bytes(self) -> bytes:
        return _tx.pack(self.fields())

    def signing_bytes(self, chain_id: str) -> bytes:
        chain = chain_id_bytes(chain_id)
        return GOVERNANCE_DOMAIN + bytes([len(chain)]) + chain + self.unsigned_bytes()

    def approve(self, key: Signer, chain_id: str) -> tuple[bytes, bytes]:
        """One approval: (the signer's key, its signature)."""
        return key.public_key, key.sign(self.signing_bytes(chain_id))

    def signed(self, approvals: Sequence[tuple[bytes, bytes]]) -> SignedGovernance:
        """The transaction with ``approvals`` (any order; one per signer)."""
        ordered = tuple(sorted(approvals))
        if len({key for key, _ in ordered}) != len(ordered):
            raise TxDecodeError(TxDecodeCode.DUPLICATE_SIGNER, "a signer approves a transaction once")
        raw = _tx.pack(self.fields() + [[list(pair) for pair in ordered]])
        return SignedGovernance(self, ordered, raw, hashlib.sha256(raw).digest())


@dataclass(frozen=True, slots=True)
class SignedGovernance:
    """A governance transaction with its approvals, canonical bytes and hash (signatures not yet verified)."""

    tx: GovernanceTransaction
    approvals: tuple[tuple[bytes, bytes], ...]
    raw: bytes
    hash: bytes

    def verify_items(self, chain_id: str) -> list[tuple[bytes, bytes, bytes]]:
        """Every signature it carries as (public key, message, signature): approvals, then a rotation's proof."""
        message = self.tx.signing_bytes(chain_id)
        items = [(key, message, signature) for key, signature in self.approvals]
        action = self.tx.action
        if isinstance(action, RotateValidatorKey):
            items.append((action.new_key, proof_bytes(chain_id, action.old_key, action.new_key), action.proof))
        return items

    def signature_checks(self, chain_id: str) -> tuple[list[tuple[bytes, bytes, bytes]], list[bytes]]:
        """``verify_items`` with a cache key for each: the transaction's hash and the item's position
        determine the triple, as a payment's hash determines its one triple."""
        items = self.verify_items(chain_id)
        return items, [hashlib.sha256(self.hash + bytes([index])).digest() for index in range(len(items))]

    @property
    def signers(self) -> tuple[bytes, ...]:
        return tuple(key for key, _ in self.approvals)


def decode_fields(fields: list[object], raw: bytes) -> SignedGovernance:
    """A governance transaction from its decoded envelope (version and kind already checked)."""
    if len(fields) != 6:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD_COUNT, f"governance has 6 fields, got {len(fields)}")
    tx = _unsigned(fields[:5])
    approvals = fields[5]
    if type(approvals) is not list or not approvals:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "a governance transaction carries its approvals")
    pairs = []
    for entry in approvals:
        if (type(entry) is not list or len(entry) != 2 or type(entry[0]) is not bytes
                or len(entry[0]) != PUBLIC_KEY_SIZE or type(entry[1]) is not bytes
                or len(entry[1]) != SIGNATURE_SIZE):
            raise TxDecodeError(TxDecodeCode.BAD_FIELD, "an approval is [32-byte key, 64-byte signature]")
        pairs.append((entry[0], entry[1]))
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise TxDecodeError(TxDecodeCode.DUPLICATE_SIGNER, "a signer approves a transaction once")
    if keys != sorted(keys):
        raise TxDecodeError(TxDecodeCode.NON_CANONICAL, "approvals are sorted by signer key")
    signed = tx.signed(pairs)
    if signed.raw != raw:
        raise TxDecodeError(TxDecodeCode.NON_CANONICAL, "the encoding is not canonical")
    return signed


def decode_unsigned(raw: bytes) -> GovernanceTransaction:
    """The unsigned array ``[version, 4, sequence, expiry_height, action]`` that the approvals sign,
    as the board passes it around before it is signed (node/tools/gov_file.py)."""
    try:
        fields = unpack_bounded(raw, what="governance transaction", max_bytes=_tx.MAX_TX_BYTES,
                                max_array_len=MAX_BOARD_MEMBERS)
    except CodecError as exc:
        raise TxDecodeError(TxDecodeCode(exc.code), str(exc)) from None
    if type(fields) is not list or len(fields) != 5:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD_COUNT, "an unsigned governance transaction has 5 fields")
    if type(fields[0]) is not int or fields[0] != TX_VERSION:
        raise TxDecodeError(TxDecodeCode.BAD_VERSION, f"unsupported transaction version {fields[0]!r}")
    if type(fields[1]) is not int or fields[1] != int(TxKind.GOVERNANCE):
        raise TxDecodeError(TxDecodeCode.UNKNOWN_KIND, "not a governance transaction")
    tx = _unsigned(fields)
    if _tx.pack(tx.fields()) != raw:
        raise TxDecodeError(TxDecodeCode.NON_CANONICAL, "the encoding is not canonical")
    return tx


def _unsigned(fields: list[object]) -> GovernanceTransaction:
    _, _, sequence, expiry_height, action_payload = fields
    if type(sequence) is not int or type(expiry_height) is not int:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "sequence and expiry height are integers")
    return GovernanceTransaction(sequence, expiry_height, decode_action(action_payload))


def _check(tx: GovernanceTransaction) -> None:
    """The fields' own bounds; whether the action is possible depends on the state (node/ledger/governance.py)."""
    if type(tx.sequence) is not int or not 0 <= tx.sequence <= _U64:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "sequence must be an unsigned 64-bit integer")
    if type(tx.expiry_height) is not int or not 1 <= tx.expiry_height <= _U64:
        raise TxDecodeError(TxDecodeCode.BAD_FIELD, "expiry height must be 1..2^64-1")
    check_action(tx.action)
