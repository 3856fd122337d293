"""Transactions of the digital som and their canonical wire format.

Payments are ``transfer`` (any account), ``issue`` (the issuer creates som
into an account) and ``redeem`` (a holder destroys som, returning it to the
issuer's books); ``governance`` transactions are the board's actions
(node/core/governance.py) and ``register`` a bank's registration of a wallet
(node/core/registration.py), in the same envelope.  Every transaction is a msgpack array in one fixed
field order; the decoder re-encodes what it parsed and refuses the input unless
the bytes are identical, so each transaction has exactly one encoding and thus
exactly one hash.  docs/protocol.md is the normative description.

Signed form (msgpack array):
    transfer, issue: [version, kind, sender, nonce, recipient, amount, memo, signature]
    redeem:          [version, kind, sender, nonce, amount, memo, signature]
The signature covers ``signing_bytes(chain_id)``: a domain tag, the chain id and
the unsigned array (the same array without the signature), so a transaction
signed for one chain is worthless on another.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Protocol

import msgpack

from node.core.amount import MAX_TYIYN
from node.core.codec import CodecError, unpack_bounded

TX_VERSION = 1
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
MAX_MEMO_BYTES = 256
MAX_CHAIN_ID_BYTES = 64
# The largest canonical transaction: a governance transaction with a full board's approvals
# (node/core/governance.py); a payment with a full memo is under 420 bytes.
MAX_TX_BYTES = 8192
TX_DOMAIN = b"somnode-tx-v1\x00"


class TxKind(IntEnum):
    TRANSFER = 1
    ISSUE = 2
    REDEEM = 3
    GOVERNANCE = 4
    REGISTER = 5


PAYMENT_KINDS = frozenset({TxKind.TRANSFER, TxKind.ISSUE, TxKind.REDEEM})


_KINDS_WITH_RECIPIENT = frozenset({TxKind.TRANSFER, TxKind.ISSUE})
# The wire's kind numbers to members: a dict lookup, where ``TxKind(n)`` runs enum's
# Python-level constructor on every decoded transaction.
_KIND_BY_NUMBER = {int(kind): kind for kind in TxKind}
# The longest array in a transaction: a governance transaction's approvals (a full board).
_MAX_ARRAY_LEN = 64
# Wire bytes of the signature field: msgpack bin 8 header (0xc4, length 64).
_SIGNATURE_FIELD_SIZE = 2 + SIGNATURE_SIZE


class TxDecodeCode(StrEnum):
    """Why bytes are not a transaction; stable codes that clients branch on (docs/protocol.md)."""

    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    BAD_VERSION = "bad_version"
    UNKNOWN_KIND = "unknown_kind"
    BAD_FIELD_COUNT = "bad_field_count"
    BAD_FIELD = "bad_field"
    BAD_AMOUNT = "bad_amount"
    MEMO_TOO_LONG = "memo_too_long"
    BAD_SIGNATURE = "bad_signature"
    NON_CANONICAL = "non_canonical"
    UNKNOWN_ACTION = "unknown_action"
    DUPLICATE_SIGNER = "duplicate_signer"


class TxDecodeError(ValueError):
    """The bytes are not one canonical, well-formed transaction."""

    def __init__(self, code: TxDecodeCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Signer(Protocol):
    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


_local = threading.local()


def pack(obj: object) -> bytes:
    """Canonical msgpack; one packer per thread, since ``packb`` sets up a fresh one (and its buffer) per call."""
    packer = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(obj)


def chain_id_bytes(chain_id: str) -> bytes:
    encoded = chain_id.encode("utf-8")
    if not 0 < len(encoded) <= MAX_CHAIN_ID_BYTES:
        raise ValueError(f"chain id must be 1..{MAX_CHAIN_ID_BYTES} bytes of UTF-8")
    return encoded


def signing_prefix(chain_id: str) -> bytes:
    """The bytes that precede every unsigned body on ``chain_id``."""
    encoded = chain_id_bytes(chain_id)
    return TX_DOMAIN + bytes([len(encoded)]) + encoded


@dataclass(frozen=True, slots=True)
class Transaction:
    """An unsigned transaction; ``recipient`` is None exactly for redeem."""

    kind: TxKind
    sender: bytes
    nonce: int
    amount: int
    recipient: bytes | None = None
    memo: str = ""

    def __post_init__(self) -> None:
        _check_fields(self)

    def fields(self) -> list[object]:
        """The unsigned msgpack array, in wire order."""
        head: list[object] = [TX_VERSION, int(self.kind), self.sender, self.nonce]
        if self.recipient is not None:
            head.append(self.recipient)
        head += [self.amount, self.memo]
        return head

    def unsigned_bytes(self) -> bytes:
        return pack(self.fields())

    def signing_bytes(self, chain_id: str) -> bytes:
        return signing_prefix(chain_id) + self.unsigned_bytes()

    def sign(self, key: Signer, chain_id: str) -> SignedTransaction:
        if key.public_key != self.sender:
            raise ValueError("the key does not belong to the transaction's sender")
        signature = key.sign(self.signing_bytes(chain_id))
        raw = pack(self.fields() + [signature])
        return SignedTransaction(self, signature, raw, hashlib.sha256(raw).digest())


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A transaction with its signature, canonical bytes and hash.

    The signature has not necessarily been verified: that is the batch
    verifier's job (see ``verify_item``).
    """

    tx: Transaction
    signature: bytes
    raw: bytes
    hash: bytes

    def unsigned_bytes(self) -> bytes:
        # The canonical signed array is the unsigned array with one more element
        # (always a 66-byte bin 8 field), so the unsigned bytes are a slice.
        return bytes([self.raw[0] - 1]) + self.raw[1:-_SIGNATURE_FIELD_SIZE]

    def signing_bytes(self, chain_id: str) -> bytes:
        return signing_prefix(chain_id) + self.unsigned_bytes()

    def verify_item(self, prefix: bytes) -> tuple[bytes, bytes, bytes]:
        """(public key, message, signature) for the verifier; ``prefix`` is ``signing_prefix(chain_id)``."""
        return self.tx.sender, prefix + self.unsigned_bytes(), self.signature


def _fail(code: TxDecodeCode, message: str) -> TxDecodeError:
    return TxDecodeError(code, message)


def _check_fields(tx: Transaction) -> None:
    if tx.kind not in PAYMENT_KINDS:
        raise _fail(TxDecodeCode.UNKNOWN_KIND, f"{tx.kind!r} is not a payment kind")
    if type(tx.sender) is not bytes or len(tx.sender) != PUBLIC_KEY_SIZE:
        raise _fail(TxDecodeCode.BAD_FIELD, "sender must be a 32-byte public key")
    if type(tx.nonce) is not int or not 0 <= tx.nonce <= MAX_TYIYN:
        raise _fail(TxDecodeCode.BAD_FIELD, "nonce must be an unsigned 64-bit integer")
    if type(tx.amount) is not int or not 1 <= tx.amount <= MAX_TYIYN:
        raise _fail(TxDecodeCode.BAD_AMOUNT, "amount must be 1..2^64-1 tyiyn")
    if tx.kind in _KINDS_WITH_RECIPIENT:
        if type(tx.recipient) is not bytes or len(tx.recipient) != PUBLIC_KEY_SIZE:
            raise _fail(TxDecodeCode.BAD_FIELD, "recipient must be a 32-byte public key")
    elif tx.recipient is not None:
        raise _fail(TxDecodeCode.BAD_FIELD, "redeem has no recipient")
    if type(tx.memo) is not str:
        raise _fail(TxDecodeCode.BAD_FIELD, "memo must be text")
    try:
        memo_size = len(tx.memo.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise _fail(TxDecodeCode.BAD_FIELD, "memo is not valid Unicode text") from exc
    if memo_size > MAX_MEMO_BYTES:
        raise _fail(TxDecodeCode.MEMO_TOO_LONG, f"memo is longer than {MAX_MEMO_BYTES} bytes of UTF-8")


def decode_envelope(raw: bytes) -> tuple[list, TxKind]:
    """The decoded array of one transaction of any kind and its kind, version and kind checked
    (node/core/transactions.py dispatches on the kind); raise TxDecodeError otherwise."""
    try:
        fields = unpack_bounded(raw, what="transaction", max_bytes=MAX_TX_BYTES, max_array_len=_MAX_ARRAY_LEN)
    except CodecError as exc:
        raise _fail(TxDecodeCode(exc.code), str(exc)) from exc
    if type(fields) is not list or len(fields) < 3:
        raise _fail(TxDecodeCode.MALFORMED, "a transaction is a msgpack array")
    if fields[0] != TX_VERSION or type(fields[0]) is not int:
        raise _fail(TxDecodeCode.BAD_VERSION, f"unsupported transaction version {fields[0]!r}")
    kind = _KIND_BY_NUMBER.get(fields[1]) if type(fields[1]) is int else None
    if kind is None:
        raise _fail(TxDecodeCode.UNKNOWN_KIND, f"unknown transaction kind {fields[1]!r}")
    return fields, kind


def payment_from_fields(fields: list, kind: TxKind, raw: bytes) -> SignedTransaction:
    """A transfer, issue or redeem from its envelope (``decode_envelope``)."""
    with_recipient = kind in _KINDS_WITH_RECIPIENT
    expected = 8 if with_recipient else 7
    if len(fields) != expected:
        raise _fail(TxDecodeCode.BAD_FIELD_COUNT, f"{kind.name.lower()} has {expected} fields, got {len(fields)}")
    if with_recipient:
        _, _, sender, nonce, recipient, amount, memo, signature = fields
    else:
        _, _, sender, nonce, amount, memo, signature = fields
        recipient = None
    if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
        raise _fail(TxDecodeCode.BAD_SIGNATURE, "signature must be 64 bytes")
    tx = _new_transaction(kind, sender, nonce, amount, recipient, memo)
    _check_fields(tx)
    # The decoded array is the wire order of ``tx.fields() + [signature]``, and
    # version and kind were checked to be the exact ints, so it re-encodes alike.
    if pack(fields) != raw:
        raise _fail(TxDecodeCode.NON_CANONICAL, "the encoding is not canonical")
    return _new_signed(tx, signature, raw, hashlib.sha256(raw).digest())


def _slot_setters(cls: type, *names: str) -> tuple:
    return tuple(getattr(cls, name).__set__ for name in names)


# Constructors for the decoder, which builds two frozen objects per transaction on the
# hot path: a frozen dataclass's __init__ goes through object.__setattr__ field by
# field, and setting the slots through their descriptors costs much less
# (docs/performance.md).  Callers check the fields themselves, as decode_tx does.
_new = object.__new__
_SET_KIND, _SET_SENDER, _SET_NONCE, _SET_AMOUNT, _SET_RECIPIENT, _SET_MEMO = _slot_setters(
    Transaction, "kind", "sender", "nonce", "amount", "recipient", "memo")
_SET_TX, _SET_SIGNATURE, _SET_RAW, _SET_HASH = _slot_setters(SignedTransaction, "tx", "signature", "raw", "hash")


def _new_transaction(kind: TxKind, sender: bytes, nonce: int, amount: int,
                     recipient: bytes | None, memo: str) -> Transaction:
    tx = _new(Transaction)
    _SET_KIND(tx, kind)
    _SET_SENDER(tx, sender)
    _SET_NONCE(tx, nonce)
    _SET_AMOUNT(tx, amount)
    _SET_RECIPIENT(tx, recipient)
    _SET_MEMO(tx, memo)
    return tx


def _new_signed(tx: Transaction, signature: bytes, raw: bytes, tx_hash: bytes) -> SignedTransaction:
    stx = _new(SignedTransaction)
    _SET_TX(stx, tx)
    _SET_SIGNATURE(stx, signature)
    _SET_RAW(stx, raw)
    _SET_HASH(stx, tx_hash)
    return stx
