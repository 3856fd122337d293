"""What one block has read and changed so far: accounts and wallet registrations, before the store writes them.

An account is a list ``[balance, nonce, tier, flags, day, spent]`` (the
indices below): balance and next nonce; the wallet's tier; the freeze flags
a legal order set (node/core/actions.py ``Scope`` bits); and the outgoing
amount already sent on ``day``, the Bishkek calendar day of the last block
that debited it under a limit.  Lists, not objects, because the execution
loop reads and writes them for every transaction of every block.

A registration is ``(registering bank, linked account)``: the bank empty when
the board set it, the linked account empty when there is none.
"""

from __future__ import annotations

from collections.abc import Callable

from node.core.tiers import UNREGISTERED_TIER

BALANCE, NONCE, TIER, FLAGS, DAY, SPENT = range(6)
FROZEN_OUT, FROZEN_IN = 1, 2  # as Scope.OUTGOING and Scope.INCOMING

AccountRecord = tuple[int, int, int, int, int, int]
AccountLookup = Callable[[bytes], "AccountRecord | None"]
Registration = tuple[bytes, bytes]
RegistrationLookup = Callable[[bytes], "Registration | None"]


def new_account(tier: int = UNREGISTERED_TIER) -> list[int]:
    return [0, 0, tier, 0, 0, 0]


class Book:
    __slots__ = ("loaded", "written", "registrations", "_lookup", "_registration")

    def __init__(self, lookup: AccountLookup, registration: RegistrationLookup) -> None:
        """``lookup`` and ``registration`` read the committed state, never this block's changes."""
        self.loaded: dict[bytes, list[int]] = {}
        self.written: dict[bytes, list[int]] = {}
        self.registrations: dict[bytes, Registration] = {}
        self._lookup = lookup
        self._registration = registration

    def account(self, key: bytes) -> list[int] | None:
        """The account as this block left it so far, or None if there is none."""
        account = self.loaded.get(key)
        return self.load(key) if account is None else account

    def load(self, key: bytes) -> list[int] | None:
        """``account(key)`` for the execution loop, which has just looked in ``loaded`` itself: the committed
        account is read first, and the block's own is kept if it has one after all."""
        stored = self._lookup(key)
        if stored is None:
            return self.loaded.get(key)
        return self.loaded.setdefault(key, list(stored))

    def opened(self, key: bytes) -> list[int]:
        """The account, opened empty (tier 0) if there is none yet; written either way."""
        account = self.account(key)
        if account is None:
            account = self.loaded[key] = new_account()
        self.written[key] = account
        return account

    def registration(self, key: bytes) -> Registration | None:
        if key in self.registrations:
            return self.registrations[key]
        return self._registration(key)

    def register(self, key: bytes, bank: bytes, linked: bytes) -> None:
        self.registrations[key] = (bank, linked)
