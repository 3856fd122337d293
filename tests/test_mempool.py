"""Mempool admission, ordering and commit handling against a dictionary of committed state."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from node.app.assembly import client_share
from node.app.metrics import NodeMetrics
from node.core.actions import DefineTier, Scope
from node.core.governance import GovernanceTransaction
from node.core.keys import KeyPair
from node.core.tiers import Tier
from node.core.tx import SignedTransaction, Transaction, TxKind
from node.ledger.state import GenesisState
from node.mempool.pool import Mempool
from node.mempool.results import AdmitResult
from node.verifier.scheduler import BatchVerifier

CHAIN = "som-test"
SEEDS = [bytes([i]) * 32 for i in range(1, 7)]
ISSUER, BANK, ALICE, BOB, CAROL, DAVE = (KeyPair.from_seed(s) for s in SEEDS)
GOVERNANCE = GenesisState(CHAIN, bytes(32), ISSUER.public_key, frozenset({BANK.public_key}), ()).governance()


class RecordingVerifier:
    """The node's BatchVerifier, recording the size of each batch the mempool hands it."""

    def __init__(self, inner: BatchVerifier) -> None:
        self.inner = inner
        self.batches: list[int] = []

    async def verify_batch(self, items: Sequence[tuple[bytes, bytes, bytes]], *,
                           keys: Sequence[bytes] | None = None) -> list[bool]:
        self.batches.append(len(items))
        return await self.inner.verify_batch(items, keys=keys)


@pytest.fixture
def verifier(batch_verifier: BatchVerifier) -> RecordingVerifier:
    return RecordingVerifier(batch_verifier)


class Ledger:
    """Committed state: public key -> [balance, next nonce], and the tiers and freeze flags of some."""

    def __init__(self, balances: dict[bytes, int]) -> None:
        self.accounts = {pk: [balance, 0] for pk, balance in balances.items()}
        self.tiers: dict[bytes, int] = {}
        self.flags: dict[bytes, int] = {}

    def lookup(self, public_key: bytes) -> tuple[int, int, int, int]:
        balance, nonce = self.accounts.get(public_key, [0, 0])
        return balance, nonce, self.tiers.get(public_key, 0), self.flags.get(public_key, 0)

    def apply(self, stx: SignedTransaction) -> None:
        """A simplified ledger: the nonce is consumed, then the debit and credit happen if funds allow."""
        tx = stx.tx
        sender = self.accounts.setdefault(tx.sender, [0, 0])
        assert tx.nonce == sender[1], "the mempool proposed an out-of-order nonce"
        sender[1] += 1
        debit = 0 if tx.kind is TxKind.ISSUE else tx.amount
        if debit > sender[0]:
            return
        sender[0] -= debit
        if tx.recipient is not None:
            self.accounts.setdefault(tx.recipient, [0, 0])[0] += tx.amount


def make_pool(ledger: Ledger, verifier: RecordingVerifier | BatchVerifier, governance=lambda: GOVERNANCE,
              **limits: int) -> Mempool:
    return Mempool(
        chain_id=CHAIN,
        verifier=verifier,
        account=ledger.lookup,
        governance=governance,
        max_txs=limits.get("max_txs", 10_000),
        max_bytes=limits.get("max_bytes", 10_000_000),
        max_pending_per_account=limits.get("max_pending_per_account", 1000),
        max_client_txs=limits.get("max_client_txs"),
    )


def transfer(key: KeyPair, nonce: int, amount: int, to: KeyPair = DAVE, memo: str = "", chain: str = CHAIN
             ) -> SignedTransaction:
    return Transaction(TxKind.TRANSFER, key.public_key, nonce, amount, to.public_key, memo).sign(key, chain)


def issue(key: KeyPair, nonce: int, amount: int, to: KeyPair = BANK) -> SignedTransaction:
    return Transaction(TxKind.ISSUE, key.public_key, nonce, amount, to.public_key).sign(key, CHAIN)


def redeem(key: KeyPair, nonce: int, amount: int) -> SignedTransaction:
    return Transaction(TxKind.REDEEM, key.public_key, nonce, amount).sign(key, CHAIN)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger({ALICE.public_key: 1_000, BOB.public_key: 500, BANK.public_key: 10_000})


def codes(results: list[AdmitResult]) -> list[str]:
    return [r.code for r in results]


async def test_accepts_a_valid_transfer(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    stx = transfer(ALICE, 0, 100)
    [result] = await pool.add_batch([stx.raw])
    assert result == AdmitResult(stx.hash, True, "accepted", "accepted")
    assert stx.hash in pool and len(pool) == 1
    assert pool.get(stx.hash) == stx
    assert pool.size_bytes == len(stx.raw)
    assert pool.pending_nonce(ALICE.public_key) == 1
    assert pool.pending_nonce(CAROL.public_key) == 0


async def test_duplicates_are_idempotent_and_not_reverified(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    stx = transfer(ALICE, 0, 100)
    first = await pool.add_batch([stx.raw, stx.raw])
    assert codes(first) == ["accepted", "duplicate"]
    assert all(r.accepted and r.tx_hash == stx.hash for r in first)
    again = await pool.add_batch([stx.raw])
    assert codes(again) == ["duplicate"]
    assert verifier.batches == [1]
    assert len(pool) == 1


async def test_a_repeated_copy_shares_the_fate_of_the_first(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    forged = transfer(ALICE, 0, 100, chain="som-other")
    gap = transfer(ALICE, 9, 1)
    results = await pool.add_batch([forged.raw, gap.raw, forged.raw, gap.raw])
    assert codes(results) == ["invalid_signature", "nonce_gap", "invalid_signature", "nonce_gap"]
    assert not any(r.accepted for r in results)


async def test_one_verification_call_per_batch(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    raws = [transfer(ALICE, n, 1).raw for n in range(5)] + [transfer(BOB, n, 1).raw for n in range(3)]
    assert codes(await pool.add_batch(raws)) == ["accepted"] * 8
    assert verifier.batches == [8]


async def test_decode_errors_keep_their_codes(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    good = transfer(ALICE, 0, 100)
    results = await pool.add_batch([b"\xc1", good.raw + b"\x00", b"", good.raw])
    assert codes(results) == ["malformed", "malformed", "malformed", "accepted"]
    assert results[0].tx_hash is None and not results[0].accepted and results[0].message


async def test_bad_signature_is_refused(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    other_chain = transfer(ALICE, 0, 100, chain="som-other")
    [result] = await pool.add_batch([other_chain.raw])
    assert (result.accepted, result.code) == (False, "invalid_signature")
    assert len(pool) == 0


async def test_authorisation(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    results = await pool.add_batch([
        issue(ALICE, 0, 5).raw,            # only the issuer issues
        redeem(ALICE, 0, 5).raw,           # only a bank (or the issuer) redeems
        transfer(BOB, 0, 5, to=BOB).raw,   # self transfer is pointless and refused
        issue(ISSUER, 0, 1_000_000).raw,   # the issuer needs no balance to issue
        redeem(BANK, 0, 5).raw,
    ])
    assert codes(results) == ["unauthorised", "unauthorised", "self_transfer", "accepted", "accepted"]


async def test_nonces_must_continue_the_pending_queue(ledger: Ledger, verifier: RecordingVerifier) -> None:
    ledger.accounts[ALICE.public_key][1] = 3
    pool = make_pool(ledger, verifier)
    assert codes(await pool.add_batch([transfer(ALICE, 2, 1).raw])) == ["stale_nonce"]
    assert codes(await pool.add_batch([transfer(ALICE, 4, 1).raw])) == ["nonce_gap"]
    assert codes(await pool.add_batch([transfer(ALICE, 3, 1).raw])) == ["accepted"]
    assert codes(await pool.add_batch([transfer(ALICE, 3, 2).raw])) == ["stale_nonce"]
    assert codes(await pool.add_batch([transfer(ALICE, 5, 1).raw])) == ["nonce_gap"]
    assert codes(await pool.add_batch([transfer(ALICE, 4, 1).raw])) == ["accepted"]
    assert pool.pending_nonce(ALICE.public_key) == 5


async def test_a_batch_need_not_be_sorted_by_nonce(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    txs = [transfer(ALICE, n, 1) for n in (2, 0, 1)]
    assert codes(await pool.add_batch([t.raw for t in txs])) == ["accepted"] * 3


async def test_balance_covers_pending_spends(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)  # Alice holds 1000
    results = await pool.add_batch([transfer(ALICE, 0, 600).raw, transfer(ALICE, 1, 401).raw])
    assert codes(results) == ["accepted", "insufficient_funds"]
    # People read the message, and people count in som.
    assert results[1].message == "balance 10.00 som with 6.00 som pending does not cover 4.01 som"
    assert codes(await pool.add_batch([transfer(ALICE, 1, 400).raw])) == ["accepted"]
    assert codes(await pool.add_batch([transfer(ALICE, 2, 1).raw])) == ["insufficient_funds"]
    assert codes(await pool.add_batch([transfer(CAROL, 0, 1).raw])) == ["insufficient_funds"]


async def test_a_full_pool_spends_no_signature_checks(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier, max_txs=2)
    await pool.add_batch([transfer(ALICE, n, 1).raw for n in range(2)])
    checked = sum(verifier.batches)
    forged = transfer(BOB, 0, 1)
    forged = forged.raw[:-1] + bytes([forged.raw[-1] ^ 1])  # a broken signature: never admitted either way
    results = await pool.add_batch([transfer(ALICE, 2, 1).raw, forged, transfer(BOB, 5, 1).raw])
    assert codes(results) == ["mempool_full", "mempool_full", "nonce_gap"]
    assert sum(verifier.batches) == checked
    assert len(pool) == 2


async def test_gossip_is_admitted_like_a_submission_until_the_pool_is_full(
        ledger: Ledger, verifier: RecordingVerifier, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = make_pool(ledger, verifier, max_txs=2)
    await pool.add_gossip([transfer(ALICE, 0, 1).raw, transfer(ALICE, 1, 2000).raw])
    assert len(pool) == 1 and pool.gossip_dropped == 0  # checked as usual: the overdraft is refused
    await pool.add_gossip([transfer(ALICE, 1, 1).raw, transfer(ALICE, 2, 1).raw])
    assert len(pool) == 2 and pool.gossip_dropped == 0  # room for one: the other is refused as usual
    checked = sum(verifier.batches)

    def no_decoding(raw: bytes) -> None:
        raise AssertionError("a full pool decoded relayed transactions")
    monkeypatch.setattr("node.mempool.pool.decode_tx", no_decoding)
    await pool.add_gossip([transfer(ALICE, 2, 1).raw, transfer(BOB, 0, 1).raw, b"junk"])
    assert len(pool) == 2 and pool.gossip_dropped == 3 and sum(verifier.batches) == checked


async def test_clients_fill_their_share_and_relayed_transactions_the_rest(
        ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier, max_txs=4, max_client_txs=2)
    results = await pool.add_batch([transfer(ALICE, n, 1).raw for n in range(3)])
    assert codes(results) == ["accepted", "accepted", "mempool_full"]
    await pool.add_gossip([transfer(BOB, n, 1).raw for n in range(3)])
    assert len(pool) == 4 and pool.gossip_dropped == 0  # relayed: up to max_txs, the third refused
    checked = sum(verifier.batches)
    results = await pool.add_batch([transfer(ALICE, 2, 1).raw])
    assert codes(results) == ["mempool_full"] and sum(verifier.batches) == checked  # full on arrival: unverified
    await pool.add_gossip([transfer(BOB, 2, 1).raw])
    assert len(pool) == 4 and pool.gossip_dropped == 1


def test_a_client_share_above_the_pool_is_refused(ledger: Ledger, verifier: RecordingVerifier) -> None:
    with pytest.raises(ValueError, match="max_client_txs cannot exceed max_txs"):
        make_pool(ledger, verifier, max_txs=4, max_client_txs=5)
    with pytest.raises(ValueError, match="must be positive"):
        make_pool(ledger, verifier, max_txs=4, max_client_txs=0)


def test_with_other_validators_clients_get_half_the_pool() -> None:
    assert [client_share(10_000, n) for n in (1, 2, 4)] == [10_000, 5_000, 5_000]
    assert client_share(1, 4) == 1


async def test_full_by_count_and_by_bytes(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier, max_txs=2)
    results = await pool.add_batch([transfer(ALICE, n, 1).raw for n in range(3)])
    assert codes(results) == ["accepted", "accepted", "mempool_full"]
    assert not results[2].accepted and results[2].tx_hash is not None
    # A bad transaction still gets its own error, not "mempool_full".
    assert codes(await pool.add_batch([transfer(BOB, 7, 1).raw])) == ["nonce_gap"]

    one = transfer(ALICE, 0, 1)
    pool = make_pool(ledger, verifier, max_bytes=len(one.raw) + 10)
    results = await pool.add_batch([one.raw, transfer(ALICE, 1, 1).raw])
    assert codes(results) == ["accepted", "mempool_full"]
    assert pool.size_bytes <= len(one.raw) + 10


async def test_pending_limit_per_account(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier, max_pending_per_account=2)
    results = await pool.add_batch([transfer(ALICE, n, 1).raw for n in range(3)] + [transfer(BOB, 0, 1).raw])
    assert codes(results) == ["accepted", "accepted", "too_many_pending", "accepted"]


async def test_concurrent_batches_admit_a_transaction_once(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    stx = transfer(ALICE, 0, 1)
    a, b = await asyncio.gather(pool.add_batch([stx.raw]), pool.add_batch([stx.raw]))
    assert sorted(codes(a + b)) == ["accepted", "duplicate"]
    assert len(pool) == 1 and pool.size_bytes == len(stx.raw)


async def test_reap_is_round_robin_in_nonce_order(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    alice = [transfer(ALICE, n, 1) for n in range(3)]
    bob = [transfer(BOB, n, 1, to=ALICE) for n in range(2)]
    await pool.add_batch([alice[0].raw, bob[0].raw, alice[1].raw, alice[2].raw, bob[1].raw])
    assert pool.reap(100, 1_000_000) == [alice[0], bob[0], alice[1], bob[1], alice[2]]
    assert pool.reap(3, 1_000_000) == [alice[0], bob[0], alice[1]]
    size = len(alice[0].raw)
    assert len(pool.reap(100, 2 * size)) == 2
    assert pool.reap(0, 1_000_000) == [] and pool.reap(10, 0) == []
    assert len(pool) == 5  # reaping proposes, it does not remove


async def test_update_drops_committed_and_rechecks(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    alice = [transfer(ALICE, n, 300) for n in range(3)]
    bob = [transfer(BOB, n, 100, to=CAROL) for n in range(2)]
    await pool.add_batch([t.raw for t in alice + bob])
    assert len(pool) == 5

    # Alice's first two commit; meanwhile she lost funds elsewhere, so her third no longer fits.
    for stx in alice[:2]:
        ledger.apply(stx)
    ledger.accounts[ALICE.public_key][0] = 250
    pool.update(alice[:2])
    assert alice[0].hash not in pool and alice[1].hash not in pool
    assert alice[2].hash not in pool
    assert all(t.hash in pool for t in bob)
    assert pool.size_bytes == sum(len(t.raw) for t in bob)
    assert pool.pending_nonce(ALICE.public_key) == 2

    # A conflicting transaction from Bob (same nonce, other content) commits: his pending nonce 0 is stale,
    # nonce 1 still follows the committed state and stays.
    conflicting = transfer(BOB, 0, 50, to=DAVE)
    ledger.apply(conflicting)
    pool.update([conflicting])
    assert bob[0].hash not in pool and bob[1].hash in pool
    assert pool.reap(10, 1_000_000) == [bob[1]]


async def test_update_drops_the_tail_that_no_longer_fits(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    alice = [transfer(ALICE, n, 1) for n in range(3)]
    await pool.add_batch([t.raw for t in alice])
    ledger.accounts[ALICE.public_key][0] = 2  # nothing of Alice committed, but a block touched her and she has less
    credit = transfer(BOB, 0, 1, to=ALICE)
    pool.update([credit])
    assert [t.hash in pool for t in alice] == [True, True, False]


async def test_committed_spends_stop_counting_as_pending(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    spend, kept = transfer(ALICE, 0, 100), transfer(ALICE, 1, 50)
    await pool.add_batch([spend.raw, kept.raw])
    credit = transfer(BOB, 0, 500, to=ALICE)
    for stx in (spend, credit):
        ledger.apply(stx)
    pool.update([spend, credit])  # Alice now holds 1400 with 50 pending: 1350 is spendable
    assert codes(await pool.add_batch([transfer(ALICE, 2, 1351).raw])) == ["insufficient_funds"]
    assert codes(await pool.add_batch([transfer(ALICE, 2, 1350).raw])) == ["accepted"]


async def test_update_refreshes_credits_of_recipients(ledger: Ledger, verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    ledger.accounts[CAROL.public_key] = [10, 0]
    await pool.add_batch([transfer(CAROL, 0, 10).raw])
    assert codes(await pool.add_batch([transfer(CAROL, 1, 5).raw])) == ["insufficient_funds"]
    credit = transfer(ALICE, 0, 5, to=CAROL)
    ledger.apply(credit)
    pool.update([credit])
    assert codes(await pool.add_batch([transfer(CAROL, 1, 5).raw])) == ["accepted"]


# ---- randomised: reap never breaks nonce order or bounds, across admissions and commits

ACCOUNTS = [ALICE, BOB, CAROL, DAVE]
_EXAMPLES = int(os.environ.get("SOMNODE_MEMPOOL_EXAMPLES", "2000" if os.environ.get("SOMNODE_LONG") == "1" else "100"))

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(
            st.tuples(st.integers(0, len(ACCOUNTS) - 1), st.sampled_from([0, 0, 0, 0, -1, 1]), st.integers(1, 400)),
            min_size=1, max_size=8)),
        st.tuples(st.just("reap"), st.integers(0, 12), st.integers(0, 3000), st.booleans()),
        # A block proposed elsewhere commits a transaction this pool never saw.
        st.tuples(st.just("foreign"), st.integers(0, len(ACCOUNTS) - 1), st.integers(1, 600)),
    ),
    min_size=1, max_size=12,
)


def _pending_by_account(pool: Mempool) -> dict[bytes, list[SignedTransaction]]:
    everything = pool.reap(10**9, 10**12)
    assert len(everything) == len(pool), "an unbounded reap returns the whole pool"
    assert sum(len(t.raw) for t in everything) == pool.size_bytes
    grouped: dict[bytes, list[SignedTransaction]] = {}
    for stx in everything:
        grouped.setdefault(stx.tx.sender, []).append(stx)
    return grouped


def _check_pool(pool: Mempool, ledger: Ledger, max_txs: int, max_bytes: int) -> None:
    assert len(pool) <= max_txs and pool.size_bytes <= max_bytes
    for sender, txs in _pending_by_account(pool).items():
        balance, nonce, _, _ = ledger.lookup(sender)
        assert [t.tx.nonce for t in txs] == list(range(nonce, nonce + len(txs)))
        assert sum(0 if t.tx.kind is TxKind.ISSUE else t.tx.amount for t in txs) <= balance


@settings(max_examples=_EXAMPLES, deadline=None)
@given(ops=_ops, max_txs=st.integers(1, 20), max_bytes=st.integers(200, 6000))
def test_reap_keeps_nonce_order_and_bounds(batch_verifier: BatchVerifier, ops: list[tuple], max_txs: int,
                                           max_bytes: int) -> None:
    ledger = Ledger({ALICE.public_key: 1_000, BOB.public_key: 300, CAROL.public_key: 50})
    pool = make_pool(ledger, batch_verifier, max_txs=max_txs, max_bytes=max_bytes)
    for op in ops:
        if op[0] == "add":
            raws = []
            next_nonce: dict[bytes, int] = {}  # offset 0 continues the account's sequence within the batch
            for who, offset, amount in op[1]:
                key = ACCOUNTS[who]
                to = ACCOUNTS[(who + 1) % len(ACCOUNTS)]
                expected = next_nonce.get(key.public_key, pool.pending_nonce(key.public_key))
                raws.append(transfer(key, max(0, expected + offset), amount, to=to).raw)
                next_nonce[key.public_key] = expected + (offset == 0)
            results = asyncio.run(pool.add_batch(raws))
            assert len(results) == len(raws)
        elif op[0] == "foreign":
            _, who, amount = op
            key = ACCOUNTS[who]
            foreign = transfer(key, ledger.lookup(key.public_key)[1], amount, to=ACCOUNTS[(who + 2) % len(ACCOUNTS)])
            ledger.apply(foreign)
            pool.update([foreign])
        else:
            _, reap_txs, reap_bytes, commit = op
            block = pool.reap(reap_txs, reap_bytes)
            assert len(block) <= reap_txs and sum(len(t.raw) for t in block) <= reap_bytes
            next_nonce: dict[bytes, int] = {}
            for stx in block:
                expected = next_nonce.get(stx.tx.sender, ledger.lookup(stx.tx.sender)[1])
                assert stx.tx.nonce == expected, "reap yielded an account's nonces out of order"
                next_nonce[stx.tx.sender] = expected + 1
            if commit:
                before = len(pool)
                for stx in block:
                    ledger.apply(stx)
                pool.update(block)
                # Committing a prefix of each queue leaves the rest applicable: nothing else may go.
                assert len(pool) == before - len(block)
        _check_pool(pool, ledger, max_txs, max_bytes)


def test_dropped_gossip_is_exported_as_a_counter() -> None:
    registry = CollectorRegistry()
    metrics = NodeMetrics(registry)
    for dropped in (0, 500, 500, 1200):
        metrics.set_mempool(10, 100, dropped)
    assert registry.get_sample_value("somnode_mempool_gossip_dropped_total") == 1200


# ---- the digital som's rules at admission: what the ledger would certainly refuse

LIMITED = GenesisState(CHAIN, bytes(32), ISSUER.public_key, frozenset({BANK.public_key}), (),
                       tiers=(Tier(0, "anonymous", 10_000, 300, 1_000), Tier(1, "basic", 10_000, 100, 1_000)))


async def test_a_payment_over_the_senders_single_payment_limit_is_refused(ledger: Ledger,
                                                                        verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier, governance=LIMITED.governance)
    over, within = transfer(ALICE, 0, 301), transfer(ALICE, 0, 300)
    assert codes(await pool.add_batch([over.raw])) == ["over_payment_limit"]
    assert codes(await pool.add_batch([within.raw])) == ["accepted"]
    assert codes(await pool.add_batch([transfer(BANK, 0, 5_000).raw])) == ["accepted"], "a bank has no limits"


async def test_a_frozen_sender_is_refused_and_a_freeze_drops_what_it_had_pending(ledger: Ledger,
                                                                                 verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    pending = transfer(ALICE, 0, 10)
    assert codes(await pool.add_batch([pending.raw])) == ["accepted"]
    ledger.flags[ALICE.public_key] = Scope.OUTGOING  # a legal order committed
    pool.update([transfer(ALICE, 5, 1)])  # a block that touched Alice (its transaction failed)
    assert pending.hash not in pool
    [refused] = await pool.add_batch([transfer(ALICE, 0, 10).raw])
    assert (refused.accepted, refused.code) == (False, "sender_frozen")


async def test_a_lowered_tier_drops_the_pending_payments_over_its_limit(ledger: Ledger,
                                                                        verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier, governance=LIMITED.governance)
    small, large, after = transfer(ALICE, 0, 50), transfer(ALICE, 1, 250), transfer(ALICE, 2, 50)
    assert codes(await pool.add_batch([small.raw, large.raw, after.raw])) == ["accepted"] * 3
    ledger.tiers[ALICE.public_key] = 1  # its bank registered it in a tier with a lower payment limit
    pool.update([transfer(ALICE, 7, 1)])
    assert small.hash in pool and large.hash not in pool and after.hash not in pool


async def test_an_account_a_block_credited_without_naming_it_is_refreshed(ledger: Ledger,
                                                                          verifier: RecordingVerifier) -> None:
    pool = make_pool(ledger, verifier)
    assert codes(await pool.add_batch([transfer(BOB, 0, 500).raw])) == ["accepted"]
    assert codes(await pool.add_batch([transfer(BOB, 1, 400).raw])) == ["insufficient_funds"]
    ledger.accounts[BOB.public_key][0] += 400  # the excess of a payment to a wallet linked to Bob
    pool.update([transfer(BANK, 0, 900, to=CAROL)], written=[BANK.public_key, CAROL.public_key, BOB.public_key])
    assert codes(await pool.add_batch([transfer(BOB, 1, 400).raw])) == ["accepted"]


async def test_a_raised_tier_limit_reaches_queues_the_block_did_not_touch(ledger: Ledger,
                                                                          verifier: RecordingVerifier) -> None:
    state = [LIMITED.governance()]
    pool = make_pool(ledger, verifier, governance=lambda: state[0])
    assert codes(await pool.add_batch([transfer(ALICE, 0, 10).raw])) == ["accepted"]
    assert codes(await pool.add_batch([transfer(ALICE, 1, 500).raw])) == ["over_payment_limit"]
    raised = Tier(0, "anonymous", 10_000, 600, 1_000)
    state[0] = replace(state[0], tiers=(raised, *state[0].tiers[1:]), sequence=1)
    tx = GovernanceTransaction(0, 100, DefineTier(raised))
    pool.update([tx.signed([tx.approve(ISSUER, CHAIN)])])
    assert codes(await pool.add_batch([transfer(ALICE, 1, 500).raw])) == ["accepted"]
