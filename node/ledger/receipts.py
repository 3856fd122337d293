"""Receipt codes and the stored forms of receipts and the transaction index.

Codes are stable strings in the API and one byte on disk.  The byte is the
code's position in ``ReceiptCode``'s definition: members are only ever
appended, because a reordering would silently change the meaning of every
stored receipt.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class ReceiptCode(StrEnum):
    """How a committed transaction ended (docs/ledger.md says when each applies)."""

    OK = "ok"
    BAD_NONCE = "bad_nonce"
    UNKNOWN_ACCOUNT = "unknown_account"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    UNAUTHORISED = "unauthorised"
    OVERFLOW = "overflow"
    SELF_TRANSFER = "self_transfer"
    # Governance (node/ledger/governance.py).
    EXPIRED = "expired"
    BAD_SEQUENCE = "bad_sequence"
    NOT_BOARD_SIGNER = "not_board_signer"
    TOO_FEW_SIGNATURES = "too_few_signatures"
    UNKNOWN_VALIDATOR = "unknown_validator"
    UNKNOWN_BANK = "unknown_bank"
    BANK_EXISTS = "bank_exists"
    KEY_IN_USE = "key_in_use"
    EMPTY_VALIDATOR_SET = "empty_validator_set"
    POWER_CHANGE_TOO_LARGE = "power_change_too_large"
    # The digital som's rules (node/ledger/state.py).
    OVER_PAYMENT_LIMIT = "over_payment_limit"
    OVER_DAILY_LIMIT = "over_daily_limit"
    OVER_HOLDING_LIMIT = "over_holding_limit"
    SENDER_FROZEN = "sender_frozen"
    RECIPIENT_FROZEN = "recipient_frozen"
    NOT_REGISTERING_BANK = "not_registering_bank"
    UNKNOWN_TIER = "unknown_tier"
    # observers (docs/protocol.md §13.3)
    UNKNOWN_OBSERVER = "unknown_observer"
    OBSERVER_EXISTS = "observer_exists"
    TOO_MANY_OBSERVERS = "too_many_observers"


RECEIPT_CODES: tuple[ReceiptCode, ...] = tuple(ReceiptCode)
# The bytes on disk, as plain ints for the ledger's execution loop.
OK, BAD_NONCE, UNKNOWN_ACCOUNT, INSUFFICIENT_FUNDS, UNAUTHORISED, OVERFLOW, SELF_TRANSFER = range(7)
BYTE_OF: dict[ReceiptCode, int] = {code: index for index, code in enumerate(RECEIPT_CODES)}
OVER_PAYMENT_LIMIT, OVER_DAILY_LIMIT, OVER_HOLDING_LIMIT, SENDER_FROZEN, RECIPIENT_FROZEN = (
    BYTE_OF[code] for code in (ReceiptCode.OVER_PAYMENT_LIMIT, ReceiptCode.OVER_DAILY_LIMIT,
                               ReceiptCode.OVER_HOLDING_LIMIT, ReceiptCode.SENDER_FROZEN,
                               ReceiptCode.RECIPIENT_FROZEN))
# Outcomes that change nothing at all (a payment's nonce or the board's sequence is not
# consumed), so the same signed bytes may still be applied by a later block, and a block
# that carries them is not valid.
NONCE_KEEPING = frozenset({BAD_NONCE, UNKNOWN_ACCOUNT} | {BYTE_OF[code] for code in (
    ReceiptCode.EXPIRED, ReceiptCode.BAD_SEQUENCE, ReceiptCode.NOT_BOARD_SIGNER, ReceiptCode.TOO_FEW_SIGNATURES)})

_HASH_SIZE = 32
_RECEIPT_SIZE = _HASH_SIZE + 1
LOCATION = struct.Struct(">QIB")
_WATERFALL = struct.Struct(">QQ")


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of the transaction at ``index`` in its block."""

    index: int
    tx_hash: bytes
    code: ReceiptCode


@dataclass(frozen=True, slots=True)
class TxLocation:
    """Where a committed transaction sits and how it ended; for a payment that took its recipient
    to its holding limit, ``waterfall`` is (credited, passed on, linked account)."""

    height: int
    index: int
    code: ReceiptCode
    waterfall: tuple[int, int, bytes] | None = None


def encode_receipts(tx_hashes: Sequence[bytes], codes: bytes | bytearray) -> bytes:
    """A block's receipts on disk: ``tx_hash || code byte`` per transaction, in block order."""
    assert len(tx_hashes) == len(codes), "one code per transaction"
    return b"".join([h + codes[i : i + 1] for i, h in enumerate(tx_hashes)])


def count_receipts(raw: bytes) -> int:
    """How many transactions a block's receipt record covers, without decoding it."""
    if len(raw) % _RECEIPT_SIZE:
        raise ValueError(f"receipt record of {len(raw)} bytes is not a multiple of {_RECEIPT_SIZE}")
    return len(raw) // _RECEIPT_SIZE


def decode_receipts(raw: bytes) -> tuple[Receipt, ...]:
    if len(raw) % _RECEIPT_SIZE:
        raise ValueError(f"receipt record of {len(raw)} bytes is not a multiple of {_RECEIPT_SIZE}")
    return tuple(
        Receipt(i, raw[off : off + _HASH_SIZE], _code_name(raw[off + _HASH_SIZE]))
        for i, off in enumerate(range(0, len(raw), _RECEIPT_SIZE))
    )


def encode_waterfall(credited: int, passed_on: int, linked: bytes) -> bytes:
    """What follows a transaction's location in the index when its payment overflowed."""
    return _WATERFALL.pack(credited, passed_on) + linked


def decode_location(raw: bytes) -> TxLocation:
    height, index, code = LOCATION.unpack_from(raw)
    rest = raw[LOCATION.size:]
    if not rest:
        return TxLocation(height, index, _code_name(code))
    if len(rest) != _WATERFALL.size + _HASH_SIZE:
        raise ValueError(f"a transaction index record of {len(raw)} bytes")
    credited, passed_on = _WATERFALL.unpack_from(rest)
    return TxLocation(height, index, _code_name(code), (credited, passed_on, rest[_WATERFALL.size:]))


def _code_name(code: int) -> ReceiptCode:
    if code >= len(RECEIPT_CODES):
        raise ValueError(f"unknown receipt code byte {code}")
    return RECEIPT_CODES[code]
