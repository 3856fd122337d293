"""valid(v) for proposed blocks: each refusal for its own reason, and a judged block committed as judged."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

import node.ledger.store
from consensus.validators import Validator, ValidatorSet
from node.core.keys import KeyPair
from node.core.tx import SignedTransaction, Transaction, TxKind
from node.host.proposer import block_on as proposed_block
from node.host.tip import Tip, read_tip
from node.host.validity import Candidate, CheckedBlock, Refusal, Validity
from node.ledger import LedgerStore
from node.ledger.state import GenesisState
from node.mempool.pool import Mempool
from tests.crash_writer import CHAIN_ID, GENESIS_HASH, ISSUER, genesis_state

PROPOSER = KeyPair.from_seed(b"p" * 32)
ALICE, BOB = KeyPair.from_seed(b"a" * 32), KeyPair.from_seed(b"b" * 32)
VALIDATORS = ValidatorSet([Validator(PROPOSER.public_key, 1)])


def funded_store(path) -> LedgerStore:
    """A fresh ledger in which ALICE and BOB hold 1,000 tyiyn each (also the intake tests')."""
    return LedgerStore.open(path / "ledger", GenesisState(
        CHAIN_ID, GENESIS_HASH, ISSUER, frozenset(),
        tuple(sorted([(ALICE.public_key, 1_000), (BOB.public_key, 1_000)]))))


@pytest.fixture
def store(tmp_path):
    opened = funded_store(tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def validity(store, batch_verifier):
    return Validity(store, batch_verifier, lambda height: VALIDATORS)


def transfer(sender: KeyPair, nonce: int, amount: int = 5) -> SignedTransaction:
    recipient = BOB if sender is ALICE else ALICE
    return Transaction(TxKind.TRANSFER, sender.public_key, nonce, amount, recipient.public_key).sign(sender, CHAIN_ID)


def block_on(tip: Tip, txs: list[SignedTransaction], *, raws: tuple[bytes, ...] = (), **changes: object) -> bytes:
    """A block on ``tip``, its header fields replaced by ``changes``."""
    block = proposed_block(tip, CHAIN_ID, PROPOSER.public_key, tip.time_ms + 1, tuple(stx.raw for stx in txs) + raws)
    return dataclasses.replace(block, header=dataclasses.replace(block.header, **changes)).encode()  # type: ignore[arg-type]


def judge(validity: Validity, store: LedgerStore, value: bytes):
    return validity.judge(read_tip(store), asyncio.run(validity.prepare(value)))


def test_a_valid_block_is_judged_with_the_execution_its_commit_applies(validity, store, monkeypatch):
    value = block_on(read_tip(store), [transfer(ALICE, 0), transfer(BOB, 0)])
    checked = judge(validity, store, value)
    assert isinstance(checked, CheckedBlock) and checked.parent == read_tip(store)
    executed = []
    real = node.ledger.store.execute
    monkeypatch.setattr(node.ledger.store, "execute", lambda *a, **k: executed.append(1) or real(*a, **k))
    result = store.apply(checked.prepared, checked.value, b"certificate")
    assert executed == [], "a judged block is written as judged, not executed again"
    assert result.app_hash == checked.prepared.app_hash == store.app_hash
    assert store.account(ALICE.public_key).balance == 1_000


@pytest.mark.parametrize(("reason", "change"), [
    (Refusal.WRONG_CHAIN, dict(chain_id="another-chain")),
    (Refusal.WRONG_HEIGHT, dict(height=2)),
    (Refusal.NOT_A_VALIDATOR, dict(proposer=ALICE.public_key)),
    (Refusal.WRONG_PARENT, dict(previous_block_hash=b"\x01" * 32)),
    (Refusal.WRONG_APP_HASH, dict(previous_app_hash=b"\x02" * 32)),
    (Refusal.WRONG_RESULTS_HASH, dict(previous_results_hash=b"\x03" * 32)),
    (Refusal.WRONG_NEXT_VALIDATORS, dict(next_validators_hash=b"\x04" * 32)),
    (Refusal.MALFORMED, dict(tx_root=b"\x05" * 32)),
    (Refusal.MALFORMED, dict(tx_count=2)),
])
def test_a_block_with_a_wrong_header_is_refused_for_that_reason(validity, store, reason, change):
    assert judge(validity, store, block_on(read_tip(store), [transfer(ALICE, 0)], **change)) is reason


def test_each_content_fault_is_refused_for_its_own_reason(validity, store):
    tip = read_tip(store)
    assert judge(validity, store, b"\x93not a block") is Refusal.MALFORMED
    twice = transfer(ALICE, 0)
    assert judge(validity, store, block_on(tip, [twice, twice])) is Refusal.DUPLICATE_TX
    forged = transfer(ALICE, 0).raw[:-64] + bytes(64)  # canonical, but the signature is zeros
    assert judge(validity, store, block_on(tip, [], raws=(forged,))) is Refusal.BAD_SIGNATURE
    assert judge(validity, store, block_on(tip, [transfer(ALICE, 3)])) is Refusal.INAPPLICABLE_TX


def test_a_block_older_than_its_parent_is_refused(validity, store):
    first = judge(validity, store, block_on(read_tip(store), [], time_ms=5_000))
    assert isinstance(first, CheckedBlock)
    store.apply(first.prepared, first.value, b"certificate")
    assert judge(validity, store, block_on(read_tip(store), [], time_ms=4_999)) is Refusal.TIME_BEFORE_PARENT


def test_a_transfer_checked_at_admission_is_not_checked_again_in_a_proposal(tmp_path, batch_verifier):
    """Mempool and validity key the verifier's cache by transaction hash, so the two paths share it:
    even a transfer that has left the mempool costs no second verification when a block carries it."""
    genesis = genesis_state()
    with LedgerStore.open(tmp_path / "ledger", GenesisState(
            genesis.chain_id, genesis.genesis_hash, genesis.issuer, genesis.banks,
            tuple(sorted([(ALICE.public_key, 1_000), (BOB.public_key, 1_000)])))) as store:
        mempool = Mempool(chain_id=store.chain_id, verifier=batch_verifier, account=lambda key: (1_000, 0, 0, 0),
                          governance=lambda: store.governance, max_txs=10, max_bytes=1 << 20)
        transfers = [transfer(ALICE, 0), transfer(BOB, 0)]
        results = asyncio.run(mempool.add_batch([stx.raw for stx in transfers]))
        assert [r.code for r in results] == ["accepted", "accepted"]
        verified = batch_verifier.stats.verified
        value = block_on(read_tip(store), transfers)
        # This Validity knows no mempool.
        candidate = asyncio.run(Validity(store, batch_verifier, lambda height: VALIDATORS).prepare(value))
        assert candidate.signatures_valid
        assert batch_verifier.stats.verified == verified


def test_a_transaction_from_the_mempool_is_taken_as_admitted(store, batch_verifier):
    stx = transfer(ALICE, 0)
    validity = Validity(store, batch_verifier, lambda height: VALIDATORS,
                        known=lambda tx_hash: stx if tx_hash == stx.hash else None)
    before = batch_verifier.stats.signatures
    candidate: Candidate = asyncio.run(validity.prepare(block_on(read_tip(store), [stx])))
    assert candidate.txs == (stx,) and candidate.txs[0] is stx
    assert batch_verifier.stats.signatures == before, "nothing was asked of the verifier"
