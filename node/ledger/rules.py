"""Who may do what with som: the authorisation rules the ledger applies and the mempool checks.

The ledger applies them to every committed transaction (after the nonce, so a
refused transaction still consumes it: docs/ledger.md); the mempool applies
the very same function at admission, so a client learns at once, with the
ledger's own code, what a block would refuse.
"""

from __future__ import annotations

from node.core.registration import Registration
from node.core.tx import Transaction, TxKind
from node.ledger.receipts import ReceiptCode

# Enum members as module constants: a descriptor lookup on every transaction otherwise.
_TRANSFER, _ISSUE, _REDEEM, _REGISTER = TxKind.TRANSFER, TxKind.ISSUE, TxKind.REDEEM, TxKind.REGISTER


def authorisation_refusal(tx: Transaction | Registration, issuer: bytes,
                          redeemers: frozenset[bytes]) -> ReceiptCode | None:
    """Why ``tx`` may not be done by its sender, or None when it may.

    Only the issuer creates som; only a bank or the issuer destroys som it
    holds (``redeemers``); nobody pays themselves; only a bank registers wallets.
    """
    kind = tx.kind
    if kind is _TRANSFER:
        return ReceiptCode.SELF_TRANSFER if tx.recipient == tx.sender else None
    if kind is _ISSUE:
        return None if tx.sender == issuer else ReceiptCode.UNAUTHORISED
    if kind is _REDEEM:
        return None if tx.sender in redeemers else ReceiptCode.UNAUTHORISED
    if kind is _REGISTER:
        return None if tx.sender in redeemers and tx.sender != issuer else ReceiptCode.UNAUTHORISED
    raise ValueError(f"transaction kind {kind!r} has no authorisation rule")
