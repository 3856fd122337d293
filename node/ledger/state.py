"""The deterministic state transition: ordered transactions in, receipts and state changes out.

Signatures are checked by the caller before anything reaches this module; the
rules here are the business rules only, in this order (docs/ledger.md):

1. The sender must have an account (one exists for every genesis key and for
   every key that ever received som or was registered); otherwise ``unknown_account``.
2. ``tx.nonce`` must equal the account's next nonce; otherwise ``bad_nonce``.
   Both failures change nothing, so the signed bytes stay valid for later.
3. From here on the nonce is consumed, even if the transaction then fails for
   a business reason: a refused payment must not become payable later, when
   funds arrive, by someone replaying the bytes the sender believed dead.
4. Authorisation (node/ledger/rules.py, which the mempool applies too):
   sender and recipient of a transfer differ; only the issuer issues; only a
   bank or the issuer redeems; only a bank registers wallets.
5. A sender frozen for outgoing payments sends nothing (``sender_frozen``).
6. The sender's tier: a payment over its single-payment limit
   (``over_payment_limit``), or taking its outgoing total of the Bishkek day
   over the daily limit (``over_daily_limit``), is refused.  Banks, the
   issuer and institutional accounts have no limits.
7. Transfer and redeem: the sender holds ``amount`` (``insufficient_funds``).
   Issue: the outstanding supply stays within 2^64-1 tyiyn (``overflow``).
8. The recipient of a transfer or issue: frozen for incoming payments
   (``recipient_frozen``); over its tier's holding limit, the excess goes to
   its linked account (the waterfall) if it has one that can take it, or the
   payment is refused (``over_holding_limit``).  An account already above
   its limit (the board lowered it) receives nothing into itself.

Because the outstanding supply never exceeds 2^64-1 and equals the sum of all
balances, no single balance can overflow: only issuance needs the check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from node.core.amount import MAX_TYIYN
from node.core.governance import SignedGovernance
from node.core.registration import Registration
from node.core.tiers import INSTITUTIONAL, Tier, bishkek_day
from node.core.transactions import AnyTransaction
from node.core.tx import Transaction, TxKind
from node.ledger.book import FROZEN_IN, FROZEN_OUT, Book, new_account
from node.ledger.genesis_state import GenesisState
from node.ledger.governance import Governance, GovernanceChanges
from node.ledger.receipts import (
    BAD_NONCE,
    BYTE_OF,
    INSUFFICIENT_FUNDS,
    NONCE_KEEPING,
    OVER_DAILY_LIMIT,
    OVER_HOLDING_LIMIT,
    OVER_PAYMENT_LIMIT,
    OVERFLOW,
    RECIPIENT_FROZEN,
    SENDER_FROZEN,
    UNKNOWN_ACCOUNT,
    ReceiptCode,
)
from node.ledger.rules import authorisation_refusal

__all__ = ["Execution", "GenesisState", "Waterfall", "execute"]


# The stored nonce is u64, so the last usable nonce is one below its maximum.
LAST_NONCE = MAX_TYIYN - 1


@dataclass(frozen=True, slots=True)
class Waterfall:
    """A payment that took its recipient to its holding limit: what the recipient got, what went on
    to its linked account, and which account that is."""

    credited: int
    passed_on: int
    linked: bytes


@dataclass(frozen=True, slots=True)
class Execution:
    """The result of executing one block against a state.

    ``book`` holds every account and registration the block changed
    (``book.written``, ``book.registrations``); ``codes`` one receipt code per
    transaction; ``waterfalls`` what the payments that overflowed their
    recipient's limit did, by index; ``governance`` what the block's
    governance transactions did, None when it carried none.
    """

    codes: bytearray
    book: Book
    issued: int
    redeemed: int
    waterfalls: dict[int, Waterfall]
    governance: GovernanceChanges | None = None

    @property
    def written(self) -> dict[bytes, list[int]]:
        return self.book.written

    @property
    def inapplicable(self) -> bool:
        """Whether a transaction changed nothing at all (a payment's bad nonce, a board action's wrong
        sequence, a self-rotation that failed): the same bytes could ride in every later block, so a
        block that carries one is not valid."""
        return bool(NONCE_KEEPING.intersection(self.codes)) or (
            self.governance is not None and bool(self.governance.void))


def execute(
    txs: Sequence[AnyTransaction],
    book: Book,
    governance: Governance,
    height: int,
    time_ms: int,
    issued: int,
    redeemed: int,
) -> Execution:
    """Apply ``txs`` as block ``height``, made at ``time_ms``, on top of the state ``book`` reads.

    This is the hot path after signature verification, hence the flat loop with
    local names and identity checks on the kind instead of helper calls.
    Governance transactions and registrations are rare and leave the loop for
    node/ledger/governance.py and ``_register``.
    """
    loaded, written = book.loaded, book.written
    get = loaded.get
    load = book.load
    codes = bytearray(len(txs))  # zero is "ok"
    waterfalls: dict[int, Waterfall] = {}
    supply = issued - redeemed
    transfer, issue, redeem, register, governing = (TxKind.TRANSFER, TxKind.ISSUE, TxKind.REDEEM, TxKind.REGISTER,
                                                    TxKind.GOVERNANCE)
    issuer = governance.issuer
    redeemers = governance.redeemers
    limits = _limits(governance.tiers)
    today = bishkek_day(time_ms)
    changes: GovernanceChanges | None = None
    refusal_of = authorisation_refusal
    for i, stx in enumerate(txs):
        kind = stx.tx.kind
        if kind is governing:
            assert isinstance(stx, SignedGovernance)
            if changes is None:
                changes = GovernanceChanges.starting(governance, height)
            codes[i] = BYTE_OF[changes.apply(stx, i, book)]
            issuer, redeemers, limits = changes.issuer, changes.redeemers, _limits(changes.tiers.values())
            continue
        tx: Transaction = stx.tx  # type: ignore[assignment]  # registrations share the fields used here
        sender = tx.sender
        account = get(sender)
        if account is None:
            account = load(sender)
            if account is None:
                codes[i] = UNKNOWN_ACCOUNT
                continue
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
        if account[3] & FROZEN_OUT:
            codes[i] = SENDER_FROZEN
            continue
        if kind is register:
            codes[i] = BYTE_OF[_register(stx.tx, book, limits)]  # type: ignore[arg-type]
            continue
        amount = tx.amount
        capped = account[2] != INSTITUTIONAL and sender not in redeemers
        if capped:
            _, max_payment, max_daily_out = limits[account[2]]
            if amount > max_payment:
                codes[i] = OVER_PAYMENT_LIMIT
                continue
            if account[4] != today:
                account[4], account[5] = today, 0
            if account[5] + amount > max_daily_out:
                codes[i] = OVER_DAILY_LIMIT
                continue
        if kind is redeem:
            if account[0] < amount:
                codes[i] = INSUFFICIENT_FUNDS
                continue
            account[0] -= amount
            supply -= amount
            redeemed += amount
            continue
        if kind is transfer and account[0] < amount:
            codes[i] = INSUFFICIENT_FUNDS
            continue
        if kind is issue and supply + amount > MAX_TYIYN:
            codes[i] = OVERFLOW
            continue
        recipient = tx.recipient
        assert recipient is not None, "transfers and issues have a recipient (decode_tx checked it)"
        target = get(recipient)
        if target is None:
            # A key the state has never held opens its account only if the payment applies:
            # a refused payment leaves no account behind for later transactions to find.
            target = load(recipient) or new_account()
        if target[3] & FROZEN_IN:
            codes[i] = RECIPIENT_FROZEN
            continue
        credited = amount
        if target[2] != INSTITUTIONAL and recipient not in redeemers:
            room = limits[target[2]][0] - target[0]
            if amount > room:
                waterfall = _waterfall(book, recipient, max(room, 0), amount, limits, redeemers)
                if waterfall is None:
                    codes[i] = OVER_HOLDING_LIMIT
                    continue
                waterfalls[i] = waterfall
                credited = waterfall.credited
        if kind is transfer:
            account[0] -= amount
        else:
            supply += amount
            issued += amount
        if capped:
            account[5] += amount
        target[0] += credited
        loaded[recipient] = written[recipient] = target
    if not 0 <= supply <= MAX_TYIYN or supply != issued - redeemed:
        raise AssertionError(f"supply invariant broken: supply={supply} issued={issued} redeemed={redeemed}")
    return Execution(codes, book, issued, redeemed, waterfalls, changes)


def _limits(tiers: Iterable[Tier]) -> dict[int, tuple[int, int, int]]:
    """Each tier's (max_balance, max_payment, max_daily_out), for the loop to index."""
    return {tier.id: (tier.max_balance, tier.max_payment, tier.max_daily_out) for tier in tiers}


def _waterfall(book: Book, recipient: bytes, room: int, amount: int, limits: dict[int, tuple[int, int, int]],
               redeemers: frozenset[bytes]) -> Waterfall | None:
    """Credit the recipient up to its limit and pass the rest to its linked account, if it has one
    that is not frozen for incoming payments and can hold the rest; None otherwise."""
    registration = book.registration(recipient)
    if registration is None or not registration[1]:
        return None
    linked = registration[1]
    passed_on = amount - room
    target = book.account(linked) or new_account()
    if target[3] & FROZEN_IN:
        return None
    if target[2] != INSTITUTIONAL and linked not in redeemers and target[0] + passed_on > limits[target[2]][0]:
        return None
    target[0] += passed_on
    book.loaded[linked] = book.written[linked] = target
    return Waterfall(room, passed_on, linked)


def _register(registration: Registration, book: Book, limits: dict[int, tuple[int, int, int]]) -> ReceiptCode:
    """A bank puts a wallet in a tier, with or without a linked account (its nonce already consumed)."""
    current = book.registration(registration.wallet)
    if current is not None and current[0] != registration.sender:
        return ReceiptCode.NOT_REGISTERING_BANK
    wallet = book.account(registration.wallet)
    if wallet is not None and wallet[2] == INSTITUTIONAL:
        return ReceiptCode.NOT_REGISTERING_BANK  # the board's designation: the board's to change
    if registration.tier not in limits:
        return ReceiptCode.UNKNOWN_TIER
    book.opened(registration.wallet)[2] = registration.tier
    book.register(registration.wallet, registration.sender, registration.linked)
    return ReceiptCode.OK
