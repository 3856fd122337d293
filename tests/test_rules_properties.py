"""The digital som's rules, property-tested against a reference model written the obvious way.

Hypothesis draws a chain of blocks — transfers, issues, redemptions, bank
registrations with and without linked accounts, freezes, unfreezes,
seizures, tier changes — with block times that cross Bishkek midnights.
After every block the real store and the model must agree on every receipt
code and every account, and these properties must hold:

- supply equals issued minus redeemed, through waterfalls and seizures;
- no payment takes an account above its tier's holding limit;
- a limited account's outgoing total in one Bishkek day stays within its tier's daily limit,
  and the count starts again exactly at Bishkek midnight by block time;
- a frozen account never sends, or never receives, according to the order's scope;
- every freeze, unfreeze and seizure appears in that account's order history.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.core.actions import DefineTier, Freeze, OrderReference, Scope, Seize, SetWallet, Unfreeze
from node.core.amount import MAX_TYIYN
from node.core.governance import GovernanceTransaction
from node.core.keys import KeyPair
from node.core.registration import Registration, SignedRegistration
from node.core.tiers import BISHKEK_OFFSET_MS, DAY_MS, INSTITUTIONAL, Tier
from node.core.tx import TxKind
from node.ledger import GenesisState, LedgerStore
from tests.crash_writer import CHAIN_ID, GENESIS_HASH, block_bytes, certificate_bytes, signed

EXAMPLES = int(os.environ.get("SOMNODE_RULES_EXAMPLES", "300" if os.environ.get("SOMNODE_LONG") == "1" else "40"))
BOARD = tuple(KeyPair.from_seed(hashlib.sha256(b"rules board %d" % n).digest()) for n in range(2))
KEYS = tuple(hashlib.sha256(b"rules account %d" % n).digest() for n in range(8))
ISSUER, BANKS, HOLDERS = KEYS[0], KEYS[1:3], KEYS[3:]
TIERS = (Tier(0, "anonymous", 5_000, 1_500, 2_500), Tier(1, "basic KYC", 20_000, 8_000, 12_000))
REFERENCE = OrderReference("Bishkek City Court", "1-99/26", "2026-12-01", bytes(32))
START_MS = 1_796_061_600_000 - 2 * 3600_000  # 22:00 in Bishkek, two hours before a midnight


def day_of(time_ms: int) -> int:
    return (time_ms + BISHKEK_OFFSET_MS) // DAY_MS


@dataclass
class Model:
    """The rules of docs/ledger.md, one dict per concern, no optimisation."""

    balance: dict[bytes, int]
    nonce: dict[bytes, int] = field(default_factory=dict)
    tier: dict[bytes, int] = field(default_factory=dict)
    frozen: dict[bytes, int] = field(default_factory=dict)
    spent: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # (day, amount)
    registration: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)
    tiers: dict[int, Tier] = field(default_factory=lambda: {t.id: t for t in TIERS})
    orders: dict[bytes, list[int]] = field(default_factory=dict)
    issued: int = 0
    redeemed: int = 0
    sequence: int = 0  # the board's
    credited: set[bytes] = field(default_factory=set)  # credited by a payment in the current block
    seized_into: set[bytes] = field(default_factory=set)  # credited by a seizure in the current block
    lowered: bool = False  # the board changed tier 0 in the current block

    def limited(self, key: bytes) -> bool:
        return key != ISSUER and key not in BANKS and self.tier.get(key, 0) != INSTITUTIONAL

    def limits(self, key: bytes) -> Tier:
        return self.tiers[self.tier.get(key, 0)]

    def pay(self, kind: TxKind, sender: bytes, amount: int, recipient: bytes | None, day: int) -> str:
        if sender not in self.balance:
            return "unknown_account"
        self.nonce[sender] = self.nonce.get(sender, 0) + 1
        if kind is TxKind.TRANSFER and sender == recipient:
            return "self_transfer"
        if kind is TxKind.ISSUE and sender != ISSUER:
            return "unauthorised"
        if kind is TxKind.REDEEM and sender not in BANKS and sender != ISSUER:
            return "unauthorised"
        if self.frozen.get(sender, 0) & Scope.OUTGOING:
            return "sender_frozen"
        capped = self.limited(sender)
        if capped:
            if amount > self.limits(sender).max_payment:
                return "over_payment_limit"
            spent_day, spent = self.spent.get(sender, (0, 0))
            if spent_day != day:
                spent = 0
            self.spent[sender] = (day, spent)
            if spent + amount > self.limits(sender).max_daily_out:
                return "over_daily_limit"
        if kind is not TxKind.ISSUE and self.balance[sender] < amount:
            return "insufficient_funds"
        if kind is TxKind.ISSUE and self.issued - self.redeemed + amount > MAX_TYIYN:
            return "overflow"
        if kind is TxKind.REDEEM:
            self.balance[sender] -= amount
            self.redeemed += amount
            return "ok"
        assert recipient is not None
        if self.frozen.get(recipient, 0) & Scope.INCOMING:
            return "recipient_frozen"
        credited, linked = amount, None
        if self.limited(recipient):
            room = max(0, self.limits(recipient).max_balance - self.balance.get(recipient, 0))
            if amount > room:
                linked = self.registration.get(recipient, (b"", b""))[1] or None
                if linked is None or self.frozen.get(linked, 0) & Scope.INCOMING or (
                        self.limited(linked)
                        and self.balance.get(linked, 0) + amount - room > self.limits(linked).max_balance):
                    return "over_holding_limit"
                credited = room
        if kind is TxKind.TRANSFER:
            self.balance[sender] -= amount
        else:
            self.issued += amount
        if capped:
            self.spent[sender] = (day, self.spent[sender][1] + amount)
        self.balance[recipient] = self.balance.get(recipient, 0) + credited
        if credited:
            self.credited.add(recipient)
        if linked is not None:
            self.balance[linked] = self.balance.get(linked, 0) + amount - credited
            self.credited.add(linked)
        return "ok"

    def register(self, bank: bytes, wallet: bytes, tier: int, linked: bytes) -> str:
        if bank not in self.balance:
            return "unknown_account"
        self.nonce[bank] = self.nonce.get(bank, 0) + 1
        current = self.registration.get(wallet)
        if (current is not None and current[0] != bank) or self.tier.get(wallet, 0) == INSTITUTIONAL:
            return "not_registering_bank"
        self.registration[wallet] = (bank, linked)
        self.tier[wallet] = tier
        self.balance.setdefault(wallet, 0)
        return "ok"

    def order(self, op: tuple) -> tuple[object, str]:
        """A board action for ``op`` and its code; every one takes the board's next sequence."""
        self.sequence += 1
        kind = op[0]
        if kind in ("freeze", "unfreeze"):
            _, account, scope = op
            self.balance.setdefault(account, 0)
            flags = self.frozen.get(account, 0)
            self.frozen[account] = flags | scope if kind == "freeze" else flags & ~scope
            self.orders.setdefault(account, []).append(9 if kind == "freeze" else 10)
            return (Freeze if kind == "freeze" else Unfreeze)(account, scope, REFERENCE), "ok"
        if kind == "seize":
            _, account, amount, destination = op
            if destination == account:
                destination = BANKS[0] if account != BANKS[0] else BANKS[1]
            self.balance.setdefault(account, 0)
            if self.balance[account] < amount:
                return Seize(account, amount, destination, REFERENCE), "insufficient_funds"
            self.balance[account] -= amount
            self.balance[destination] = self.balance.get(destination, 0) + amount
            self.seized_into.add(destination)
            self.orders.setdefault(account, []).append(11)
            return Seize(account, amount, destination, REFERENCE), "ok"
        if kind == "lower":
            tier = Tier(0, "anonymous", op[1], 1_500, 2_500)
            self.tiers[0] = tier
            self.lowered = True
            return DefineTier(tier), "ok"
        account = op[1]
        self.tier[account] = INSTITUTIONAL
        self.balance.setdefault(account, 0)
        current = self.registration.get(account)
        self.registration[account] = (current[0] if current else b"", b"")
        return SetWallet(account, INSTITUTIONAL, b""), "ok"


operations = st.lists(st.one_of(
    st.tuples(st.just("transfer"), st.sampled_from(KEYS), st.sampled_from(KEYS), st.integers(1, 9_000)),
    st.tuples(st.just("issue"), st.sampled_from([ISSUER, HOLDERS[0]]), st.sampled_from(KEYS), st.integers(1, 9_000)),
    st.tuples(st.just("redeem"), st.sampled_from(KEYS), st.integers(1, 3_000)),
    st.tuples(st.just("register"), st.sampled_from(BANKS), st.sampled_from(HOLDERS), st.sampled_from([0, 1]),
              st.sampled_from([b"", BANKS[0], HOLDERS[0]])),
    st.tuples(st.just("freeze"), st.sampled_from(HOLDERS), st.sampled_from(list(Scope))),
    st.tuples(st.just("unfreeze"), st.sampled_from(HOLDERS), st.sampled_from(list(Scope))),
    st.tuples(st.just("seize"), st.sampled_from(HOLDERS), st.integers(1, 4_000), st.sampled_from(KEYS)),
    st.tuples(st.just("lower"), st.integers(1_000, 5_000)),
    st.tuples(st.just("institutional"), st.sampled_from(HOLDERS)),
), min_size=1, max_size=8)
# Each block comes 0..3 hours after the one before: the chain starts at 22:00 in Bishkek, so most
# chains cross a midnight.
chains = st.lists(st.tuples(st.integers(0, 3 * 3600_000), operations), min_size=1, max_size=6)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])
@given(chains)
def test_the_store_follows_the_rules_and_they_hold(tmp_path_factory, chain):
    balances = {BANKS[0]: 100_000, BANKS[1]: 100_000, HOLDERS[0]: 4_000, HOLDERS[1]: 4_000}
    genesis = GenesisState(
        CHAIN_ID, GENESIS_HASH, ISSUER, frozenset(BANKS), tuple(sorted(balances.items())),
        validators=((hashlib.sha256(b"v").digest(), 1),), board=tuple(sorted(m.public_key for m in BOARD)),
        board_threshold=2, tiers=TIERS)
    model = Model({ISSUER: 0, **balances}, issued=sum(balances.values()))
    time_ms = START_MS
    with LedgerStore.open(tmp_path_factory.mktemp("rules") / "ledger", genesis) as store:
        for step_ms, ops in chain:
            time_ms += step_ms
            model.credited.clear()
            model.seized_into.clear()
            model.lowered = False
            txs, expected = [], []
            for op in ops:
                tx, code = _transaction(model, op, day_of(time_ms))
                if tx is not None:
                    txs.append(tx)
                    expected.append(code)
            height = store.height + 1
            result = store.apply_block(height, txs, block_bytes(height, txs), certificate_bytes(height), time_ms)
            assert [r.code for r in result.receipts] == expected
            _check(store, model, day_of(time_ms))


def _transaction(model: Model, op: tuple, day: int):
    """The transaction for ``op`` and the code the model gives it; (None, None) for no transaction."""
    kind = op[0]
    if kind in ("transfer", "issue", "redeem"):
        sender, amount = op[1], op[-1]
        recipient = op[2] if kind != "redeem" else None
        tx_kind = {"transfer": TxKind.TRANSFER, "issue": TxKind.ISSUE, "redeem": TxKind.REDEEM}[kind]
        tx = signed(tx_kind, sender, model.nonce.get(sender, 0), amount, recipient)
        return tx, model.pay(tx_kind, sender, amount, recipient, day)
    if kind == "register":
        _, bank, wallet, tier, linked = op
        if linked == wallet:
            return None, None
        registration = Registration(bank, model.nonce.get(bank, 0), wallet, tier, linked)
        signature = hashlib.sha512(registration.unsigned_bytes()).digest()
        raw = msgpack.packb(registration.fields() + [signature], use_bin_type=True)
        code = model.register(bank, wallet, tier, linked)
        return SignedRegistration(registration, signature, raw, hashlib.sha256(raw).digest()), code
    sequence = model.sequence
    action, code = model.order(op)
    tx = GovernanceTransaction(sequence, 10**9, action)  # type: ignore[arg-type]
    return tx.signed([tx.approve(member, CHAIN_ID) for member in BOARD]), code


def _check(store, model: Model, day: int) -> None:
    supply = store.supply()
    accounts = {key: store.account(key) for key in KEYS}
    assert supply.issued - supply.redeemed == supply.outstanding == sum(
        account.balance for account in accounts.values() if account is not None)
    assert (supply.issued, supply.redeemed) == (model.issued, model.redeemed)
    tiers = {tier.id: tier for tier in store.governance.tiers}
    for key, account in accounts.items():
        assert (account.balance if account else 0) == model.balance.get(key, 0), key.hex()[:8]
        if account is None:
            continue
        limited = account.tier != INSTITUTIONAL and key != ISSUER and key not in BANKS
        if limited and key in model.credited and key not in model.seized_into and not model.lowered:
            assert account.balance <= tiers[account.tier].max_balance, "a payment took an account over its limit"
        if limited and account.day == day:
            assert account.spent <= tiers[account.tier].max_daily_out
        assert [fields[0] for _, _, fields in store.orders(key)] == model.orders.get(key, [])
