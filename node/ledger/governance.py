"""The board's actions on the ledger: who governs, who issues, who banks, and who validates when.

The governance state is application state like the accounts: it is in the app
hash and changes only through committed governance transactions
(node/core/governance.py).  A block's governance transactions are applied in
order, each on the state the previous one left.

A **board action** is checked in this order:

1. It has not expired (its expiry height is at least the block's height):
   otherwise ``expired``.
2. Its sequence is the board's next: otherwise ``bad_sequence``.
3. Every approval comes from a board member (``not_board_signer``) and there
   are at least the board's threshold of them (``too_few_signatures``).
   None of these three changes anything, so such a transaction may not be in
   a block at all (as a payment with a bad nonce), and its signed bytes stay
   usable until they expire.
4. From here the sequence is consumed, even if the action then fails
   (``unknown_validator``, ``unknown_bank``, ``bank_exists``, ``key_in_use``,
   ``empty_validator_set``, ``power_change_too_large``): an approved action
   refused once must not succeed later by replay.

A **self-rotation** (a key rotation approved by exactly its old key) is the
validator's own act and never touches the board's sequence, so no validator
can use it to crowd out the board's actions: it carries sequence 0 and either
applies or changes nothing, and a block that carries one that changes nothing
is not valid.  Its replay protection is retirement: a key rotated away is
retired for good, so the same bytes can never apply twice, and a board
action that names a retired key acts on the key that replaced it (so a
validator cannot slip away from its removal by rotating first).

Validator-set changes committed in block H take effect at height H+2, as in
CometBFT: when H commits, H+1 is already being decided by the set fixed
before.  The validator schedule records each set with the height from which
it holds.  All the changes one block makes are compared with the set in
effect at H+1, and together they may move less than a third of its power
(the larger of the power added and the power removed), so any two
consecutive sets share more than two thirds of the power: a light client
can follow the set from the genesis.  The set never becomes empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node.core.actions import (
    Action,
    AddBank,
    AddObserver,
    DefineTier,
    Freeze,
    Order,
    RemoveBank,
    RemoveObserver,
    ReplaceIssuer,
    RotateValidatorKey,
    Seize,
    SetBoard,
    SetValidator,
    SetWallet,
    Unfreeze,
)
from node.core.genesis import MAX_OBSERVERS, MAX_TOTAL_POWER
from node.core.governance import SignedGovernance
from node.core.tiers import INSTITUTIONAL, Tier
from node.ledger.book import BALANCE, FLAGS, TIER, Book
from node.ledger.receipts import ReceiptCode

ValidatorPowers = tuple[tuple[bytes, int], ...]  # sorted by key


@dataclass(frozen=True, slots=True)
class Board:
    threshold: int
    members: tuple[bytes, ...]  # sorted


@dataclass(frozen=True, slots=True)
class Governance:
    """The governance state after a block (or the genesis)."""

    sequence: int  # the next board action's sequence
    board: Board
    issuer: bytes
    banks: tuple[tuple[bytes, str], ...]  # (key, name), sorted by key
    validators: ValidatorPowers  # the latest set the schedule holds
    validators_from: int  # the height from which ``validators`` holds
    retired: tuple[tuple[bytes, bytes], ...] = ()  # (rotated-away key, the key that replaced it), sorted
    tiers: tuple[Tier, ...] = ()  # sorted by id
    observers: tuple[tuple[bytes, str], ...] = ()  # (key, name), sorted by key: nodes validators let follow

    @property
    def redeemers(self) -> frozenset[bytes]:
        """Who may destroy som it holds: the banks and the issuer."""
        return frozenset(key for key, _ in self.banks) | {self.issuer}


@dataclass(frozen=True, slots=True)
class Applied:
    """A governance transaction that a block applied (the history records it): its place and outcome."""

    index: int
    code: ReceiptCode
    raw: bytes


def is_self_rotation(stx: SignedGovernance) -> bool:
    action = stx.tx.action
    return isinstance(action, RotateValidatorKey) and stx.signers == (action.old_key,)


@dataclass(slots=True)
class GovernanceChanges:
    """What a block's governance transactions changed, built up transaction by transaction."""

    height: int
    base: Governance
    sequence: int
    board: Board
    issuer: bytes
    banks: dict[bytes, str]
    validators: dict[bytes, int]  # the set from height + 2, while changes accumulate
    retired: dict[bytes, bytes]
    tiers: dict[int, Tier]
    observers: dict[bytes, str]
    applied: list[Applied] = field(default_factory=list)
    void: list[int] = field(default_factory=list)  # self-rotations that changed nothing: the block is not valid
    orders: list[tuple[bytes, int, Order]] = field(default_factory=list)  # (account, index, order) applied

    @classmethod
    def starting(cls, base: Governance, height: int) -> GovernanceChanges:
        assert base.validators_from <= height + 1, "the set for the next height is fixed before this block"
        return cls(height, base, base.sequence, base.board, base.issuer, dict(base.banks), dict(base.validators),
                   dict(base.retired), {tier.id: tier for tier in base.tiers}, dict(base.observers))

    def copy(self) -> GovernanceChanges:
        """An independent copy, to try a transaction on without committing to its effects."""
        return GovernanceChanges(self.height, self.base, self.sequence, self.board, self.issuer, dict(self.banks),
                                 dict(self.validators), dict(self.retired), dict(self.tiers), dict(self.observers),
                                 list(self.applied),
                                 list(self.void), list(self.orders))

    def result(self) -> Governance:
        validators = tuple(sorted(self.validators.items()))
        changed_set = validators != self.base.validators
        return Governance(
            sequence=self.sequence, board=self.board, issuer=self.issuer, banks=tuple(sorted(self.banks.items())),
            validators=validators,
            validators_from=self.height + 2 if changed_set else self.base.validators_from,
            retired=tuple(sorted(self.retired.items())),
            tiers=tuple(tier for _, tier in sorted(self.tiers.items())),
            observers=tuple(sorted(self.observers.items())),
        )

    @property
    def redeemers(self) -> frozenset[bytes]:
        return frozenset(self.banks) | {self.issuer}

    def apply(self, stx: SignedGovernance, index: int, book: Book | None = None) -> ReceiptCode:
        """Apply one governance transaction (its signatures verified by the caller).  ``book`` holds the
        block's accounts, which bank admissions, wallet registrations and legal orders change; without
        one (admission's dry run) those actions are judged on the board's state alone."""
        tx = stx.tx
        if tx.expiry_height < self.height:
            return ReceiptCode.EXPIRED
        if is_self_rotation(stx):
            code = self._self_rotation(stx)
            if code is ReceiptCode.OK:
                self.applied.append(Applied(index, code, stx.raw))
            else:
                self.void.append(index)
            return code
        if tx.sequence != self.sequence:
            return ReceiptCode.BAD_SEQUENCE
        if any(signer not in self.board.members for signer in stx.signers):
            return ReceiptCode.NOT_BOARD_SIGNER
        if len(stx.signers) < self.board.threshold:
            return ReceiptCode.TOO_FEW_SIGNATURES
        self.sequence += 1
        code = self._act(stx.tx.action, index, book)
        self.applied.append(Applied(index, code, stx.raw))
        return code

    def _self_rotation(self, stx: SignedGovernance) -> ReceiptCode:
        action = stx.tx.action
        assert isinstance(action, RotateValidatorKey)
        if stx.tx.sequence != 0:
            return ReceiptCode.BAD_SEQUENCE
        # The key must hold at H+1 and still hold from H+2: one rotation of a seat at a time.
        if action.old_key not in self.validators or action.old_key not in dict(self.base.validators):
            return ReceiptCode.UNKNOWN_VALIDATOR
        return self._rotate(action.old_key, action.new_key)

    def _act(self, action: Action, index: int, book: Book | None) -> ReceiptCode:
        if isinstance(action, AddBank):
            if action.bank in self.banks or action.name in self.banks.values():
                return ReceiptCode.BANK_EXISTS
            if action.bank == self.issuer:
                return ReceiptCode.KEY_IN_USE
            self.banks[action.bank] = action.name
            if book is not None:
                book.opened(action.bank)
            return ReceiptCode.OK
        if isinstance(action, RemoveBank):
            if self.banks.pop(action.bank, None) is None:
                return ReceiptCode.UNKNOWN_BANK
            return ReceiptCode.OK
        if isinstance(action, SetValidator):
            if action.validator in self.observers:
                return ReceiptCode.KEY_IN_USE
            seat = self._seat(action.validator)
            powers = dict(self.validators)
            if action.power:
                powers[seat] = action.power
            elif powers.pop(seat, None) is None:
                return ReceiptCode.UNKNOWN_VALIDATOR
            return self._change_set(powers)
        if isinstance(action, RotateValidatorKey):
            seat = self._seat(action.old_key)
            if seat not in self.validators:
                return ReceiptCode.UNKNOWN_VALIDATOR
            return self._rotate(seat, action.new_key)
        if isinstance(action, ReplaceIssuer):
            if action.issuer in self.banks:
                return ReceiptCode.KEY_IN_USE
            self.issuer = action.issuer
            if book is not None:
                book.opened(action.issuer)
            return ReceiptCode.OK
        if isinstance(action, SetBoard):
            self.board = Board(action.threshold, action.members)
            return ReceiptCode.OK
        if isinstance(action, DefineTier):
            self.tiers[action.tier.id] = action.tier
            return ReceiptCode.OK
        if isinstance(action, SetWallet):
            if action.tier != INSTITUTIONAL and action.tier not in self.tiers:
                return ReceiptCode.UNKNOWN_TIER
            if book is not None:
                current = book.registration(action.wallet)
                book.opened(action.wallet)[TIER] = action.tier
                book.register(action.wallet, b"" if current is None else current[0], action.linked)
            return ReceiptCode.OK
        if isinstance(action, Freeze | Unfreeze | Seize):
            return self._order(action, index, book)
        if isinstance(action, AddObserver):
            return self._add_observer(action)
        if isinstance(action, RemoveObserver):
            if self.observers.pop(action.observer, None) is None:
                return ReceiptCode.UNKNOWN_OBSERVER
            return ReceiptCode.OK
        raise TypeError(f"no ledger rule for governance action {action!r}")

    def _order(self, order: Order, index: int, book: Book | None) -> ReceiptCode:
        """A legal order on an account: it acts whatever the account's own state (frozen or not, over
        its limits or not); a seizure takes no more than the account holds."""
        if book is None:
            return ReceiptCode.OK
        account = book.opened(order.account)
        if isinstance(order, Freeze):
            account[FLAGS] |= int(order.scope)
        elif isinstance(order, Unfreeze):
            account[FLAGS] &= ~int(order.scope)
        else:
            if account[BALANCE] < order.amount:
                return ReceiptCode.INSUFFICIENT_FUNDS
            account[BALANCE] -= order.amount
            book.opened(order.destination)[BALANCE] += order.amount
        self.orders.append((order.account, index, order))
        return ReceiptCode.OK

    def _add_observer(self, action: AddObserver) -> ReceiptCode:
        """One role per key: a validator key (of either set a block may decide, or retired) never observes,
        so that admission never has to choose which of two roles a link has."""
        key = action.observer
        if key in self.observers or action.name in self.observers.values():
            return ReceiptCode.OBSERVER_EXISTS
        if self._validator_key(key):
            return ReceiptCode.KEY_IN_USE
        if len(self.observers) >= MAX_OBSERVERS:
            return ReceiptCode.TOO_MANY_OBSERVERS
        self.observers[key] = action.name
        return ReceiptCode.OK

    def _validator_key(self, key: bytes) -> bool:
        return (key in self.validators or key in dict(self.base.validators) or key in self.retired
                or key in self.retired.values())

    def _seat(self, key: bytes) -> bytes:
        """The key that now holds the seat ``key`` once held: a rotated-away key names its successor."""
        while key in self.retired:
            key = self.retired[key]
        return key

    def _rotate(self, old_key: bytes, new_key: bytes) -> ReceiptCode:
        if self._validator_key(new_key) or new_key in self.observers:
            return ReceiptCode.KEY_IN_USE
        powers = dict(self.validators)
        powers[new_key] = powers.pop(old_key)
        code = self._change_set(powers)
        if code is ReceiptCode.OK:
            self.retired[old_key] = new_key
        return code

    def _change_set(self, powers: dict[bytes, int]) -> ReceiptCode:
        """Accept ``powers`` as the set from height + 2 if it keeps the schedule followable."""
        if not powers:
            return ReceiptCode.EMPTY_VALIDATOR_SET
        if sum(powers.values()) > MAX_TOTAL_POWER:
            return ReceiptCode.POWER_CHANGE_TOO_LARGE
        base = dict(self.base.validators)
        if 3 * moved_power(base, powers) >= sum(base.values()):
            return ReceiptCode.POWER_CHANGE_TOO_LARGE
        self.validators = powers
        return ReceiptCode.OK


# Why the ledger refuses an action, for the people who submitted it.
REFUSAL_TEXT = {
    ReceiptCode.EXPIRED: "its expiry height has passed",
    ReceiptCode.BAD_SEQUENCE: "its sequence is not the board's next (0 for a validator's own key rotation)",
    ReceiptCode.NOT_BOARD_SIGNER: "an approval comes from a key that is not on the board",
    ReceiptCode.TOO_FEW_SIGNATURES: "it has fewer approvals than the board's threshold",
    ReceiptCode.UNKNOWN_VALIDATOR: "the validator set holds no such key",
    ReceiptCode.UNKNOWN_BANK: "no bank has that key",
    ReceiptCode.BANK_EXISTS: "a bank with that key or that name exists",
    ReceiptCode.KEY_IN_USE: "the key serves in that role or a conflicting one, or was rotated away before",
    ReceiptCode.EMPTY_VALIDATOR_SET: "the change would leave no validator",
    ReceiptCode.POWER_CHANGE_TOO_LARGE: "one block's changes must move less than a third of the voting power",
    ReceiptCode.UNKNOWN_OBSERVER: "no observer has that key",
    ReceiptCode.OBSERVER_EXISTS: "an observer with that key or that name exists",
    ReceiptCode.TOO_MANY_OBSERVERS: f"at most {MAX_OBSERVERS} observers may be registered",
}


def moved_power(before: dict[bytes, int], after: dict[bytes, int]) -> int:
    """How much voting power a change moves: the larger of what it adds and what it removes."""
    added = sum(max(0, power - before.get(key, 0)) for key, power in after.items())
    removed = sum(max(0, power - after.get(key, 0)) for key, power in before.items())
    return max(added, removed)
