"""What admission answers for each offered transaction: accepted, or why not, with a stable code."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from node.core.tx import TxDecodeCode
from node.ledger.receipts import ReceiptCode


class AdmitCode(StrEnum):
    """Admission's own answers; refusals the ledger would give come as its ``ReceiptCode``."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    MEMPOOL_FULL = "mempool_full"
    INVALID_SIGNATURE = "invalid_signature"
    STALE_NONCE = "stale_nonce"
    NONCE_GAP = "nonce_gap"
    TOO_MANY_PENDING = "too_many_pending"


class AdmitResult(NamedTuple):
    """The outcome of offering one transaction; ``duplicate`` counts as accepted (idempotent resubmission).

    A named tuple, not a dataclass: one is made per submitted transaction, and
    a tuple is cheaper to build.
    """

    tx_hash: bytes | None
    accepted: bool
    code: AdmitCode | ReceiptCode | TxDecodeCode
    message: str
