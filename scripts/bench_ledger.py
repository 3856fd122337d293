"""Benchmark: committing 10,000-transfer blocks into an open ledger store.

Signatures are made while the blocks are built, before timing starts, and are
never verified: the ledger runs after the batch verifier.  The timed part is
``apply_block`` alone: execution, the write batch (state, block, certificate,
receipts, tx index, meta) and the synced LevelDB write.  The first block runs
with a cold account cache (every account read from LevelDB), the rest warm.
Every account is in a wallet tier (basic KYC) whose limits the transfers keep
to, so each one runs every check of the digital som's rules.
Last, one more block goes the way a validator handles a proposal: ``prepare``
(the dry run that judges it) before the prevote, then ``apply`` of what was
prepared once it is decided.

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

from node.app.tuning import tune_interpreter
from node.core.keys import KeyPair
from node.core.tx import Transaction, TxKind
from node.ledger import GenesisState, LedgerStore
from node.ledger.store import DEFAULT_CACHE_ACCOUNTS
from node.tools.network import DEFAULT_TIERS

CHAIN_ID = "som-bench"
TIER = 1  # "basic KYC": at most 150,000.00 som held, 50,000.00 in one payment, 150,000.00 out a day
BALANCE = 10**7  # 100,000.00 som each
BLOCK_TIME_MS = 1_800_000_000_000


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
    parser.add_argument("--cache-accounts", type=int, default=DEFAULT_CACHE_ACCOUNTS,
                        help=f"accounts the store keeps in memory (default {DEFAULT_CACHE_ACCOUNTS})")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    tune_interpreter()  # the collector's thresholds a validator runs with (node/app/tuning.py)

    keys = [KeyPair.from_seed(hashlib.sha256(b"bench %d" % i).digest()) for i in range(args.accounts)]
    # Every account in a tier whose limits the workload keeps to, so each transfer runs every
    # check of the digital som's rules (payment, daily and holding limits) and passes them.
    genesis = GenesisState(CHAIN_ID, hashlib.sha256(b"bench genesis").digest(), keys[0].public_key,
                           frozenset(), tuple(sorted((k.public_key, BALANCE) for k in keys)),
                           tiers=DEFAULT_TIERS, account_tiers=tuple(sorted((k.public_key, TIER) for k in keys)))
    *blocks, proposal = build_blocks(keys, args.txs, args.reps + 1, args.seed)

    seconds: list[float] = []
    # The process's CPU, every thread's: the state tree hashes on two, LevelDB compacts on its own.
    cpu_seconds: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, \
            LedgerStore.open(tmp, genesis, cache_accounts=args.cache_accounts) as store:
        for height, txs in enumerate(blocks, start=1):
            block_bytes = b"".join(stx.raw for stx in txs)  # opaque to the ledger; size is realistic
            start, cpu_start = time.perf_counter(), time.process_time()
            result = store.apply_block(height, txs, block_bytes, b"\x00" * 2_400, BLOCK_TIME_MS + height)
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu_start)
            failed = sum(1 for code in result.codes if code != "ok")
            if failed:
                raise SystemExit(f"block {height}: {failed} transfers failed; the benchmark workload is wrong")
        # A validator's real path: prepare the proposal before prevoting, apply what was prepared once decided.
        start = time.perf_counter()
        prepared = store.prepare(proposal, BLOCK_TIME_MS + len(blocks) + 1)
        check_seconds = time.perf_counter() - start
        if any(prepared.execution.codes):
            raise SystemExit("the proposal block does not validate; the benchmark workload is wrong")
        start = time.perf_counter()
        store.apply(prepared, b"".join(stx.raw for stx in proposal), b"\x00" * 2_400)
        commit_after_check_seconds = time.perf_counter() - start

    rates = [args.txs / s for s in seconds]
    report = {
        "accounts": args.accounts, "cache_accounts": args.cache_accounts, "txs_per_block": args.txs,
        "blocks": args.reps,
        "cold_block_tps": round(rates[0]),
        "median_tps": round(statistics.median(rates)), "best_tps": round(max(rates)),
        "median_block_ms": round(statistics.median(seconds) * 1e3, 2),
        "median_cpu_tps": round(args.txs / statistics.median(cpu_seconds)),
        "prepare_tps": round(args.txs / check_seconds),
        "prepare_then_apply_tps": round(args.txs / (check_seconds + commit_after_check_seconds)),
    }
    print(f"{'block':>5} {'wall ms':>9} {'cpu ms':>9} {'transfers/s':>12}")
    for height, (wall, cpu, rate) in enumerate(zip(seconds, cpu_seconds, rates), start=1):
        note = "  (cold cache)" if height == 1 else ""
        print(f"{height:>5} {wall * 1e3:>9.2f} {cpu * 1e3:>9.2f} {rate:>12,.0f}{note}")
    print(f"apply_block: median {report['median_tps']:,} transfers/s, best {report['best_tps']:,} transfers/s "
          f"(wall clock); {report['median_cpu_tps']:,} transfers per CPU-second of all threads")
    print(f"prepare (proposal dry run, no write): {report['prepare_tps']:,} transfers/s")
    print(f"prepare then apply of that block: {report['prepare_then_apply_tps']:,} transfers/s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2)
            out.write("\n")


if __name__ == "__main__":
    main()
