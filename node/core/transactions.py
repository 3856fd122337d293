"""Any transaction a block may carry, and the one decoder for all of them.

Payments (node/core/tx.py), the board's governance transactions
(node/core/governance.py) and banks' wallet registrations
(node/core/registration.py) share the envelope ``[version, kind, ...]``; this
module reads the envelope and hands the fields to the kind's own decoder.
"""

from __future__ import annotations

from node.core.governance import SignedGovernance
from node.core.governance import decode_fields as _governance
from node.core.registration import SignedRegistration
from node.core.registration import decode_fields as _registration
from node.core.tx import (
    SignedTransaction,
    TxDecodeCode,
    TxDecodeError,
    TxKind,
    decode_envelope,
    payment_from_fields,
)

AnyTransaction = SignedTransaction | SignedGovernance | SignedRegistration

_GOVERNANCE, _REGISTER = TxKind.GOVERNANCE, TxKind.REGISTER


def decode_tx(raw: bytes) -> AnyTransaction:
    """Parse one canonical signed transaction of any kind; raise TxDecodeError otherwise."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TxDecodeError(TxDecodeCode.MALFORMED, "a transaction is bytes")
    raw = bytes(raw)
    fields, kind = decode_envelope(raw)
    if kind is _GOVERNANCE:
        return _governance(fields, raw)
    if kind is _REGISTER:
        return _registration(fields, raw)
    return payment_from_fields(fields, kind, raw)
