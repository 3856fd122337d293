"""A mixed workload against one verifier: the event loop and plain threads at once.

Callers on the loop send requests of random sizes concurrently while other
threads call ``verify_many`` and ``verify``; items are valid, invalid or
malformed, often repeated, and the cache is small so entries are evicted while
in use.  Every caller must get exactly the single-verification answers.  The
default run does a few rounds; ``SOMNODE_LONG=1`` runs the long variant.  A
failure names the seed that replays it.
"""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from node.core.keys import KeyPair, verify_signature
from node.verifier.scheduler import BatchVerifier

KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 17)]


def random_item(rng: random.Random) -> tuple[bytes, bytes, bytes]:
    key = rng.choice(KEYS)
    message = rng.randbytes(rng.randrange(0, 200))
    signature = key.sign(message)
    kind = rng.random()
    if kind < 0.6:
        return key.public_key, message, signature
    if kind < 0.8:
        return key.public_key, message + b"x", signature
    if kind < 0.9:
        return rng.choice(KEYS).public_key, message, signature
    return key.public_key[: rng.randrange(32)], message, signature[: rng.randrange(65)]


def run_rounds(seed: int, rounds: int) -> None:
    rng = random.Random(seed)
    pool = [random_item(rng) for _ in range(300)]
    expected = {item: verify_signature(*item) for item in pool}
    for _ in range(rounds):
        config = {"threads": rng.choice([1, 2, 3]), "chunk_size": rng.choice([1, 5, 32, 256]),
                  "max_wait_ms": rng.choice([0.0, 0.5, 2.0]), "cache_size": rng.choice([0, 16, 1000]),
                  "max_pending": rng.choice([8, 100, 65_536]), "helpers": rng.random() < 0.5}
        requests = [rng.choices(pool, k=rng.choice([0, 1, 1, 2, 9, 40, 150])) for _ in range(60)]
        thread_work = [rng.choices(pool, k=rng.randrange(1, 120)) for _ in range(4)]
        failures: list[str] = []

        with BatchVerifier(**config) as verifier:
            def in_thread(items: list) -> None:
                try:
                    if verifier.verify_many(items) != [expected[i] for i in items]:
                        failures.append("verify_many")
                    if [verifier.verify(*i) for i in items[:10]] != [expected[i] for i in items[:10]]:
                        failures.append("verify")
                except Exception as exc:  # a thread's error must fail the test, not just print
                    failures.append(repr(exc))

            threads = [threading.Thread(target=in_thread, args=(work,)) for work in thread_work]

            async def on_loop() -> list[list[bool]]:
                for thread in threads:
                    thread.start()
                return await asyncio.gather(*(verifier.verify_batch(r) for r in requests))

            try:
                answers = asyncio.run(on_loop())
            finally:
                for thread in threads:
                    thread.join()
            assert verifier.stats.backlog == 0

        assert not failures, f"seed={seed} config={config} failed in {failures}"
        for request, answer in zip(requests, answers, strict=True):
            assert answer == [expected[i] for i in request], f"seed={seed} config={config}"


def test_mixed_workload_short():
    seed = random.randrange(2**32)
    run_rounds(seed, rounds=3)


@pytest.mark.long
def test_mixed_workload_long():
    for _ in range(20):
        run_rounds(random.randrange(2**32), rounds=10)
