"""What Chain remembers between consensus steps: the same answers as computing afresh, with less hashing."""

from __future__ import annotations

import asyncio

import pytest

import node.host.validity
from node.core.block import block_hash, decode_block
from node.core.keys import KeyPair
from node.core.tx import Transaction, TxKind
from node.host.validity import Chain
from node.ledger import LedgerStore
from node.ledger.state import GenesisState
from node.mempool.pool import Mempool
from node.verifier.scheduler import BatchVerifier
from tests.crash_writer import HOLDERS, certificate_bytes, genesis_state, signed

PROPOSER = b"\x07" * 32


@pytest.fixture
def chain(tmp_path):
    store = LedgerStore.open(tmp_path / "ledger", genesis_state())
    verifier = BatchVerifier(threads=1)
    try:
        yield Chain(store, verifier, frozenset({PROPOSER}))
    finally:
        verifier.close()
        store.close()


def commit(chain: Chain, value: bytes, tell: bool = True) -> None:
    decoded = chain.decode(value)
    height = chain.store.height + 1
    chain.store.apply_block(height, decoded.txs, value, certificate_bytes(height))
    if tell:
        chain.committed(height, block_hash(value), decoded.block)


@pytest.mark.parametrize("tell", [True, False], ids=["told by the commit", "read from the store"])
def test_the_parent_follows_each_commit(chain, tell):
    assert (chain.parent_hash(), chain.parent_time_ms()) == (chain.store.genesis_hash, 0)
    # A clock that went back (4,000 after 5,000) still gives a block no older than its parent.
    for height, now_ms, time_ms in [(1, 1_000, 1_000), (2, 5_000, 5_000), (3, 4_000, 5_000)]:
        transfer = signed(TxKind.TRANSFER, HOLDERS[0], height - 1, 5, HOLDERS[1])
        value = chain.build(height, PROPOSER, now_ms, [transfer])
        assert chain.is_valid(height, value)
        commit(chain, value, tell)
        assert chain.parent_hash() == block_hash(value)
        assert chain.parent_time_ms() == decode_block(value).time_ms == time_ms


def test_a_commit_that_tells_the_chain_spares_reading_the_tip_back(chain, monkeypatch):
    value = chain.build(1, PROPOSER, 1_000, [signed(TxKind.TRANSFER, HOLDERS[0], 0, 5, HOLDERS[1])])
    commit(chain, value)
    monkeypatch.setattr(chain.store, "block", lambda height: pytest.fail("the tip was read back from the store"))
    assert (chain.parent_hash(), chain.parent_time_ms()) == (block_hash(value), 1_000)


def test_a_value_is_hashed_once_while_it_is_passed_around(chain, monkeypatch):
    value = chain.build(1, PROPOSER, 1_000, [])
    copy = bytes(bytearray(value))  # equal bytes, another object: hashed for itself, same answer
    calls = []

    def counted(raw: bytes) -> bytes:
        calls.append(raw)
        return block_hash(raw)

    monkeypatch.setattr(node.host.validity, "block_hash", counted)
    for _ in range(3):
        assert chain.decode(value) is chain.decode(value)
        assert chain.is_valid(1, value)
    assert calls == []  # build hashed it already
    assert chain.decode(copy) is chain.decode(value)
    assert calls == [copy]
    chain.parent_hash(), chain.parent_time_ms(), chain.parent_hash()
    assert calls == [copy], "the genesis parent needs no hashing"


def test_a_transfer_checked_at_admission_is_not_checked_again_in_a_proposal(tmp_path):
    """Mempool and Chain key the verifier's cache by transaction hash, so the two paths share it:
    even a transfer that has left the mempool costs no second verification when a block carries it."""
    alice, bob = KeyPair.from_seed(b"a" * 32), KeyPair.from_seed(b"b" * 32)
    genesis = genesis_state()
    store = LedgerStore.open(tmp_path / "ledger", GenesisState(
        genesis.chain_id, genesis.genesis_hash, genesis.issuer, genesis.banks,
        tuple(sorted([(alice.public_key, 1_000), (bob.public_key, 1_000)]))))
    verifier = BatchVerifier(threads=1)
    try:
        chain = Chain(store, verifier, frozenset({PROPOSER}))  # knows no mempool
        mempool = Mempool(chain_id=store.chain_id, verifier=verifier, account=lambda key: (1_000, 0),
                          issuer=genesis.issuer, banks=frozenset(), max_txs=10, max_bytes=1 << 20)
        transfers = [Transaction(TxKind.TRANSFER, alice.public_key, 0, 5, bob.public_key).sign(alice, store.chain_id),
                     Transaction(TxKind.TRANSFER, bob.public_key, 0, 5, alice.public_key).sign(bob, store.chain_id)]
        results = asyncio.run(mempool.add_batch([stx.raw for stx in transfers]))
        assert [r.code for r in results] == ["accepted", "accepted"]
        verified = verifier.stats.verified
        assert verified == 2
        value = Chain(store, verifier, frozenset({PROPOSER})).build(1, PROPOSER, 1_000, transfers)
        # As a peer's proposal arrives at a node whose mempool no longer has the transfers.
        assert len(chain.decode(value).unchecked) == 2
        asyncio.run(chain.preverify(value))
        assert chain.is_valid(1, value)
        assert verifier.stats.verified == verified
        assert verifier.stats.cache_hits >= 4
    finally:
        verifier.close()
        store.close()
