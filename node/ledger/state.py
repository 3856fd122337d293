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
from node.core.governance import SignedGovernance
from node.core.tx import PUBLIC_KEY_SIZE, SignedTransaction, Transaction, TxKind
from node.ledger.governance import Board, Governance, GovernanceChanges
from node.ledger.receipts import (
    BAD_NONCE,
    BYTE_OF,
    INSUFFICIENT_FUNDS,
    NONCE_KEEPING,
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
    validators: tuple[tuple[bytes, int], ...] = ()
    board: tuple[bytes, ...] = ()
    board_threshold: int = 1
    bank_names: tuple[tuple[bytes, str], ...] = ()  # names of (some of) ``banks``

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
            validators=tuple(sorted((v.public_key, v.power) for v in genesis.validators)),  # type: ignore[attr-defined]
            board=tuple(sorted(m.public_key for m in genesis.board.members)),  # type: ignore[attr-defined]
            board_threshold=genesis.board.threshold,  # type: ignore[attr-defined]
            bank_names=tuple(sorted((b.public_key, b.name) for b in genesis.banks)),  # type: ignore[attr-defined]
        )

    def governance(self) -> Governance:
        """The governance state the chain starts with: the validator set holds from height 1."""
        names = dict(self.bank_names)
        return Governance(
            sequence=0, board=Board(self.board_threshold, tuple(sorted(self.board))), issuer=self.issuer,
            banks=tuple(sorted((key, names.get(key, "")) for key in self.banks)),
            validators=tuple(sorted(self.validators)), validators_from=1,
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
    ``[balance, next nonce]``; ``codes`` holds one receipt code per transaction;
    ``governance`` is what the block's governance transactions did, None when
    it carried none.
    """

    codes: bytearray
    written: dict[bytes, list[int]]
    issued: int
    redeemed: int
    governance: GovernanceChanges | None = None

    @property
    def inapplicable(self) -> bool:
        """Whether a transaction changed nothing at all (a payment's bad nonce, a board action's wrong
        sequence, a self-rotation that failed): the same bytes could ride in every later block, so a
        block that carries one is not valid."""
        return bool(NONCE_KEEPING.intersection(self.codes)) or (
            self.governance is not None and bool(self.governance.void))


def execute(
    txs: Sequence[SignedTransaction | SignedGovernance],
    lookup: AccountLookup,
    governance: Governance,
    height: int,
    issued: int,
    redeemed: int,
) -> Execution:
    """Apply ``txs`` as block ``height`` on top of the state ``lookup`` reads; never writes through it.

    This is the hot path after signature verification, hence the flat loop with
    local names and identity checks on the kind instead of helper calls.
    Governance transactions are rare and leave the loop for node/ledger/governance.py.
    """
    loaded: dict[bytes, list[int]] = {}
    written: dict[bytes, list[int]] = {}
    get = loaded.get
    codes = bytearray(len(txs))  # zero is "ok"
    supply = issued - redeemed
    transfer, issue, redeem, governing = TxKind.TRANSFER, TxKind.ISSUE, TxKind.REDEEM, TxKind.GOVERNANCE
    issuer = governance.issuer
    redeemers = governance.redeemers
    changes: GovernanceChanges | None = None
    refusal_of = authorisation_refusal
    for i, stx in enumerate(txs):
        if stx.tx.kind is governing:
            assert isinstance(stx, SignedGovernance)
            if changes is None:
                changes = GovernanceChanges.starting(governance, height)
            code, accounts = changes.apply(stx, i)
            codes[i] = BYTE_OF[code]
            issuer, redeemers = changes.issuer, changes.redeemers
            for key in accounts:
                if key not in loaded and lookup(key) is None:
                    loaded[key] = written[key] = [0, 0]
            continue
        tx: Transaction = stx.tx  # type: ignore[assignment]  # governance left the loop above
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
    return Execution(codes, written, issued, redeemed, changes)
