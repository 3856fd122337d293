"""The digital som's rules on the ledger: tiers and their limits, the waterfall, registration by banks,
and legal orders, one receipt code at a time, against a real store."""

from __future__ import annotations

import hashlib

import msgpack
import pytest

from node.core import rfc6962
from node.core.actions import (
    DefineTier,
    Freeze,
    OrderReference,
    Scope,
    Seize,
    SetWallet,
    Unfreeze,
)
from node.core.governance import GovernanceTransaction
from node.core.keys import KeyPair
from node.core.registration import Registration, SignedRegistration
from node.core.tiers import DAY_MS, INSTITUTIONAL, Tier, bishkek_day
from node.core.tx import TxKind
from node.ledger import GenesisState, LedgerStore
from node.ledger.receipts import BYTE_OF, ReceiptCode
from tests.crash_writer import CHAIN_ID, GENESIS_HASH, block_bytes, certificate_bytes, signed

BOARD = tuple(KeyPair.from_seed(hashlib.sha256(b"tier board %d" % n).digest()) for n in range(2))
ISSUER, BANK, OTHER_BANK, ALICE, BOB, CAROL, COURT = (
    hashlib.sha256(name).digest() for name in (b"issuer", b"bank", b"other bank", b"alice", b"bob", b"carol",
                                               b"court deposit"))
TIERS = (Tier(0, "anonymous", 1_000, 300, 500), Tier(1, "basic KYC", 10_000, 3_000, 5_000))
REFERENCE = OrderReference("Pervomaisky District Court of Bishkek", "2-1234/26", "2026-11-30", bytes(range(32)))
# Bishkek midnight (UTC+6) of 2026-12-01 is 18:00 UTC on 2026-11-30.
MIDNIGHT_MS = 1_796_061_600_000


def tier_genesis() -> GenesisState:
    return GenesisState(
        CHAIN_ID, GENESIS_HASH, ISSUER, frozenset({BANK, OTHER_BANK}),
        tuple(sorted([(BANK, 1_000_000), (OTHER_BANK, 1_000_000), (ALICE, 900), (CAROL, 100)])),
        validators=((hashlib.sha256(b"validator").digest(), 10),),
        board=tuple(sorted(m.public_key for m in BOARD)), board_threshold=2, tiers=TIERS,
        account_tiers=((CAROL, 1),),
    )


@pytest.fixture
def store(tmp_path):
    store = LedgerStore.open(tmp_path / "ledger", tier_genesis())
    try:
        yield store
    finally:
        store.close()


def commit(store, *txs, time_ms: int = MIDNIGHT_MS + 3600_000):
    height = store.height + 1
    result = store.apply_block(height, list(txs), block_bytes(height, list(txs)), certificate_bytes(height),
                               time_ms=time_ms)
    return [receipt.code for receipt in result.receipts]


def sent(store, sender: bytes, amount: int, to: bytes, **kw):
    """Commit one transfer with the sender's next nonce; its receipt code."""
    account = store.account(sender)
    return commit(store, signed(TxKind.TRANSFER, sender, account.nonce, amount, to), **kw)[0]


def board(store, action):
    tx = GovernanceTransaction(store.governance.sequence, 10**9, action)
    return tx.signed([tx.approve(member, CHAIN_ID) for member in BOARD])


def registration(store, bank: bytes, wallet: bytes, tier: int, linked: bytes = b""):
    """A bank's registration with a placeholder signature: execution trusts the caller's verification."""
    tx = Registration(bank, store.account(bank).nonce, wallet, tier, linked)
    signature = hashlib.sha512(tx.unsigned_bytes()).digest()
    raw = msgpack.packb(tx.fields() + [signature], use_bin_type=True)
    return SignedRegistration(tx, signature, raw, hashlib.sha256(raw).digest())


def test_an_unregistered_account_is_tier_0_and_its_single_payment_limit_holds(store):
    assert store.account(ALICE).tier == 0
    assert sent(store, ALICE, 301, BOB) == "over_payment_limit"
    assert store.account(ALICE).nonce == 1, "a refused payment consumes its nonce"
    assert sent(store, ALICE, 300, BOB) == "ok"


def test_the_daily_limit_counts_the_bishkek_day_by_block_time(store):
    before_midnight = MIDNIGHT_MS - 1
    assert sent(store, ALICE, 300, BOB, time_ms=before_midnight - 3_600_000) == "ok"
    assert sent(store, ALICE, 201, BOB, time_ms=before_midnight) == "over_daily_limit"
    assert sent(store, ALICE, 200, BOB, time_ms=before_midnight) == "ok"
    assert sent(store, ALICE, 1, BOB, time_ms=before_midnight) == "over_daily_limit"
    # One millisecond later it is the next day in Bishkek (18:00 UTC): the count starts again.
    assert sent(store, ALICE, 300, BOB, time_ms=MIDNIGHT_MS) == "ok"
    assert store.account(ALICE).spent == 300


def test_a_payment_over_the_holding_limit_is_refused_without_a_linked_account(store):
    assert sent(store, BANK, 1_001, BOB) == "over_holding_limit"
    assert sent(store, BANK, 1_000, BOB) == "ok"
    assert sent(store, BANK, 1, BOB) == "over_holding_limit"
    assert store.account(BOB).balance == 1_000


def test_the_waterfall_passes_the_excess_to_the_linked_account(store):
    assert commit(store, registration(store, BANK, BOB, 0, linked=BANK)) == ["ok"]
    bank_before = store.account(BANK).balance
    transfer = signed(TxKind.TRANSFER, OTHER_BANK, store.account(OTHER_BANK).nonce, 1_500, BOB)
    assert commit(store, transfer) == ["ok"]
    assert store.account(BOB).balance == 1_000
    assert store.account(BANK).balance == bank_before + 500
    location = store.tx_location(transfer.hash)
    assert location.waterfall == (1_000, 500, BANK)
    assert store.supply().outstanding == sum(store.account(k).balance for k in (BANK, OTHER_BANK, ALICE, BOB, CAROL))


def test_a_registration_is_the_registering_banks_to_change(store):
    assert commit(store, registration(store, BANK, ALICE, 1, linked=BANK)) == ["ok"]
    assert store.account(ALICE).tier == 1 and store.registration(ALICE) == (BANK, BANK)
    assert commit(store, registration(store, OTHER_BANK, ALICE, 0)) == ["not_registering_bank"]
    assert commit(store, registration(store, BANK, ALICE, 7)) == ["unknown_tier"]
    assert commit(store, registration(store, BANK, ALICE, 0)) == ["ok"]
    assert store.registration(ALICE) == (BANK, b"") and store.account(ALICE).tier == 0
    # Only a bank registers; the issuer is not a bank.
    assert commit(store, registration(store, ISSUER, BOB, 1)) == ["unauthorised"]


def test_the_board_designates_institutional_accounts_and_changes_any_registration(store):
    assert commit(store, registration(store, BANK, ALICE, 1)) == ["ok"]
    assert commit(store, board(store, SetWallet(ALICE, INSTITUTIONAL, b""))) == ["ok"]
    assert store.account(ALICE).tier == INSTITUTIONAL and store.registration(ALICE) == (BANK, b"")
    assert commit(store, registration(store, BANK, ALICE, 1)) == ["not_registering_bank"], \
        "an institutional designation is the board's to change"
    assert sent(store, BANK, 500_000, ALICE) == "ok", "no limit binds an institutional account"
    assert commit(store, board(store, SetWallet(BOB, 9, b""))) == ["unknown_tier"]


def test_a_lowered_limit_keeps_the_balance_but_stops_receiving(store):
    assert sent(store, BANK, 1_000, BOB) == "ok"
    assert commit(store, board(store, DefineTier(Tier(0, "anonymous", 600, 300, 500)))) == ["ok"]
    assert store.account(BOB).balance == 1_000, "the board's change takes nothing away"
    assert sent(store, BANK, 1, BOB) == "over_holding_limit"
    assert sent(store, BOB, 300, CAROL) == "ok"
    assert sent(store, BANK, 1, BOB) == "over_holding_limit", "still above the new limit: 700 > 600"
    assert sent(store, BOB, 200, CAROL) == "ok"
    assert sent(store, BANK, 100, BOB) == "ok"
    assert store.account(BOB).balance == 600


def test_a_freeze_stops_the_payments_in_its_scope_and_an_unfreeze_lifts_it(store):
    assert commit(store, board(store, Freeze(ALICE, Scope.OUTGOING, REFERENCE))) == ["ok"]
    assert sent(store, ALICE, 10, BOB) == "sender_frozen"
    assert sent(store, BANK, 10, ALICE) == "ok", "incoming payments still arrive"
    assert commit(store, board(store, Freeze(ALICE, Scope.INCOMING, REFERENCE))) == ["ok"]
    assert sent(store, BANK, 10, ALICE) == "recipient_frozen"
    assert commit(store, board(store, Unfreeze(ALICE, Scope.OUTGOING, REFERENCE))) == ["ok"]
    assert sent(store, ALICE, 10, BOB) == "ok"
    assert sent(store, BANK, 10, ALICE) == "recipient_frozen"
    assert [fields[0] for _, _, fields in store.orders(ALICE)] == [9, 9, 10]


def test_a_seizure_moves_money_whatever_the_accounts_state_and_is_recorded(store):
    commit(store, board(store, Freeze(ALICE, Scope.BOTH, REFERENCE)))
    supply = store.supply().outstanding
    assert commit(store, board(store, Seize(ALICE, 901, COURT, REFERENCE))) == ["insufficient_funds"]
    assert commit(store, board(store, Seize(ALICE, 600, COURT, REFERENCE))) == ["ok"]
    assert store.account(ALICE).balance == 300 and store.account(COURT).balance == 600
    assert store.supply().outstanding == supply
    history = store.orders(ALICE)
    assert [fields[:3] for _, _, fields in history] == [[9, 3, b""], [11, 600, COURT]]
    assert history[1][2][3:] == [REFERENCE.authority, REFERENCE.number, REFERENCE.date, REFERENCE.document_sha256]


def test_the_genesis_puts_wallets_in_tiers_as_the_boards_registrations(store):
    assert store.account(CAROL).tier == 1
    assert store.registration(CAROL) == (b"", b"")
    assert commit(store, registration(store, BANK, CAROL, 0, BANK)) == ["not_registering_bank"]
    assert store.account(CAROL).tier == 1
    assert sent(store, CAROL, 100, ALICE) == "ok"
    assert store.account(ALICE).balance == 1_000


def test_a_refused_payment_opens_no_account_for_a_new_key(store):
    stranger = hashlib.sha256(b"stranger").digest()
    over = signed(TxKind.TRANSFER, BANK, store.account(BANK).nonce, 1_001, stranger)  # tier 0 holds 1,000
    from_stranger = signed(TxKind.TRANSFER, stranger, 0, 1, ALICE)
    assert commit(store, over, from_stranger) == ["over_holding_limit", "unknown_account"]
    assert store.account(stranger) is None
    assert commit(store, signed(TxKind.TRANSFER, stranger, 0, 1, ALICE)) == ["unknown_account"]


def test_a_day_is_a_bishkek_calendar_day():
    assert bishkek_day(MIDNIGHT_MS) == bishkek_day(MIDNIGHT_MS - 1) + 1
    assert bishkek_day(MIDNIGHT_MS + DAY_MS - 1) == bishkek_day(MIDNIGHT_MS)


def test_the_results_root_carries_each_outcome_and_the_waterfall(store):
    """The root the next header names: a leaf per transaction, with the waterfall of one that overflowed."""
    assert store.results_hash == rfc6962.EMPTY_ROOT
    commit(store, registration(store, BANK, BOB, 0, linked=BANK))
    transfer = signed(TxKind.TRANSFER, OTHER_BANK, store.account(OTHER_BANK).nonce, 1_500, BOB)
    refused = signed(TxKind.TRANSFER, ALICE, store.account(ALICE).nonce, 301, CAROL)
    height = store.height + 1
    result = store.apply_block(height, [transfer, refused], block_bytes(height, [transfer, refused]),
                               certificate_bytes(height), time_ms=MIDNIGHT_MS)
    leaves = [transfer.hash + bytes([BYTE_OF[ReceiptCode.OK]]) + (1_000).to_bytes(8, "big") + (500).to_bytes(8, "big")
              + BANK, refused.hash + bytes([BYTE_OF[ReceiptCode.OVER_PAYMENT_LIMIT]])]
    assert result.results_hash == store.results_hash == rfc6962.root(leaves)
    store.close()
    with LedgerStore.open(store.path, tier_genesis()) as reopened:
        assert reopened.results_hash == rfc6962.root(leaves), "the root survives a restart"
