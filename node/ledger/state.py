"""The deterministic state transition: ordered transactions in, receipts and state changes out.

Signatures are checked by the caller before anything reaches this module; the
rules here are the business rules only, in this order:

1. The sender must have an account (one exists for every genesis key and for
   every key that ever received som); otherwise ``unknown_account``.
2. ``tx.nonce`` must equal the account's next nonce; otherwise ``bad_nonce``.
   Both failures change nothing, so the signed bytes stay valid for later.
3. From here on the nonce is consumed, even if the transaction then fails for
   a business reason (``self_transfer``, ``unauthorised``, ``insufficient_funds``,
   ``overflow``): a refused payment must not become payable later, when funds
   arrive, by someone replaying the bytes the sender believed dead.
4. Authorisation (node/ledger/rules.py, which the mempool applies too):
   sender and recipient of a transfer differ; only the issuer issues; only
   a bank or the issuer redeems.
5. Transfer: the sender holds ``amount``.  Issue: the outstanding supply stays
   within 2^64-1 tyiyn.  Redeem: the sender holds ``amount``.

Because the outstanding supply never exceeds 2^64-1 and equals the sum of all
balances, no single balance can overflow: only issuance needs the check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from node.core.amount import MAX_TYIYN
from node.core.tx import PUBLIC_KEY_SIZE, SignedTransaction, TxKind
from node.ledger.receipts import (
    BAD_NONCE,
    BYTE_OF,
    INSUFFICIENT_FUNDS,
    OVERFLOW,
    UNKNOWN_ACCOUNT,
)
from node.ledger.rules import authorisation_refusal

# The stored nonce is u64, so the last usable nonce is one below its maximum.
LAST_NONCE = MAX_TYIYN - 1

AccountLookup = Callable[[bytes], "tuple[int, int] | None"]


@dataclass(frozen=True, slots=True)
class GenesisState:
    """What the ledger needs from genesis; ``Genesis`` fields map onto it one to one."""

    chain_id: str
    genesis_hash: bytes
    issuer: bytes
    banks: frozenset[bytes]
    balances: tuple[tuple[bytes, int], ...]

    def __post_init__(self) -> None:
        if not self.chain_id:
            raise ValueError("genesis chain id is empty")
        if len(self.genesis_hash) != 32:
            raise ValueError("genesis hash must be 32 bytes")
        for key in (self.issuer, *self.banks):
            if type(key) is not bytes or len(key) != PUBLIC_KEY_SIZE:
                raise ValueError("issuer and bank keys must be 32-byte public keys")
        seen: set[bytes] = set()
        for key, amount in self.balances:
            if type(key) is not bytes or len(key) != PUBLIC_KEY_SIZE:
                raise ValueError("genesis balance keys must be 32-byte public keys")
            if key in seen:
                raise ValueError(f"genesis lists the balance of {key.hex()} twice")
            seen.add(key)
            if type(amount) is not int or not 0 <= amount <= MAX_TYIYN:
                raise ValueError(f"genesis balance of {key.hex()} is outside 0..2^64-1 tyiyn")
        if self.supply > MAX_TYIYN:
            raise ValueError("genesis balances add up to more than 2^64-1 tyiyn")

    @classmethod
    def from_genesis(cls, genesis: object) -> GenesisState:
        """Adapt ``node.core.genesis.Genesis`` without importing it here."""
        return cls(
            chain_id=genesis.chain_id,  # type: ignore[attr-defined]
            genesis_hash=genesis.hash(),  # type: ignore[attr-defined]
            issuer=genesis.issuer,  # type: ignore[attr-defined]
            banks=frozenset(bank.public_key for bank in genesis.banks),  # type: ignore[attr-defined]
            balances=tuple(genesis.balances),  # type: ignore[attr-defined]
        )

    @property
    def supply(self) -> int:
        return sum(amount for _, amount in self.balances)

    def accounts(self) -> dict[bytes, tuple[int, int]]:
        """Every genesis account: the listed balances plus empty accounts for the issuer and banks."""
        accounts = dict.fromkeys((self.issuer, *self.banks), (0, 0))
        accounts.update((key, (amount, 0)) for key, amount in self.balances)
        return accounts


@dataclass(frozen=True, slots=True)
class Execution:
    """The result of executing one block against a state.

    ``written`` maps each account whose record changed to its final
    ``[balance, next nonce]``; ``codes`` holds one receipt code per transaction.
    """

    codes: bytearray
    written: dict[bytes, list[int]]
    issued: int
    redeemed: int


def execute(
    txs: Sequence[SignedTransaction],
    lookup: AccountLookup,
    issuer: bytes,
    banks: frozenset[bytes],
    issued: int,
    redeemed: int,
) -> Execution:
    """Apply ``txs`` in order on top of the state ``lookup`` reads; never writes through it.

    This is the hot path after signature verification, hence the flat loop with
    local names and identity checks on the kind instead of helper calls.
    """
    loaded: dict[bytes, list[int]] = {}
    written: dict[bytes, list[int]] = {}
    get = loaded.get
    codes = bytearray(len(txs))  # zero is "ok"
    supply = issued - redeemed
    transfer, issue, redeem = TxKind.TRANSFER, TxKind.ISSUE, TxKind.REDEEM
    redeemers = banks | {issuer}
    refusal_of = authorisation_refusal
    for i, stx in enumerate(txs):
        tx = stx.tx
        sender = tx.sender
        account = get(sender)
        if account is None:
            stored = lookup(sender)
            if stored is None:
                codes[i] = UNKNOWN_ACCOUNT
                continue
            account = loaded[sender] = [stored[0], stored[1]]
        nonce = tx.nonce
        if nonce != account[1] or nonce > LAST_NONCE:
            codes[i] = BAD_NONCE
            continue
        account[1] = nonce + 1
        written[sender] = account
        refusal = refusal_of(tx, issuer, redeemers)
        if refusal is not None:
            codes[i] = BYTE_OF[refusal]
            continue
        kind = tx.kind
        amount = tx.amount
        if kind is transfer:
            recipient = tx.recipient
            assert recipient is not None, "a transfer has a recipient (decode_tx checked it)"
            if account[0] < amount:
                codes[i] = INSUFFICIENT_FUNDS
                continue
            target = get(recipient)
            if target is None:
                stored = lookup(recipient)
                target = loaded[recipient] = [0, 0] if stored is None else [stored[0], stored[1]]
            account[0] -= amount
            target[0] += amount
            written[recipient] = target
        elif kind is issue:
            if supply + amount > MAX_TYIYN:
                codes[i] = OVERFLOW
                continue
            recipient = tx.recipient
            assert recipient is not None, "an issue has a recipient (decode_tx checked it)"
            target = get(recipient)
            if target is None:
                stored = lookup(recipient)
                target = loaded[recipient] = [0, 0] if stored is None else [stored[0], stored[1]]
            target[0] += amount
            written[recipient] = target
            supply += amount
            issued += amount
        elif kind is redeem:
            if account[0] < amount:
                codes[i] = INSUFFICIENT_FUNDS
                continue
            account[0] -= amount
            supply -= amount
            redeemed += amount
        else:
            raise ValueError(f"transaction kind {kind!r} has no ledger rule")
    if not 0 <= supply <= MAX_TYIYN or supply != issued - redeemed:
        raise AssertionError(f"supply invariant broken: supply={supply} issued={issued} redeemed={redeemed}")
    return Execution(codes, written, issued, redeemed)
