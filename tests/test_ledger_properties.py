"""Property tests: the store agrees with the reference model and keeps the money invariants.

Examples per test: SOMNODE_LEDGER_EXAMPLES (default 100; 1,000 with SOMNODE_LONG=1).
Hypothesis prints the failing example and a blob that replays it.
"""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.crash_writer as cw
from node.core.amount import MAX_TYIYN
from node.core.tx import PAYMENT_KINDS, TxKind
from node.ledger import GenesisState, LedgerStore

EXAMPLES = int(os.environ.get("SOMNODE_LEDGER_EXAMPLES", "1000" if os.environ.get("SOMNODE_LONG") == "1" else "100"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KEYS = tuple(cw.key(n) for n in range(8))  # 0 issuer, 1-2 banks, 3-7 holders; only some funded
ISSUER, BANKS = KEYS[0], frozenset(KEYS[1:3])

# "balance"/"room" become the sender's whole balance or the supply's remaining headroom,
# plus 0 or 1, once the state is known: the boundaries where rules flip.
amounts = st.one_of(st.integers(1, 2_000), st.integers(1, MAX_TYIYN), st.just(MAX_TYIYN),
                    st.tuples(st.sampled_from(["balance", "room"]), st.integers(0, 1)))
tx_specs = st.tuples(
    st.sampled_from(sorted(PAYMENT_KINDS)), st.integers(0, len(KEYS) - 1), st.integers(0, len(KEYS) - 1),
    amounts, st.one_of(st.just(0), st.just(0), st.integers(-2, 3)),
)
genesis_states = st.dictionaries(
    st.sampled_from(KEYS), st.one_of(st.integers(0, 5_000), st.integers(0, MAX_TYIYN // 8)), max_size=6,
).map(lambda balances: GenesisState("som-prop", bytes(32), ISSUER, BANKS, tuple(sorted(balances.items()))))
workloads = st.tuples(genesis_states, st.lists(st.lists(tx_specs, max_size=12), min_size=1, max_size=6))


def build_block(reference, specs):
    """Turn specs into transactions, giving most of them the sender's right next nonce."""
    pending: dict[bytes, int] = {}
    txs = []
    for kind, sender_index, recipient_index, amount, nonce_delta in specs:
        sender = KEYS[sender_index]
        if isinstance(amount, tuple):
            bound, extra = amount
            base = (reference.balance(sender) if bound == "balance"
                    else MAX_TYIYN - reference.issued + reference.redeemed)
            amount = min(max(1, base + extra), MAX_TYIYN)
        nonce = max(0, pending.get(sender, reference.nonce(sender)) + nonce_delta)
        pending[sender] = nonce + 1
        recipient = None if kind is TxKind.REDEEM else KEYS[recipient_index]
        txs.append(cw.signed(kind, sender, nonce, amount, recipient))
    return txs


def check_invariants(store):
    accounts = list(store.iter_accounts())
    supply = store.supply()
    assert all(0 <= account.balance <= MAX_TYIYN for _, account in accounts)
    assert 0 <= supply.outstanding <= MAX_TYIYN
    assert supply.outstanding == sum(account.balance for _, account in accounts)


@PROPERTY
@given(workloads)
def test_store_matches_reference_and_keeps_supply(workload):
    genesis, blocks = workload
    reference = cw.ReferenceLedger(genesis)
    with tempfile.TemporaryDirectory() as tmp, LedgerStore.open(tmp, genesis) as store:
        assert store.app_hash == reference.app_hash
        check_invariants(store)
        for specs in blocks:
            txs = build_block(reference, specs)
            nonces_before = {pk: reference.nonce(pk) for pk in KEYS}
            expected = reference.apply(txs)
            result = store.apply_block(store.height + 1, txs, b"block", b"cert")
            codes = [r.code for r in result.receipts]
            assert codes == expected
            assert result.app_hash == reference.app_hash
            for stx, code in zip(txs, codes):
                if code == "ok" and stx.tx.kind is TxKind.ISSUE:
                    assert stx.tx.sender == ISSUER
                if code == "ok" and stx.tx.kind is TxKind.REDEEM:
                    assert stx.tx.sender in BANKS or stx.tx.sender == ISSUER
                if code not in ("bad_nonce", "unknown_account"):  # the nonce was consumed, in order
                    assert stx.tx.nonce == nonces_before[stx.tx.sender]
                    nonces_before[stx.tx.sender] += 1
            check_invariants(store)
            supply = store.supply()
            assert (supply.issued, supply.redeemed) == (reference.issued, reference.redeemed)
        assert {pk: tuple(a) for pk, a in store.iter_accounts()} == reference.records()


@PROPERTY
@given(workloads)
def test_replayed_transactions_never_apply_again(workload):
    genesis, blocks = workload
    reference = cw.ReferenceLedger(genesis)
    with tempfile.TemporaryDirectory() as tmp, LedgerStore.open(tmp, genesis) as store:
        consumed = {}
        for specs in blocks:
            txs = build_block(reference, specs)
            reference.apply(txs)
            result = store.apply_block(store.height + 1, txs, b"b", b"c")
            for receipt in result.receipts:
                if receipt.code not in ("bad_nonce", "unknown_account"):
                    consumed[receipt.tx_hash] = (txs[receipt.index], (store.height, receipt.index, receipt.code))
        replay = store.apply_block(store.height + 1, [stx for stx, _ in consumed.values()], b"b", b"c")
        assert all(code == "bad_nonce" for code in replay.codes)
        for tx_hash, (_, outcome) in consumed.items():  # the index still tells the real outcome
            location = store.tx_location(tx_hash)
            assert (location.height, location.index, location.code) == outcome


@PROPERTY
@given(workloads, st.integers(1, 4))
def test_same_blocks_give_the_same_app_hash_on_two_stores(workload, cache_accounts):
    genesis, blocks = workload
    reference = cw.ReferenceLedger(genesis)
    built = []
    for specs in blocks:
        txs = build_block(reference, specs)
        reference.apply(txs)
        built.append(txs)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, \
            LedgerStore.open(a, genesis) as first, \
            LedgerStore.open(b, genesis, cache_accounts=cache_accounts) as second:
        for height, txs in enumerate(built, start=1):
            predicted = second.prepare(txs)
            assert first.apply_block(height, txs, b"b", b"c") == second.apply_block(height, txs, b"b", b"c")
            assert predicted.app_hash == second.app_hash
        assert first.app_hash == second.app_hash == reference.app_hash
