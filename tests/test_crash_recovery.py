"""Crash safety: a writer SIGKILLed at random instants always reopens at a block boundary.

A subprocess (tests/crash_writer.py) commits deterministic blocks in a loop.
The test kills it at seeded random moments, reopens the store and compares it
with the reference model advanced through blocks 1..height: state, supply, app
hash, the last block, certificate and receipts, and the absence of anything
beyond.  Then it starts the writer again on the same store, so recovery is
itself exercised under crashes.

Replay a failure with SOMNODE_CRASH_SEED=<seed printed in the message>.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tests.crash_writer as cw
from node.ledger import LedgerStore

WRITER = Path(__file__).with_name("crash_writer.py")
REPO = WRITER.parent.parent
STARTUP_TIMEOUT_S = 60


def crash_seed() -> int:
    return int(os.environ.get("SOMNODE_CRASH_SEED") or random.SystemRandom().randrange(2**32))


def start_writer(path: Path, workload_seed: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, str(WRITER), str(path), str(workload_seed)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def kill_at_random(writer: subprocess.Popen, rng: random.Random) -> int | None:
    """SIGKILL the writer at a random instant; return the last height it reported, if any."""
    first = b""
    try:
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0.0, 0.4))  # anywhere, start-up and genesis included
        else:
            ready, _, _ = select.select([writer.stdout], [], [], STARTUP_TIMEOUT_S)
            assert ready, f"writer committed nothing within {STARTUP_TIMEOUT_S} s"
            # Unbuffered, so nothing read here hides from communicate() below.
            first = os.read(writer.stdout.fileno(), 1 << 16)
            assert first, f"writer died before committing: {writer.stderr.read().decode()}"
            time.sleep(rng.uniform(0.0, 0.05))
        writer.send_signal(signal.SIGKILL)
        out, err = writer.communicate(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL, f"writer exited on its own: {err.decode()}"
    lines = (first + out).split()
    return int(lines[-1]) if lines else None


def check_against_reference(store: LedgerStore, reference: cw.ReferenceLedger, workload_seed: int,
                            last_codes: list[str] | None) -> None:
    assert store.height == reference.height
    assert store.app_hash == reference.app_hash
    supply = store.supply()
    assert (supply.issued, supply.redeemed) == (reference.issued, reference.redeemed)
    assert {pk: tuple(a) for pk, a in store.iter_accounts()} == reference.records()
    assert store.block(store.height + 1) is None and store.certificate(store.height + 1) is None
    assert store.receipts(store.height + 1) is None
    if store.height:
        assert store.certificate(store.height) == cw.certificate_bytes(store.height)
        assert [r.code for r in store.receipts(store.height)] == last_codes


def crash_loop(tmp_path: Path, kills: int) -> None:
    seed = crash_seed()
    rng = random.Random(seed)
    workload_seed = rng.randrange(2**32)
    path = tmp_path / "ledger"
    reference = cw.ReferenceLedger(cw.genesis_state())
    last_codes: list[str] | None = None
    for kill in range(kills):
        context = f"crash seed {seed} (SOMNODE_CRASH_SEED={seed}), kill {kill + 1}/{kills}"
        reported = kill_at_random(start_writer(path, workload_seed), rng)
        if not path.exists() or not any(path.iterdir()):
            assert reported is None, context
            continue
        # Killed between its commit and its report, the writer may be one block ahead of what it said.
        floor = reference.height if reported is None else reported
        with LedgerStore.open(path, cw.genesis_state()) as store:
            assert floor <= store.height <= floor + 1, (
                f"{context}: writer reported height {reported}, store reopened at {store.height}")
            while reference.height < store.height:
                height = reference.height + 1
                txs = cw.make_block(workload_seed, height, reference.nonce)
                last_codes = reference.apply(txs)
                assert store.block(height) == cw.block_bytes(height, txs), f"{context}: block {height} differs"
            try:
                check_against_reference(store, reference, workload_seed, last_codes)
            except AssertionError as exc:
                raise AssertionError(f"{context}: {exc}") from exc
    assert reference.height > 0, f"crash seed {seed}: the writer never committed a block"


def test_sigkill_at_random_instants_reopens_at_a_block_boundary(tmp_path):
    crash_loop(tmp_path, kills=int(os.environ.get("SOMNODE_CRASH_KILLS", "40")))


@pytest.mark.long
def test_sigkill_hundreds_of_times(tmp_path):
    crash_loop(tmp_path, kills=int(os.environ.get("SOMNODE_CRASH_KILLS_LONG", "300")))
