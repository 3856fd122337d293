"""The ledger's business rules, one receipt code at a time, against a real store."""

from __future__ import annotations

import pytest

from node.core.amount import MAX_TYIYN
from node.core.tx import TxKind
from node.ledger import GenesisState, LedgerStore
from node.ledger.errors import LedgerHeightError
from node.ledger.receipts import BAD_NONCE
from tests.crash_writer import (
    BANKS,
    HOLDERS,
    ISSUER,
    block_bytes,
    certificate_bytes,
    genesis_state,
    key,
    signed,
)

ALICE, BOB = HOLDERS[0], HOLDERS[1]
STRANGER = key(999)  # never funded at genesis
T, I, R = TxKind.TRANSFER, TxKind.ISSUE, TxKind.REDEEM

def funds(store, public_key):
    """The committed (balance, nonce) of an account, or None when it has none."""
    account = store.account(public_key)
    return None if account is None else (account.balance, account.nonce)



@pytest.fixture
def store(tmp_path):
    store = LedgerStore.open(tmp_path / "ledger", genesis_state())
    try:
        yield store
    finally:
        store.close()


def commit(store, *txs):
    height = store.height + 1
    result = store.apply_block(height, list(txs), block_bytes(height, list(txs)), certificate_bytes(height))
    return [receipt.code for receipt in result.receipts]


def test_transfer_moves_money_and_consumes_the_nonce(store):
    assert commit(store, signed(T, ALICE, 0, 250, BOB)) == ["ok"]
    assert funds(store, ALICE) == (1_000_000 - 250, 1)
    assert funds(store, BOB) == (1_000_000 + 250, 0)


def test_transfer_to_a_fresh_key_creates_its_account(store):
    assert funds(store, STRANGER) is None
    assert commit(store, signed(T, ALICE, 0, 7, STRANGER)) == ["ok"]
    assert funds(store, STRANGER) == (7, 0)
    assert commit(store, signed(T, STRANGER, 0, 7, ALICE)) == ["ok"]
    assert funds(store, STRANGER) == (0, 1)


def test_unknown_sender_changes_nothing(store):
    before = store.supply()
    assert commit(store, signed(T, STRANGER, 0, 1, ALICE)) == ["unknown_account"]
    assert funds(store, STRANGER) is None
    assert funds(store, ALICE) == (1_000_000, 0)
    assert store.supply() == before


def test_bad_nonce_changes_nothing_and_the_bytes_stay_valid(store):
    future = signed(T, ALICE, 1, 5, BOB)
    assert commit(store, future) == ["bad_nonce"]
    assert funds(store, ALICE) == (1_000_000, 0)
    assert commit(store, signed(T, ALICE, 0, 5, BOB), future) == ["ok", "ok"]
    assert funds(store, ALICE) == (1_000_000 - 10, 2)


def test_replayed_transaction_is_refused(store):
    tx = signed(T, ALICE, 0, 5, BOB)
    assert commit(store, tx, tx) == ["ok", "bad_nonce"]
    assert commit(store, tx) == ["bad_nonce"]
    location = store.tx_location(tx.hash)
    assert (location.height, location.index, location.code) == (1, 0, "ok")
    assert funds(store, BOB) == (1_000_000 + 5, 0)


def test_insufficient_funds_consumes_the_nonce_so_the_bytes_die(store):
    too_much = signed(T, ALICE, 0, 1_000_001, BOB)
    assert commit(store, too_much) == ["insufficient_funds"]
    assert funds(store, ALICE) == (1_000_000, 1)
    assert commit(store, signed(T, BOB, 0, 10, ALICE)) == ["ok"]
    assert commit(store, too_much) == ["bad_nonce"]


def test_self_transfer_is_refused_but_consumes_the_nonce(store):
    assert commit(store, signed(T, ALICE, 0, 1, ALICE)) == ["self_transfer"]
    assert funds(store, ALICE) == (1_000_000, 1)


def test_only_the_issuer_issues(store):
    assert commit(store, signed(I, ALICE, 0, 100, ALICE), signed(I, BANKS[0], 0, 100, BANKS[0])) == [
        "unauthorised", "unauthorised"]
    assert funds(store, ALICE) == (1_000_000, 1)
    issued_before = store.supply().issued
    assert commit(store, signed(I, ISSUER, 0, 100, STRANGER)) == ["ok"]
    assert funds(store, STRANGER) == (100, 0)
    assert store.supply().issued == issued_before + 100


def test_issue_beyond_u64_supply_overflows(store):
    room = MAX_TYIYN - store.supply().outstanding
    assert commit(store, signed(I, ISSUER, 0, room + 1, BOB)) == ["overflow"]
    assert commit(store, signed(I, ISSUER, 1, room, STRANGER)) == ["ok"]
    assert store.supply().outstanding == MAX_TYIYN
    assert commit(store, signed(I, ISSUER, 2, 1, STRANGER)) == ["overflow"]
    assert funds(store, ISSUER) == (0, 3)


def test_redeem_by_a_bank_destroys_som(store):
    assert commit(store, signed(T, ALICE, 0, 500, BANKS[0])) == ["ok"]
    assert commit(store, signed(R, BANKS[0], 0, 501), signed(R, BANKS[0], 1, 200)) == [
        "insufficient_funds", "ok"]
    supply = store.supply()
    assert funds(store, BANKS[0]) == (300, 2)
    assert supply.redeemed == 200 and supply.outstanding == supply.issued - 200


def test_redeem_by_a_holder_is_unauthorised(store):
    assert commit(store, signed(R, ALICE, 0, 10)) == ["unauthorised"]
    assert funds(store, ALICE) == (1_000_000, 1)
    assert store.supply().redeemed == 0


def test_issuer_may_retire_som_returned_to_it(store):
    assert commit(store, signed(T, ALICE, 0, 40, ISSUER), signed(R, ISSUER, 0, 40)) == ["ok", "ok"]
    assert funds(store, ISSUER) == (0, 1)


def test_nonce_at_the_u64_limit_is_never_usable(tmp_path):
    genesis = genesis_state()
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        assert commit(store, signed(T, ALICE, MAX_TYIYN, 1, BOB)) == ["bad_nonce"]


def test_receipts_index_and_blocks_are_stored(store):
    txs = [signed(T, ALICE, 0, 1, BOB), signed(T, ALICE, 5, 1, BOB)]
    commit(store, *txs)
    assert store.block(1) == block_bytes(1, txs)
    assert store.certificate(1) == certificate_bytes(1)
    assert [(r.index, r.tx_hash, r.code) for r in store.receipts(1)] == [
        (0, txs[0].hash, "ok"), (1, txs[1].hash, "bad_nonce")]
    location = store.tx_location(txs[0].hash)
    assert (location.height, location.index, location.code) == (1, 0, "ok")
    assert store.block(2) is None and store.receipts(2) is None and store.tx_location(bytes(32)) is None


def test_index_keeps_the_outcome_that_consumed_the_nonce(store):
    tx = signed(T, ALICE, 1, 3, BOB)
    commit(store, tx)
    assert store.tx_location(tx.hash).code == "bad_nonce"
    commit(store, signed(T, ALICE, 0, 3, BOB), tx)
    assert (store.tx_location(tx.hash).height, store.tx_location(tx.hash).code) == (2, "ok")
    commit(store, tx)  # a later no-op inclusion must not hide the real outcome
    assert (store.tx_location(tx.hash).height, store.tx_location(tx.hash).code) == (2, "ok")


def test_prepare_writes_nothing_and_apply_writes_exactly_what_it_prepared(store):
    txs = [signed(T, ALICE, 0, 9, STRANGER), signed(I, ISSUER, 0, 1, ALICE)]
    height, app_hash = store.height, store.app_hash
    prepared = store.prepare(txs)
    assert (store.height, store.app_hash) == (height, app_hash)
    assert funds(store, STRANGER) is None and funds(store, ALICE) == (1_000_000, 0)
    applied = store.apply(prepared, b"block", b"cert")
    assert applied.app_hash == prepared.app_hash == store.app_hash and applied.codes == ("ok", "ok")
    assert funds(store, STRANGER) == (9, 0)


def test_a_block_prepared_on_an_older_state_cannot_be_applied(store):
    proposal = [signed(T, ALICE, 0, 9, BOB)]
    committed = [signed(T, ALICE, 0, 4, STRANGER)]
    prepared = store.prepare(proposal)
    assert list(prepared.execution.codes) == [0]
    store.apply_block(1, committed, b"block", b"cert")
    with pytest.raises(LedgerHeightError, match="prepared for another height"):
        store.apply(prepared, b"block", b"cert")
    assert funds(store, STRANGER) == (4, 0) and funds(store, BOB) == (1_000_000, 0)
    assert store.prepare(proposal).execution.codes == bytearray([BAD_NONCE])


def test_a_failed_write_leaves_disk_and_memory_untouched(tmp_path):
    txs = [signed(T, ALICE, 0, 9, BOB)]
    with LedgerStore.open(tmp_path / "l", genesis_state()) as store:
        with pytest.raises(TypeError):
            store.apply_block(1, txs, None, b"cert")  # the batch cannot be built
        assert store.height == 0 and funds(store, ALICE) == (1_000_000, 0)
    with LedgerStore.open(tmp_path / "l", genesis_state()) as store:  # cold cache: what is on disk
        assert store.height == 0 and funds(store, ALICE) == (1_000_000, 0)
        assert funds(store, BOB) == (1_000_000, 0) and store.tx_location(txs[0].hash) is None
        assert commit(store, *txs) == ["ok"]


def test_genesis_accounts_exist_for_issuer_and_banks(store):
    assert funds(store, ISSUER) == (0, 0)
    assert all(funds(store, bank) == (0, 0) for bank in BANKS)
    assert store.supply().outstanding == sum(account.balance for _, account in store.iter_accounts())


@pytest.mark.parametrize("balances, message", [
    (((ALICE, MAX_TYIYN), (BOB, 1)), "more than 2"),
    (((ALICE, 1), (ALICE, 2)), "twice"),
    (((ALICE, -1),), "outside"),
    (((b"short", 1),), "32-byte"),
])
def test_genesis_state_is_validated(balances, message):
    with pytest.raises(ValueError, match=message):
        GenesisState("c", bytes(32), ISSUER, frozenset(BANKS), balances)


def test_a_real_genesis_maps_onto_the_ledger(tmp_path):
    from node.core.genesis import Bank, BoardMember, Genesis, GenesisBoard, GenesisValidator
    from node.core.tiers import Tier

    keys = [key(100 + i) for i in range(5)]
    genesis = Genesis(
        chain_id="som-map", genesis_time="2026-01-01T00:00:00Z", issuer=keys[0],
        banks=(Bank("bank", keys[1]),),
        validators=(GenesisValidator("v", keys[2], 1, "127.0.0.1:1", "127.0.0.1:2"),),
        balances=tuple(sorted([(keys[1], 500), (keys[3], 7)])),
        board=GenesisBoard(1, (BoardMember("chair", keys[4]),)),
        tiers=(Tier(0, "anonymous", 1_000, 100, 1_000), Tier(1, "basic KYC", 10_000, 1_000, 10_000)),
        wallets=((keys[3], 1),),
    )
    state = GenesisState.from_genesis(genesis)
    assert (state.chain_id, state.genesis_hash, state.issuer, state.banks) == (
        "som-map", genesis.hash(), keys[0], frozenset({keys[1]}))
    assert (state.validators, state.board, state.board_threshold, state.bank_names) == (
        ((keys[2], 1),), (keys[4],), 1, ((keys[1], "bank"),))
    assert (state.tiers, state.account_tiers) == (genesis.tiers, ((keys[3], 1),))
    with LedgerStore.open(tmp_path / "l", state) as store:
        assert funds(store, keys[1]) == (500, 0) and funds(store, keys[3]) == (7, 0)
        assert funds(store, keys[0]) == (0, 0) and funds(store, keys[2]) is None
        assert store.account(keys[3]).tier == 1 and store.account(keys[1]).tier == 0
        assert store.supply().outstanding == 507
