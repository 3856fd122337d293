"""State proofs served by the store: each kept height proves its own records against its own root."""

from __future__ import annotations

import pytest

import tests.crash_writer as cw
from node.core.state_proof import ProofError, verify
from node.ledger import LedgerStore
from node.ledger import layout as k
from node.ledger.errors import LedgerHeightError

KEPT = 5


def test_every_kept_height_proves_its_records_and_absences_against_its_root(tmp_path):
    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    roots, states = {0: reference.app_hash}, {0: dict(reference.state)}
    with LedgerStore.open(tmp_path / "l", genesis, proof_heights=KEPT) as store:
        for height in range(1, 12):
            txs = cw.make_block(3, height, reference.nonce)
            reference.apply(txs)
            store.apply_block(height, txs, cw.block_bytes(height, txs), cw.certificate_bytes(height))
            roots[height], states[height] = store.app_hash, dict(reference.state)
        assert store.provable_heights() == (11 - KEPT + 1, 11)
        absent = k.account_key(cw.key(999))
        for height in range(11 - KEPT + 1, 12):
            for key in [*states[height], absent]:
                value, proof, root = store.state_proof(key, height)
                assert root == roots[height] and value == states[height].get(key)
                verify(root, key, value, proof)
            # A record of another height's value does not verify at this one.
            payer = k.account_key(cw.HOLDERS[0])
            if states[height][payer] != states[height - 1][payer]:
                with pytest.raises(ProofError):
                    verify(roots[height], payer, states[height - 1][payer], store.state_proof(payer, height)[1])
        for height in (0, 11 - KEPT, 12):
            with pytest.raises(LedgerHeightError, match="not kept"):
                store.state_proof(absent, height)


def test_a_reopened_store_proves_its_committed_height(tmp_path):
    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        for height in range(1, 4):
            txs = cw.make_block(5, height, reference.nonce)
            reference.apply(txs)
            store.apply_block(height, txs, cw.block_bytes(height, txs), cw.certificate_bytes(height))
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        assert store.provable_heights() == (3, 3)
        key = k.account_key(cw.HOLDERS[1])
        value, proof, root = store.state_proof(key, 3)
        assert value == reference.state[key] and root == reference.app_hash
        verify(root, key, value, proof)


def test_a_height_the_window_leaves_while_it_is_being_proven_reads_as_not_kept(tmp_path):
    """``state_proof`` picks the height's version, then proves it: a commit on another thread in
    between may drop that version's undo, and the prover must hear "not kept", not a crash."""
    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    with LedgerStore.open(tmp_path / "l", genesis, proof_heights=2) as store:
        def commit(height: int) -> None:
            txs = cw.make_block(3, height, reference.nonce)
            reference.apply(txs)
            store.apply_block(height, txs, cw.block_bytes(height, txs), cw.certificate_bytes(height))

        commit(1)
        commit(2)
        picked = store._versions  # what state_proof reads first
        commit(3)
        store._versions = picked  # as if the prover picked its version just before this commit
        with pytest.raises(LedgerHeightError, match="no longer kept"):
            store.state_proof(k.account_key(cw.HOLDERS[0]), 1)


def test_a_block_prepared_on_another_store_is_refused_before_anything_is_written(tmp_path):
    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    with LedgerStore.open(tmp_path / "a", genesis) as one, LedgerStore.open(tmp_path / "b", genesis) as other:
        txs = cw.make_block(3, 1, reference.nonce)
        prepared = one.prepare(txs)
        with pytest.raises(LedgerHeightError, match="prepared on another state"):
            other.apply(prepared, cw.block_bytes(1, txs), cw.certificate_bytes(1))
        assert other.height == 0 and other.block(1) is None and other.app_hash == one.app_hash
        one.apply(prepared, cw.block_bytes(1, txs), cw.certificate_bytes(1))
        assert one.height == 1
