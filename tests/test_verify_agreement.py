"""The batch verifier answers exactly as ``node.core.keys.verify_signature`` does, item by item.

Inputs are valid triples, the same with bytes mutated or messages swapped,
the eight small-order points (as public keys and as R), non-canonical S,
wrong lengths and wrong types.  Every verifier entry point is checked, with
and without the cache, and through a fresh event loop per example so the
verifier's loop hand-over is exercised too.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.core.keys import KeyPair, verify_signature
from node.verifier.scheduler import HELPER_MIN_PIECE, BatchVerifier
from tests.conftest import running_verifier

LONG = os.environ.get("SOMNODE_LONG") == "1"
MAX_EXAMPLES = int(os.environ.get("SOMNODE_VERIFY_EXAMPLES", "2000" if LONG else "150"))

# Order of the Ed25519 base point's prime-order subgroup.
L = 2**252 + 27742317777372353535851937790883648493

# Encodings of the eight points of small order (1, 2, 4, 8) and some
# non-canonical encodings of them (libsodium's blocklist covers these).
SMALL_ORDER = [bytes.fromhex(h) for h in (
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
)]

seeds = st.binary(min_size=32, max_size=32)
messages = st.binary(max_size=300)


@st.composite
def valid_triples(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    key = KeyPair.from_seed(draw(seeds))
    message = draw(messages)
    return key.public_key, message, key.sign(message)


def _flip(data: bytes, index: int, mask: int) -> bytes:
    index %= len(data)
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1:]


@st.composite
def mutated_triples(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    public_key, message, signature = draw(valid_triples())
    which = draw(st.sampled_from(["key", "message", "signature"]))
    index, mask = draw(st.integers(0, 10_000)), draw(st.integers(1, 255))
    if which == "key":
        public_key = _flip(public_key, index, mask)
    elif which == "signature":
        signature = _flip(signature, index, mask)
    elif message:
        message = _flip(message, index, mask)
    else:
        message = bytes([mask])
    return public_key, message, signature


@st.composite
def swapped_messages(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    public_key, _, signature = draw(valid_triples())
    return public_key, draw(messages), signature


@st.composite
def small_order_triples(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    """Small-order points as the public key, as R, or both; S zero, random or copied from a real signature."""
    public_key, message, signature = draw(valid_triples())
    point = draw(st.sampled_from(SMALL_ORDER))
    s = draw(st.sampled_from([bytes(32), signature[32:], draw(st.binary(min_size=32, max_size=32))]))
    where = draw(st.sampled_from(["key", "r", "both"]))
    if where in ("key", "both"):
        public_key = point
    if where in ("r", "both"):
        signature = draw(st.sampled_from(SMALL_ORDER)) + s
    else:
        signature = signature[:32] + s
    return public_key, message, signature


@st.composite
def non_canonical_s(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    """A real signature whose S is lifted to S + kL, or has its top bits set: the same scalar mod L, or garbage."""
    public_key, message, signature = draw(valid_triples())
    s = int.from_bytes(signature[32:], "little")
    choice = draw(st.sampled_from(["plus_l", "high_bits", "max"]))
    if choice == "plus_l":
        s += L * draw(st.integers(1, 15))
    elif choice == "high_bits":
        s |= draw(st.integers(1, 7)) << 253
    else:
        s = 2**256 - 1
    return public_key, message, signature[:32] + s.to_bytes(32, "little")


@st.composite
def wrong_shapes(draw: st.DrawFn) -> tuple[object, object, object]:
    """Wrong lengths, all-zero keys and values of the wrong type, mixed with real parts."""
    public_key, message, signature = draw(valid_triples())
    public_key = draw(st.sampled_from([
        public_key, bytes(32), public_key[:31], public_key + b"\x00", b"", bytearray(public_key),
        draw(st.binary(max_size=40)), None, public_key.hex(),
    ]))
    signature = draw(st.sampled_from([
        signature, signature[:63], signature + b"\x00", b"", bytes(64), bytearray(signature),
        draw(st.binary(max_size=70)), None,
    ]))
    message = draw(st.sampled_from([
        message, bytearray(message), memoryview(message), b"", None, message.decode("latin-1"), 7,
    ]))
    return public_key, message, signature


any_triple = st.one_of(
    valid_triples(), mutated_triples(), swapped_messages(), small_order_triples(), non_canonical_s(),
    wrong_shapes(), st.tuples(st.binary(max_size=33), st.binary(max_size=40), st.binary(max_size=65)),
)


@pytest.fixture(scope="module")
def cached() -> Iterator[BatchVerifier]:
    yield from running_verifier(threads=2, chunk_size=8, max_wait_ms=0.5)


@pytest.fixture(scope="module")
def uncached() -> Iterator[BatchVerifier]:
    yield from running_verifier(threads=2, chunk_size=3, max_wait_ms=0.0, cache_size=0)


@pytest.fixture(scope="module")
def helped() -> Iterator[BatchVerifier]:
    """Chunks go to helper processes, as on a validator (small ones stay in the pool threads)."""
    yield from running_verifier(threads=2, chunk_size=2 * HELPER_MIN_PIECE, max_wait_ms=0.2, cache_size=0,
                                helpers=True)


async def _concurrently(verifier: BatchVerifier, items: list) -> list[bool]:
    """Each item as its own request, all at once, so they coalesce into shared chunks."""
    answers = await asyncio.gather(*(verifier.verify_batch([item]) for item in items))
    return [answer[0] for answer in answers]


@settings(max_examples=MAX_EXAMPLES)
@given(items=st.lists(any_triple, max_size=24))
def test_every_entry_point_agrees_with_single_verification(cached, uncached, helped, items):
    expected = [verify_signature(*item) for item in items]
    for verifier in (cached, uncached, helped):
        assert verifier.verify_many(items) == expected
        assert [verifier.verify(*item) for item in items] == expected
        assert asyncio.run(verifier.verify_batch(items)) == expected
        assert asyncio.run(_concurrently(verifier, items)) == expected
        # A second pass answers from the cache where it can, and still agrees.
        assert verifier.verify_many(items) == expected


@settings(max_examples=max(5, MAX_EXAMPLES // 10),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(items=st.lists(any_triple, min_size=4 * HELPER_MIN_PIECE, max_size=5 * HELPER_MIN_PIECE))
def test_batches_large_enough_for_the_helpers_agree_with_single_verification(helped, items):
    expected = [verify_signature(*item) for item in items]
    assert asyncio.run(helped.verify_batch(items)) == expected
    assert helped.verify_many(items) == expected


def test_the_classic_small_order_forgeries_are_rejected(cached, helped):
    """Identity key with identity R and S = 0 "verifies" any message under a naive check; not here."""
    identity = SMALL_ORDER[0]
    items = [(point, b"pay 1000000 som", r + bytes(32)) for point in SMALL_ORDER for r in (identity, point)]
    assert cached.verify_many(items) == [False] * len(items)
    assert asyncio.run(helped.verify_batch(items)) == [False] * len(items)
    assert [verify_signature(*item) for item in items] == [False] * len(items)


def test_empty_and_huge_messages_agree(cached, helped):
    key = KeyPair.from_seed(bytes(range(32)))
    huge = os.urandom(4 * 1024 * 1024)
    items = [
        (key.public_key, b"", key.sign(b"")),
        (key.public_key, huge, key.sign(huge)),
        (key.public_key, huge[:-1], key.sign(huge)),
        (key.public_key, b"", key.sign(b"\x00")),
    ]
    expected = [True, True, False, False]
    assert [verify_signature(*item) for item in items] == expected
    assert cached.verify_many(items) == expected
    assert asyncio.run(cached.verify_batch(items)) == expected
    assert asyncio.run(helped.verify_batch(items)) == expected


def test_valid_signature_under_another_key_is_rejected(cached):
    alice, bob = KeyPair.from_seed(b"a" * 32), KeyPair.from_seed(b"b" * 32)
    message = b"transfer"
    assert cached.verify_many([(bob.public_key, message, alice.sign(message))]) == [False]


def test_every_combination_of_wrong_shapes_agrees(cached, uncached, helped):
    """Each kind of malformed key, signature and message, in every combination with the real parts."""
    key = KeyPair.from_seed(b"k" * 32)
    message = b"issue 500 som to bank"
    signature = key.sign(message)
    public_key = key.public_key
    keys = [public_key, bytes(32), public_key[:31], public_key + b"\x00", b"", bytearray(public_key),
            memoryview(public_key), None, public_key.hex(), SMALL_ORDER[0]]
    signatures = [signature, signature[:63], signature + b"\x00", b"", bytes(64), bytearray(signature),
                  memoryview(signature), None, signature.hex()]
    message_forms = [message, bytearray(message), memoryview(message), memoryview(message)[::2], b"", None,
                     message.decode("ascii"), 7, [1, 2]]
    items = [(k, m, s) for k in keys for m in message_forms for s in signatures]
    expected = [verify_signature(*item) for item in items]
    assert sum(expected) == 3, "only the real triple verifies, its message as bytes, bytearray or memoryview"
    for verifier in (cached, uncached, helped):
        assert verifier.verify_many(items) == expected
        assert asyncio.run(verifier.verify_batch(items)) == expected
        assert [verifier.verify(*item) for item in items] == expected
        assert [verifier.is_known_valid(*item) for item in items] == [
            ok and verifier is cached for ok in expected]
