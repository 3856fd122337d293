"""Benchmark: committing 10,000-transfer blocks into an open ledger store.

Signatures are made while the blocks are built, before timing starts, and are
never verified: the ledger runs after the batch verifier.  The timed part is
``apply_block`` alone: execution, the write batch (state, block, certificate,
receipts, tx index, meta) and the synced LevelDB write.  The first block runs
with a cold account cache (every account read from LevelDB), the rest warm.

    .venv/bin/python scripts/bench_ledger.py [--accounts 10000] [--txs 10000] [--reps 7] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import tempfile
import time

from node.keys import KeyPair
from node.ledger import GenesisState, LedgerStore
from node.tx import Transaction, TxKind

CHAIN_ID = "som-bench"


def build_blocks(keys: list[KeyPair], txs_per_block: int, blocks: int, seed: int) -> list[list]:
    rng = random.Random(seed)
    nonces = [0] * len(keys)
    built = []
    for _ in range(blocks):
        txs = []
        for _ in range(txs_per_block):
            sender, recipient = rng.sample(range(len(keys)), 2)
            tx = Transaction(TxKind.TRANSFER, keys[sender].public_key, nonces[sender],
                             rng.randrange(1, 100), keys[recipient].public_key)
            nonces[sender] += 1
            txs.append(tx.sign(keys[sender], CHAIN_ID))
        built.append(txs)
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000, help="funded accounts (default 10000)")
    parser.add_argument("--txs", type=int, default=10_000, help="transfers per block (default 10000)")
    parser.add_argument("--reps", type=int, default=7, help="blocks to time (default 7)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()

    keys = [KeyPair.from_seed(hashlib.sha256(b"bench %d" % i).digest()) for i in range(args.accounts)]
    genesis = GenesisState(CHAIN_ID, hashlib.sha256(b"bench genesis").digest(), keys[0].public_key,
                           frozenset(), tuple(sorted((k.public_key, 10**12) for k in keys)))
    print(f"signing {args.reps} blocks of {args.txs} transfers among {args.accounts} accounts ...", flush=True)
    *blocks, proposal = build_blocks(keys, args.txs, args.reps + 1, args.seed)

    seconds = []
    with tempfile.TemporaryDirectory() as tmp, LedgerStore.open(tmp, genesis) as store:
        for height, txs in enumerate(blocks, start=1):
            block_bytes = b"".join(stx.raw for stx in txs)  # opaque to the ledger; size is realistic
            start = time.perf_counter()
            result = store.apply_block(height, txs, block_bytes, b"\x00" * 2_400)
            seconds.append(time.perf_counter() - start)
            failed = sum(1 for code in result.codes if code != "ok")
            if failed:
                raise SystemExit(f"block {height}: {failed} transfers failed; the benchmark workload is wrong")
        start = time.perf_counter()
        checked = store.check_block(proposal)  # the next block, validated as a proposal
        check_seconds = time.perf_counter() - start
        if set(checked.codes) != {"ok"}:
            raise SystemExit("the proposal block does not validate; the benchmark workload is wrong")

    rates = [args.txs / s for s in seconds]
    report = {
        "accounts": args.accounts, "txs_per_block": args.txs, "blocks": args.reps,
        "cold_block_tps": round(rates[0]),
        "median_tps": round(statistics.median(rates)), "best_tps": round(max(rates)),
        "median_block_ms": round(statistics.median(seconds) * 1e3, 2),
        "check_block_tps": round(args.txs / check_seconds),
    }
    print(f"{'block':>5} {'ms':>9} {'transfers/s':>12}")
    for height, (s, rate) in enumerate(zip(seconds, rates), start=1):
        print(f"{height:>5} {s * 1e3:>9.2f} {rate:>12,.0f}{'  (cold cache)' if height == 1 else ''}")
    print(f"apply_block: median {report['median_tps']:,} transfers/s, best {report['best_tps']:,} transfers/s")
    print(f"check_block (proposal dry run, no write): {report['check_block_tps']:,} transfers/s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2)
            out.write("\n")


if __name__ == "__main__":
    main()
