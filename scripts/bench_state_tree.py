"""Benchmark: the state tree's costs over many accounts: rebuilding, a block's update, proofs, disk.

Builds a ledger store whose genesis funds ``--accounts`` accounts (random
32-byte keys: the ledger checks no signatures), then reports
* the time the store takes to open (it rebuilds the tree from every record),
* the tree's own cost per block (``prepare`` and ``advance``) for blocks that
  rewrite ``--records`` random accounts: wall time, and CPU time of the whole process (the tree's
  C code splits its hashing between two threads),
* a proof's size (entries and sibling hashes) and the time to verify one,
* the store's bytes on disk per account after a full compaction.

    .venv/bin/python scripts/bench_state_tree.py [--accounts 1000000] [--records 20000] [--blocks 7]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import tempfile
import time
from pathlib import Path

from node.app.tuning import tune_interpreter
from node.core.state_proof import HASH_SIZE, verify
from node.ledger import GenesisState, LedgerStore
from node.ledger import layout as k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=20_000, help="account records a block rewrites")
    parser.add_argument("--blocks", type=int, default=7)
    args = parser.parse_args()
    tune_interpreter()
    rng = random.Random(1)
    keys = sorted(hashlib.sha256(b"account %d" % n).digest() for n in range(args.accounts))
    genesis = GenesisState("som-bench", hashlib.sha256(b"tree bench").digest(), keys[0], frozenset(),
                           tuple((key, 10**7) for key in keys))
    with tempfile.TemporaryDirectory() as tmp:
        LedgerStore.open(tmp, genesis).close()
        started = time.perf_counter()
        store = LedgerStore.open(tmp, genesis)
        opened = time.perf_counter() - started
        tree = store._versions[-1].tree
        costs, cpu_costs = [], []
        for block in range(args.blocks):
            records = [(k.account_key(key), k.ACCOUNT_VALUE.pack(10**7 + block, block, 0, 0, 0, 0))
                       for key in rng.sample(keys, args.records)]  # a block writes each key once
            started, cpu_started = time.perf_counter(), time.process_time()
            tree = tree.advance(tree.prepare(records))
            costs.append(time.perf_counter() - started)
            cpu_costs.append(time.process_time() - cpu_started)
        sizes, seconds = [], []
        for key in keys[:: max(1, len(keys) // 2000)]:
            value, proof, root = store.state_proof(k.account_key(key), store.height)
            sizes.append(len(proof.entries) * 2 * HASH_SIZE + sum(len(level) for level in proof.siblings) * HASH_SIZE)
            started = time.perf_counter()
            verify(root, k.account_key(key), value, proof)
            seconds.append(time.perf_counter() - started)
        store.close()
        db_size = sum(path.stat().st_size for path in Path(tmp).iterdir() if path.is_file())
        import plyvel
        db = plyvel.DB(tmp)
        db.compact_range()
        db.close()
        compacted = sum(path.stat().st_size for path in Path(tmp).iterdir() if path.is_file())
    print(f"accounts {args.accounts:,}; open (rebuild and check the tree) {opened:.1f} s")
    print(f"tree update per block of {args.records:,} records: median {1e3 * statistics.median(costs):.0f} ms "
          f"(range {1e3 * min(costs):.0f}-{1e3 * max(costs):.0f}), {1e3 * statistics.median(cpu_costs):.0f} ms CPU "
          f"of all threads")
    print(f"proof: median {statistics.median(sizes):,.0f} bytes (max {max(sizes):,}); verify median "
          f"{1e6 * statistics.median(seconds):.0f} us")
    print(f"disk: {db_size / args.accounts:.0f} bytes per account; {compacted / args.accounts:.0f} after compaction "
          )


if __name__ == "__main__":
    main()
