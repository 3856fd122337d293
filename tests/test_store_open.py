"""Opening, reopening and refusing stores; heights; the bounded account cache."""

from __future__ import annotations

import dataclasses
import hashlib

import plyvel
import pytest

import tests.crash_writer as cw
from node.ledger import (
    LedgerCorruptError,
    LedgerHeightError,
    LedgerMismatchError,
    LedgerOpenError,
    LedgerStore,
)


def run_blocks(store, reference, seed, count, size_factor=1):
    for _ in range(count):
        height = store.height + 1
        txs = cw.make_block(seed, height, reference.nonce)
        codes = reference.apply(txs)
        result = store.apply_block(height, txs, cw.block_bytes(height, txs) * size_factor,
                                   cw.certificate_bytes(height))
        assert [r.code for r in result.receipts] == codes
        assert result.app_hash == reference.app_hash == store.app_hash


def assert_same_state(store, reference):
    assert store.height == reference.height
    assert store.app_hash == reference.app_hash
    supply = store.supply()
    assert (supply.issued, supply.redeemed) == (reference.issued, reference.redeemed)
    assert {pk: tuple(a) for pk, a in store.iter_accounts()} == reference.records()


def test_reopen_restores_everything(tmp_path):
    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        assert store.app_hash == reference.app_hash
        run_blocks(store, reference, seed=3, count=25)
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        assert_same_state(store, reference)
        assert (store.chain_id, store.genesis_hash, store.governance) == (
            genesis.chain_id, genesis.genesis_hash, genesis.governance())
        run_blocks(store, reference, seed=3, count=5)
        assert_same_state(store, reference)


@pytest.mark.parametrize("change", [
    {"chain_id": "som-other-chain"},
    {"genesis_hash": hashlib.sha256(b"other").digest()},
])
def test_refuses_a_store_of_another_chain(tmp_path, change):
    genesis = cw.genesis_state()
    LedgerStore.open(tmp_path / "l", genesis).close()
    with pytest.raises(LedgerMismatchError, match="belongs to chain"):
        LedgerStore.open(tmp_path / "l", dataclasses.replace(genesis, **change))
    LedgerStore.open(tmp_path / "l", genesis).close()  # the refusal released the lock


def test_refuses_a_store_another_process_holds(tmp_path):
    with LedgerStore.open(tmp_path / "l", cw.genesis_state()):
        with pytest.raises(LedgerOpenError, match="another node"):
            LedgerStore.open(tmp_path / "l", cw.genesis_state())


def test_refuses_a_directory_of_foreign_data(tmp_path):
    db = plyvel.DB(str(tmp_path / "l"), create_if_missing=True)
    db.put(b"something", b"else")
    db.close()
    with pytest.raises(LedgerCorruptError, match="no ledger schema"):
        LedgerStore.open(tmp_path / "l", cw.genesis_state())


@pytest.mark.parametrize("victim", ["CURRENT", "MANIFEST", ".ldb"])
def test_refuses_damaged_files(tmp_path, victim):
    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        run_blocks(store, reference, seed=5, count=20, size_factor=20)
        store._db.compact_range()  # push everything into table files
    damaged = [p for p in (tmp_path / "l").iterdir() if victim in p.name]
    assert damaged, f"no {victim} file to damage"
    for path in damaged:
        data = bytearray(path.read_bytes())
        for i in range(0, len(data), 97):
            data[i] ^= 0x55
        path.write_bytes(bytes(data))
    with pytest.raises(LedgerCorruptError, match="corrupt"):
        with LedgerStore.open(tmp_path / "l", genesis) as store:
            list(store.iter_accounts())


def test_heights_must_be_contiguous(tmp_path):
    with LedgerStore.open(tmp_path / "l", cw.genesis_state()) as store:
        with pytest.raises(LedgerHeightError):
            store.apply_block(2, [], b"b", b"c")
        store.apply_block(1, [], b"b", b"c")
        with pytest.raises(LedgerHeightError):
            store.apply_block(1, [], b"b", b"c")
        assert store.height == 1


def test_the_app_hash_is_the_state_root_whatever_blocks_led_to_it(tmp_path):
    """Empty blocks leave the state, and so its root, as it was; a payment changes both."""
    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        assert store.app_hash == reference.app_hash
        for height in range(1, 3):
            reference.apply([])
            assert store.apply_block(height, [], b"", b"").app_hash == reference.app_hash
        before = store.app_hash
        payer, payee = cw.HOLDERS[0], cw.HOLDERS[1]
        payment = [cw.signed(cw.TxKind.TRANSFER, payer, 0, 5, payee)]
        reference.apply(payment)
        assert store.apply_block(3, payment, b"", b"").app_hash == reference.app_hash != before


@pytest.mark.parametrize("cache_accounts", [1, 3, 10])
def test_a_tiny_account_cache_gives_the_same_results(tmp_path, cache_accounts):
    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    with LedgerStore.open(tmp_path / "l", genesis, cache_accounts=cache_accounts) as store:
        run_blocks(store, reference, seed=11, count=30)
        assert len(store._cache) <= cache_accounts
        assert_same_state(store, reference)


@pytest.mark.parametrize("key, value, message", [
    (b"mapp_hash", b"short", "wrong size"),
    (b"mheight", b"\x00" * 7 + b"\x09", "lacks that block"),
    (b"mschema", b"somnode-ledger-0", "schema"),
    (b"mtx_count", b"\x00" * 3, "wrong size"),
])
def test_refuses_inconsistent_meta_records(tmp_path, key, value, message):
    LedgerStore.open(tmp_path / "l", cw.genesis_state()).close()
    db = plyvel.DB(str(tmp_path / "l"))
    db.put(key, value)
    db.close()
    with pytest.raises(LedgerCorruptError, match=message):
        LedgerStore.open(tmp_path / "l", cw.genesis_state())


def test_a_damaged_account_record_is_found_when_the_store_opens(tmp_path):
    """Opening hashes every state record into the tree, and the root must be the stored app hash."""
    genesis = cw.genesis_state()
    LedgerStore.open(tmp_path / "l", genesis).close()
    db = plyvel.DB(str(tmp_path / "l"))
    record = db.get(b"a" + cw.HOLDERS[0])
    db.put(b"a" + cw.HOLDERS[0], bytes([record[0] ^ 1]) + record[1:])  # a well-formed record, one bit off
    db.close()
    with pytest.raises(LedgerCorruptError, match="not to the app hash"):
        LedgerStore.open(tmp_path / "l", genesis)
    db = plyvel.DB(str(tmp_path / "l"))
    db.put(b"a" + cw.HOLDERS[0], b"\x01\x02")
    db.close()
    with pytest.raises(LedgerCorruptError, match="an account record"):
        LedgerStore.open(tmp_path / "l", genesis)


def test_scrub_reads_every_record_and_stops_when_told(tmp_path):
    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        run_blocks(store, reference, seed=9, count=30)
        records = sum(1 for _ in store._db.iterator())
        assert store.scrub(lambda: False) == records
        assert store.scrub(lambda: True, records_per_check=1) is None


def test_scrub_finds_damage_that_opening_does_not_read(tmp_path):
    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        run_blocks(store, reference, seed=5, count=20, size_factor=20)
        store._db.compact_range()
        old_block = store.block(10)
    # Opening reads the state records, not old blocks: damage the middle of block 10's stored bytes
    # (transaction signatures, which compression leaves as they are).
    needle = old_block[len(old_block) // 2:len(old_block) // 2 + 48]
    table = next(p for p in (tmp_path / "l").glob("*.ldb") if needle in p.read_bytes())
    data = bytearray(table.read_bytes())
    at = data.find(needle)
    data[at:at + 16] = bytes(b ^ 0xFF for b in data[at:at + 16])
    table.write_bytes(bytes(data))
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        with pytest.raises(LedgerCorruptError, match="is corrupted"):
            store.scrub(lambda: False)


def test_the_committed_transaction_count_survives_reopening_and_is_rebuilt_for_older_stores(tmp_path):
    genesis = cw.genesis_state()
    reference = cw.ReferenceLedger(genesis)
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        assert store.committed_txs == 0
        run_blocks(store, reference, seed=3, count=12)
        counted = sum(len(store.receipts(h)) for h in range(1, store.height + 1))
        assert counted > 0 and store.committed_txs == counted
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        assert store.committed_txs == counted
    db = plyvel.DB(str(tmp_path / "l"))
    db.delete(b"mtx_count")  # as a store written before the count was kept
    db.close()
    with LedgerStore.open(tmp_path / "l", genesis) as store:
        assert store.committed_txs == counted
        run_blocks(store, reference, seed=4, count=3)
        counted = sum(len(store.receipts(h)) for h in range(1, store.height + 1))
        assert store.committed_txs == counted
