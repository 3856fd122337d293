"""Benchmark: a ledger store's disk use after many blocks, keeping every block and pruning old ones.

Writes the same chain twice into fresh stores: ``--blocks`` blocks of ``--txs``
transfers each among ``--accounts`` funded accounts, every block encoded as a
validator stores it (block v2 with its transactions) with a certificate the
size of four precommits.  The first store keeps every block; the second
prunes as a node with ``storage.retain_blocks = --retain`` does (a pass each
quarter of that many blocks, node/app/pruner.py).  Reports the bytes on disk
of each store at the end, and per block.

The transactions carry random bytes where a signature goes: the ledger never
verifies signatures (the batch verifier before it does), and a random
signature takes exactly the room of a real one.

    .venv/bin/python scripts/bench_disk.py [--blocks 10000] [--txs 100] [--retain 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import tempfile
import time
from pathlib import Path

from node.core.block import build_block
from node.core.tx import SignedTransaction, Transaction, TxKind
from node.ledger import GenesisState, LedgerStore

CHAIN_ID = "som-bench"
BALANCE = 10**12
CERTIFICATE_BYTES = 4 * 110  # four precommits: key, signature and their framing


class RandomSignature:
    """Signs with random bytes: the room a signature takes on disk, without the time to make one."""

    def __init__(self, public_key: bytes) -> None:
        self.public_key = public_key

    def sign(self, message: bytes) -> bytes:
        return os.urandom(64)


def chain(accounts: list[bytes], blocks: int, txs_per_block: int, seed: int):
    """Each block's transactions and bytes, made as they are needed."""
    rng = random.Random(seed)
    nonces = dict.fromkeys(accounts, 0)
    signers = {key: RandomSignature(key) for key in accounts}
    for height in range(1, blocks + 1):
        txs: list[SignedTransaction] = []
        for _ in range(txs_per_block):
            sender, recipient = rng.sample(accounts, 2)
            txs.append(Transaction(TxKind.TRANSFER, sender, nonces[sender], rng.randrange(1, 10_000),
                                   recipient).sign(signers[sender], CHAIN_ID))
            nonces[sender] += 1
        block = build_block(chain_id=CHAIN_ID, height=height, time_ms=1_800_000_000_000 + 500 * height,
                            proposer=accounts[0], previous_block_hash=bytes(32), previous_app_hash=bytes(32),
                            previous_results_hash=bytes(32), next_validators_hash=bytes(32),
                            txs=[stx.raw for stx in txs])
        yield height, txs, block.encode()


def run(directory: Path, genesis: GenesisState, accounts: list[bytes], args: argparse.Namespace,
        retain: int) -> tuple[int, float]:
    """Bytes on disk after the chain, and the seconds it took."""
    every = max(16, retain // 4)
    started = time.perf_counter()
    with LedgerStore.open(directory, genesis) as store:
        for height, txs, raw in chain(accounts, args.blocks, args.txs, args.seed):
            store.apply_block(height, txs, raw, os.urandom(CERTIFICATE_BYTES), 1_800_000_000_000 + 500 * height)
            if retain and height - retain + 1 - store.earliest_height >= every:
                store.prune(height - retain + 1)
    seconds = time.perf_counter() - started
    return sum(path.stat().st_size for path in directory.iterdir() if path.is_file()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=10_000)
    parser.add_argument("--txs", type=int, default=100, help="transfers per block (default 100)")
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--retain", type=int, default=200, help="storage.retain_blocks of the pruning store")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    accounts = sorted(hashlib.sha256(b"disk bench %d" % n).digest() for n in range(args.accounts))
    genesis = GenesisState(CHAIN_ID, hashlib.sha256(b"disk bench genesis").digest(), accounts[0], frozenset(),
                           tuple((key, BALANCE) for key in accounts))
    with tempfile.TemporaryDirectory() as tmp:
        kept, kept_s = run(Path(tmp) / "archive", genesis, accounts, args, 0)
        pruned, pruned_s = run(Path(tmp) / "pruned", genesis, accounts, args, args.retain)
    report = {
        "blocks": args.blocks, "txs_per_block": args.txs, "accounts": args.accounts, "retain_blocks": args.retain,
        "archive_bytes": kept, "pruned_bytes": pruned,
        "archive_bytes_per_block": round(kept / args.blocks), "archive_seconds": round(kept_s, 1),
        "pruned_seconds": round(pruned_s, 1),
    }
    print(f"{args.blocks:,} blocks of {args.txs} transfers over {args.accounts:,} accounts: every block kept "
          f"{kept / 2**20:.1f} MiB ({report['archive_bytes_per_block']:,} bytes a block, {kept_s:.0f} s); "
          f"the last {args.retain} kept {pruned / 2**20:.1f} MiB ({pruned_s:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
