"""The board's actions on the ledger, one rule and one receipt code at a time, against a real store."""

from __future__ import annotations

import hashlib

import pytest

from node.core.actions import (
    AddBank,
    RemoveBank,
    ReplaceIssuer,
    RotateValidatorKey,
    SetBoard,
    SetValidator,
    proof_bytes,
)
from node.core.governance import GovernanceTransaction, SignedGovernance
from node.core.keys import KeyPair
from node.core.tx import TxKind
from node.ledger import GenesisState, LedgerStore
from node.ledger.governance import moved_power
from tests.crash_writer import (
    BANKS,
    CHAIN_ID,
    GENESIS_HASH,
    HOLDERS,
    ISSUER,
    block_bytes,
    certificate_bytes,
    signed,
)

BOARD = tuple(KeyPair.from_seed(hashlib.sha256(b"board %d" % n).digest()) for n in range(3))
VALIDATORS = tuple(KeyPair.from_seed(hashlib.sha256(b"validator %d" % n).digest()) for n in range(5))
STRANGER = KeyPair.from_seed(hashlib.sha256(b"stranger").digest())
NEW_BANK = hashlib.sha256(b"new bank").digest()
ALICE = HOLDERS[0]

def funds(store, public_key):
    """The committed (balance, nonce) of an account, or None when it has none."""
    account = store.account(public_key)
    return None if account is None else (account.balance, account.nonce)



def genesis(validators: int = 4) -> GenesisState:
    return GenesisState(
        CHAIN_ID, GENESIS_HASH, ISSUER, frozenset(BANKS), tuple(sorted((h, 1_000_000) for h in HOLDERS[:4])),
        validators=tuple(sorted((v.public_key, 10) for v in VALIDATORS[:validators])),
        board=tuple(sorted(m.public_key for m in BOARD)), board_threshold=2,
        bank_names=((BANKS[0], "Bank One"), (BANKS[1], "Bank Two")),
    )


@pytest.fixture
def store(tmp_path):
    store = LedgerStore.open(tmp_path / "ledger", genesis())
    try:
        yield store
    finally:
        store.close()


def gov(sequence: int, action, signers=BOARD[:2], expiry: int = 1_000) -> SignedGovernance:
    tx = GovernanceTransaction(sequence, expiry, action)
    return tx.signed([tx.approve(key, CHAIN_ID) for key in signers])


def rotation(old: KeyPair, new: KeyPair) -> RotateValidatorKey:
    return RotateValidatorKey(old.public_key, new.public_key,
                              new.sign(proof_bytes(CHAIN_ID, old.public_key, new.public_key)))


def commit(store, *txs):
    height = store.height + 1
    result = store.apply_block(height, list(txs), block_bytes(height, list(txs)), certificate_bytes(height))
    return [receipt.code for receipt in result.receipts]


def powers(store, height: int) -> dict[bytes, int]:
    return dict(store.validators_at(height)[1])


def test_genesis_governance_is_the_genesis(store):
    state = store.governance
    assert state.sequence == 0
    assert state.board.threshold == 2 and set(state.board.members) == {m.public_key for m in BOARD}
    assert state.issuer == ISSUER
    assert dict(state.banks) == {BANKS[0]: "Bank One", BANKS[1]: "Bank Two"}
    assert store.validator_schedule() == ((1, tuple(sorted((v.public_key, 10) for v in VALIDATORS[:4]))),)


def test_adding_a_bank_lets_it_redeem_and_consumes_the_sequence(store):
    assert commit(store, signed(TxKind.REDEEM, NEW_BANK, 0, 1)) == ["unknown_account"]
    assert commit(store, gov(0, AddBank("Bank Three", NEW_BANK))) == ["ok"]
    assert store.governance.sequence == 1
    assert dict(store.governance.banks)[NEW_BANK] == "Bank Three"
    assert funds(store, NEW_BANK) == (0, 0)
    assert commit(store, signed(TxKind.TRANSFER, ALICE, 0, 100, NEW_BANK),
                  signed(TxKind.REDEEM, NEW_BANK, 0, 40)) == ["ok", "ok"]
    assert funds(store, NEW_BANK) == (60, 1)


def test_a_bank_is_added_once_under_one_name(store):
    assert commit(store, gov(0, AddBank("Bank Four", BANKS[0]))) == ["bank_exists"]
    assert commit(store, gov(1, AddBank("Bank One", NEW_BANK))) == ["bank_exists"]
    assert commit(store, gov(2, AddBank("Issuer's Bank", ISSUER))) == ["key_in_use"]
    assert store.governance.sequence == 3, "a refused action consumes its sequence: it cannot be replayed"
    assert NEW_BANK not in dict(store.governance.banks)


def test_removing_a_bank_ends_its_redemptions(store):
    assert commit(store, gov(0, RemoveBank(NEW_BANK))) == ["unknown_bank"]
    assert commit(store, signed(TxKind.TRANSFER, ALICE, 0, 100, BANKS[1])) == ["ok"]
    assert commit(store, gov(1, RemoveBank(BANKS[1]))) == ["ok"]
    assert commit(store, signed(TxKind.REDEEM, BANKS[1], 0, 10)) == ["unauthorised"]
    assert funds(store, BANKS[1]) == (100, 1), "its money stays; it only stops being a bank"


def test_the_sequence_is_the_boards_replay_protection(store):
    action = gov(0, AddBank("Bank Three", NEW_BANK))
    assert commit(store, gov(1, RemoveBank(BANKS[0]))) == ["bad_sequence"]
    assert store.governance.sequence == 0, "a wrong sequence changes nothing"
    assert commit(store, action) == ["ok"]
    assert commit(store, action) == ["bad_sequence"]
    assert [entry[:4] for entry in store.governance_history()] == [(0, 2, 0, "ok")]


def test_an_expired_action_changes_nothing(store):
    commit(store)
    commit(store)
    assert commit(store, gov(0, AddBank("Bank Three", NEW_BANK), expiry=2)) == ["expired"]
    assert store.governance.sequence == 0
    assert commit(store, gov(0, AddBank("Bank Three", NEW_BANK), expiry=4)) == ["ok"]


def test_authorisation_needs_threshold_many_board_members(store):
    action = AddBank("Bank Three", NEW_BANK)
    assert commit(store, gov(0, action, signers=BOARD[:1])) == ["too_few_signatures"]
    assert commit(store, gov(0, action, signers=(BOARD[0], STRANGER))) == ["not_board_signer"]
    assert commit(store, gov(0, action, signers=(VALIDATORS[0],))) == ["not_board_signer"]
    assert store.governance.sequence == 0
    assert commit(store, gov(0, action, signers=BOARD)) == ["ok"]


def test_a_validator_change_holds_from_two_heights_after_its_block(store):
    fifth = VALIDATORS[4].public_key
    assert commit(store, gov(0, SetValidator(fifth, 10))) == ["ok"]  # height 1
    assert fifth not in powers(store, 2)
    assert powers(store, 3)[fifth] == 10
    assert store.validators_at(3)[0] == 3
    assert [start for start, _ in store.validator_schedule()] == [1, 3]
    assert store.governance.validators_from == 3


def test_one_block_moves_less_than_a_third_of_the_power(store):
    fifth, stranger = VALIDATORS[4].public_key, STRANGER.public_key
    # 40 in the set: 14 is more than a third; 13 is not, but two additions together are.
    assert commit(store, gov(0, SetValidator(fifth, 14))) == ["power_change_too_large"]
    assert commit(store, gov(1, SetValidator(fifth, 7)), gov(2, SetValidator(stranger, 7))) == [
        "ok", "power_change_too_large"]
    assert powers(store, 4) == {**{v.public_key: 10 for v in VALIDATORS[:4]}, fifth: 7}
    # Removal moves power too: 10 of the 47 is less than a third, 20 is not.
    assert commit(store, gov(3, SetValidator(VALIDATORS[0].public_key, 0)),
                  gov(4, SetValidator(VALIDATORS[1].public_key, 0))) == ["ok", "power_change_too_large"]
    assert VALIDATORS[0].public_key not in powers(store, 5) and VALIDATORS[1].public_key in powers(store, 5)


def test_moved_power_is_the_larger_of_added_and_removed():
    a, b, c = b"a" * 32, b"b" * 32, b"c" * 32
    assert moved_power({a: 10, b: 10}, {a: 10, b: 10}) == 0
    assert moved_power({a: 10, b: 10}, {a: 10, b: 10, c: 4}) == 4
    assert moved_power({a: 10, b: 10}, {a: 10}) == 10
    assert moved_power({a: 10, b: 10}, {a: 10, c: 10}) == 10, "a swap moves its power once"
    assert moved_power({a: 10, b: 10}, {a: 3, b: 12}) == 7


def test_the_set_never_becomes_empty(tmp_path):
    with LedgerStore.open(tmp_path / "one", genesis(validators=1)) as store:
        only = VALIDATORS[0].public_key
        assert commit(store, gov(0, SetValidator(only, 0))) == ["empty_validator_set"]
        assert commit(store, gov(1, SetValidator(VALIDATORS[1].public_key, 0))) == ["unknown_validator"]
        assert powers(store, store.height + 2) == {only: 10}


def inapplicable(store, *txs) -> bool:
    """Whether a block carrying ``txs`` would be refused for a transaction that changes nothing."""
    return store.prepare(list(txs)).execution.inapplicable


def test_a_validator_rotates_its_own_key_without_the_boards_sequence(store):
    old, new = VALIDATORS[0], STRANGER
    own = gov(0, rotation(old, new), signers=(old,))
    assert commit(store, own) == ["ok"]
    after = powers(store, 3)
    assert old.public_key not in after and after[new.public_key] == 10
    assert store.governance.sequence == 0, "the board's sequence is the board's"
    assert commit(store, gov(0, AddBank("Bank Three", NEW_BANK))) == ["ok"]
    assert [entry[:5] for entry in store.governance_history()] == [
        (0, 1, 0, "ok", own.raw), (1, 2, 0, "ok", gov(0, AddBank("Bank Three", NEW_BANK)).raw)]


def test_a_self_rotation_that_fails_changes_nothing_and_no_block_may_carry_it(store):
    old = VALIDATORS[0]
    own = gov(0, rotation(old, STRANGER), signers=(old,))
    commit(store, own)
    # Replayed, the same bytes name a key that is retired now.
    assert inapplicable(store, own)
    assert commit(store, own) == ["unknown_validator"]
    assert store.governance.sequence == 0 and store.governance_history_size == 1
    # A rotation onto a key in use, and one carrying a sequence, change nothing either.
    for bad, code in ((gov(0, rotation(VALIDATORS[1], VALIDATORS[2]), signers=(VALIDATORS[1],)), "key_in_use"),
                      (gov(3, rotation(VALIDATORS[1], VALIDATORS[4]), signers=(VALIDATORS[1],)), "bad_sequence")):
        assert inapplicable(store, bad)
        assert commit(store, bad) == [code]
    assert store.governance_history_size == 1


def test_a_rotated_away_key_is_retired_for_good(store):
    a, b = VALIDATORS[0], STRANGER
    commit(store, gov(0, rotation(a, b), signers=(a,)))  # height 1: b holds from 3
    commit(store)
    # Back onto the retired key: refused, by the validator and by the board alike.
    assert commit(store, gov(0, rotation(b, a), signers=(b,))) == ["key_in_use"]
    assert commit(store, gov(0, rotation(b, a))) == ["key_in_use"]
    # A board action that names the retired key acts on its successor: no slipping away by rotating first.
    assert commit(store, gov(1, SetValidator(a.public_key, 12))) == ["ok"]
    assert powers(store, store.height + 2)[b.public_key] == 12 and a.public_key not in powers(store, store.height + 2)
    assert commit(store, gov(2, SetValidator(a.public_key, 0))) == ["ok"]
    assert b.public_key not in powers(store, store.height + 2)


def test_a_seat_rotates_once_at_a_time_by_its_own_hand(store):
    a, b, c = VALIDATORS[0], STRANGER, VALIDATORS[4]
    # In the block that rotates a to b, b does not hold at the next height yet.
    assert commit(store, gov(0, rotation(a, b), signers=(a,)), gov(0, rotation(b, c), signers=(b,))) == [
        "ok", "unknown_validator"]


def test_the_board_rotates_a_validators_key_and_a_rotation_needs_a_free_key(store):
    assert commit(store, gov(0, rotation(VALIDATORS[0], VALIDATORS[1]))) == ["key_in_use"]
    assert commit(store, gov(1, rotation(STRANGER, VALIDATORS[4]))) == ["unknown_validator"]
    assert commit(store, gov(2, rotation(VALIDATORS[0], VALIDATORS[4]))) == ["ok"]
    assert VALIDATORS[4].public_key in powers(store, store.height + 2)


def test_replacing_the_issuer_moves_the_right_to_issue(store):
    new_issuer = STRANGER.public_key
    assert commit(store, gov(0, ReplaceIssuer(BANKS[0]))) == ["key_in_use"]
    assert commit(store, gov(1, ReplaceIssuer(new_issuer))) == ["ok"]
    assert commit(store, signed(TxKind.ISSUE, ISSUER, 0, 5, ALICE)) == ["unauthorised"]
    assert commit(store, signed(TxKind.ISSUE, new_issuer, 0, 5, ALICE)) == ["ok"]
    assert store.governance.issuer == new_issuer


def test_the_board_replaces_itself(store):
    newcomer = STRANGER
    members = tuple(sorted((BOARD[0].public_key, newcomer.public_key)))
    assert commit(store, gov(0, SetBoard(1, members))) == ["ok"]
    assert commit(store, gov(1, AddBank("Bank Three", NEW_BANK), signers=(BOARD[2],))) == ["not_board_signer"]
    assert commit(store, gov(1, AddBank("Bank Three", NEW_BANK), signers=(newcomer,))) == ["ok"]


def test_governance_is_in_the_app_hash_and_survives_a_reopen(tmp_path):
    path = tmp_path / "ledger"
    with LedgerStore.open(path, genesis()) as store:
        plain = LedgerStore.open(tmp_path / "plain", genesis())
        commit(plain)
        assert commit(store, gov(0, AddBank("Bank Three", NEW_BANK))) == ["ok"]
        assert store.app_hash != plain.app_hash
        plain.close()
        commit(store, gov(1, SetValidator(VALIDATORS[4].public_key, 5)))
        state, schedule, hash_ = store.governance, store.validator_schedule(), store.app_hash
    with LedgerStore.open(path, genesis()) as store:
        assert (store.governance, store.validator_schedule(), store.app_hash) == (state, schedule, hash_)
        assert [entry[:4] for entry in store.governance_history()] == [(0, 1, 0, "ok"), (1, 2, 0, "ok")]
        assert [entry[0] for entry in store.governance_history(after=0)] == [1]
