"""The validator set by height, as the host's parts ask for it, and who may hold a link."""

from __future__ import annotations

import hashlib

from node.core.actions import SetValidator
from node.core.governance import GovernanceTransaction
from node.host.validators import ValidatorSchedule
from node.ledger import LedgerStore
from tests.crash_writer import block_bytes, certificate_bytes
from tests.test_ledger_governance import BOARD, CHAIN_ID, VALIDATORS, genesis

JOINER = hashlib.sha256(b"joiner").digest()
STRANGER = hashlib.sha256(b"vouched stranger").digest()


def commit(store, *txs) -> None:
    height = store.height + 1
    store.apply_block(height, list(txs), block_bytes(height, list(txs)), certificate_bytes(height))


def add(sequence: int, key: bytes, power: int):
    tx = GovernanceTransaction(sequence, 1_000, SetValidator(key, power))
    return tx.signed([tx.approve(member, CHAIN_ID) for member in BOARD[:2]])


def test_each_height_gets_its_own_set(tmp_path):
    with LedgerStore.open(tmp_path / "l", genesis()) as store:
        schedule = ValidatorSchedule(store)
        commit(store, add(0, JOINER, 10))  # height 1: holds from 3
        assert JOINER not in schedule(2) and JOINER in schedule(3)
        assert schedule(1) is schedule(2), "one set is built once per schedule entry"


def test_links_follow_the_next_two_heights_and_vouched_keys_the_ledger_never_named(tmp_path):
    with LedgerStore.open(tmp_path / "l", genesis()) as store:
        schedule = ValidatorSchedule(store, vouched=frozenset({JOINER, STRANGER, VALIDATORS[3].public_key}))
        first = VALIDATORS[0].public_key
        assert schedule.admits(first) and schedule.admits(STRANGER) and schedule.admits(JOINER)
        assert not schedule.admits(hashlib.sha256(b"nobody").digest())
        commit(store, add(0, JOINER, 10))
        assert schedule.admits(JOINER), "admitted at once: it holds from the height after next"
        commit(store, add(1, VALIDATORS[3].public_key, 0))  # height 2: removed from 4
        commit(store)
        commit(store)
        assert not schedule.admits(VALIDATORS[3].public_key), "a vouch does not outlive the ledger's word"
        assert schedule.admits(STRANGER), "a vouched key the ledger never named is still admitted"
