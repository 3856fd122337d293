"""Benchmark: one validator's work per transfer besides the signature checks.

At one validator's maximum rate the verify helpers take about 1.4 of the two
cores, and everything else the node does for a transfer comes out of what is
left (docs/performance.md).  This measures that "everything else" in one
process, stage by stage, without HTTP or the network: mempool admission of
client batches of 500 (decoding, the verifier's triage and hand-over to its
threads, the state checks), the answer documents, then per block the
proposer's reap and build, ``valid(v)`` with its dry run of the block, the
ledger commit of what that dry run prepared and the mempool update.  libsodium's check is replaced by a
no-op, so only the verifier's own bookkeeping remains of verification.

Figures are CPU seconds of the calling thread per transfer (the pool
threads' share of the verifier's bookkeeping is not in them), the median of
``--repeat`` passes over freshly opened stores.  Machines and their load
differ, so compare two versions of the code in one run, for instance with
``PYTHONPATH=<a worktree of the other commit>`` on a second invocation.

    .venv/bin/python scripts/bench_pipeline.py [--accounts 200] [--txs 30000] [--block 5000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import msgpack

import node.verifier.scheduler
from consensus.validators import Validator, ValidatorSet
from node.api.codec import admit_result_doc
from node.core.keys import KeyPair
from node.core.tx import Transaction, TxKind
from node.host.proposer import Proposer
from node.host.tip import read_tip, tip_of
from node.host.validity import CheckedBlock, Validity
from node.ledger import GenesisState, LedgerStore
from node.mempool.pool import Mempool

CHAIN_ID = "som-bench"
BATCH = 500
STAGES = ("admission", "answer", "reap and build", "valid", "commit", "mempool update")


def make_load(keys: list[KeyPair], count: int) -> list[bytes]:
    """Transfers in the order clients would send them: each account's nonces ascending."""
    raws, nonce = [], [0] * len(keys)
    for i in range(count):
        sender = i % len(keys)
        recipient = keys[(sender + 1) % len(keys)].public_key
        tx = Transaction(TxKind.TRANSFER, keys[sender].public_key, nonce[sender], 1 + i % 97, recipient)
        nonce[sender] += 1
        raws.append(tx.sign(keys[sender], CHAIN_ID).raw)
    return raws


async def one_pass(directory: Path, genesis: GenesisState, raws: list[bytes], block: int) -> dict[str, float]:
    """Seconds of this thread's CPU per stage for all of ``raws``."""
    spent: dict[str, float] = defaultdict(float)
    store = LedgerStore.open(directory / "ledger", genesis)
    verifier = node.verifier.scheduler.BatchVerifier(threads=2)
    try:
        mempool = Mempool(chain_id=CHAIN_ID, verifier=verifier, account=store.standing,
                          governance=lambda: store.governance, max_txs=4 * block, max_bytes=1 << 30)
        proposer = Proposer(mempool, CHAIN_ID, max_block_txs=block, max_block_bytes=1 << 30,
                            empty_block_wait_s=0, block_interval_s=0, ready=lambda height, round: None)
        validators = ValidatorSet([Validator(genesis.issuer, 1)])
        validity = Validity(store, verifier, lambda height: validators, known=mempool.get)
        tip = read_tip(store)
        clock = time.thread_time
        for start in range(0, len(raws), block):
            for offset in range(start, min(start + block, len(raws)), BATCH):
                t = clock()
                results = await mempool.add_batch(raws[offset:offset + BATCH])
                spent["admission"] += clock() - t
                t = clock()
                msgpack.packb({"results": [admit_result_doc(r) for r in results]}, use_bin_type=True)
                spent["answer"] += clock() - t
                assert all(r.accepted for r in results), results[0]
            t = clock()
            value, built, txs = proposer.build(tip, genesis.issuer, now_ms=tip.height + 1)
            spent["reap and build"] += clock() - t
            t = clock()
            checked = validity.judge(tip, validity.prepared(value, built, txs))
            assert isinstance(checked, CheckedBlock), checked
            spent["valid"] += clock() - t
            t = clock()
            store.apply(checked.prepared, value, b"certificate")
            tip = tip_of(store, checked.value_id, built.header.time_ms, built.header.tx_count)
            spent["commit"] += clock() - t
            t = clock()
            mempool.update(txs)
            spent["mempool update"] += clock() - t
        assert store.height == -(-len(raws) // block) and len(mempool) == 0
    finally:
        verifier.close()
        store.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=200, help="funded accounts (default 200)")
    parser.add_argument("--txs", type=int, default=30_000, help="transfers per pass (default 30000)")
    parser.add_argument("--block", type=int, default=5_000, help="transfers per block (default 5000)")
    parser.add_argument("--repeat", type=int, default=5, help="passes; the median counts (default 5)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()

    keys = [KeyPair.from_seed(hashlib.sha256(b"pipeline %d" % i).digest()) for i in range(args.accounts)]
    genesis = GenesisState(CHAIN_ID, hashlib.sha256(b"pipeline genesis").digest(), keys[0].public_key,
                           frozenset(), tuple(sorted((k.public_key, 10**12) for k in keys)))
    print(f"signing {args.txs} transfers among {args.accounts} accounts ...", flush=True)
    raws = make_load(keys, args.txs)
    # The no-op stands in for libsodium's check (which returns the message); the shape
    # checks, cache and chunking around it stay.
    node.verifier.scheduler.crypto_sign_open = lambda signed, public_key: signed[64:]
    passes = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as directory:
            passes.append(asyncio.run(one_pass(Path(directory), genesis, raws, args.block)))
    per_tx = {stage: statistics.median(p[stage] for p in passes) / len(raws) * 1e6 for stage in STAGES}
    total = statistics.median(sum(p.values()) for p in passes) / len(raws) * 1e6
    for stage in STAGES:
        print(f"{stage:15s} {per_tx[stage]:6.2f} us per transfer")
    print(f"{'total':15s} {total:6.2f} us per transfer (median of {args.repeat} passes)")
    if args.json:
        Path(args.json).write_text(json.dumps({"us_per_transfer": per_tx, "total": total, "txs": len(raws),
                                               "block": args.block, "repeat": args.repeat}, indent=2))


if __name__ == "__main__":
    main()
