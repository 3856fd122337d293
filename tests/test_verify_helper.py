"""The verifier's helper processes: they do the work, their failures cost no answers, they never linger."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import msgpack
import pytest

import node.verifier.helpers as helper_module
import node.verifier.scheduler
from node.core.keys import KeyPair, verify_signature
from node.verifier.helpers import Helper, HelperError, HelperPool, serve
from node.verifier.scheduler import HELPER_MIN_PIECE, BatchVerifier

KEY = KeyPair.from_seed(b"h" * 32)


def mixed_items(count: int) -> list[tuple[bytes, bytes, bytes]]:
    """Valid, tampered, wrong-key and malformed triples, in a fixed order."""
    items = []
    for index in range(count):
        message = f"transfer {index}".encode()
        signature = KEY.sign(message)
        kind = index % 4
        if kind == 1:
            message += b"!"
        elif kind == 2:
            signature = KeyPair.from_seed(b"o" * 32).sign(message)
        elif kind == 3 and index % 8 == 3:
            signature = signature[:40]
        items.append((KEY.public_key, message, signature))
    return items


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie awaiting its reaper counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def wait_gone(pids: list[int], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(gone(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def no_in_thread_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes any libsodium call in the validator's own process fail the test."""
    def forbidden(signed: bytes, public_key: bytes) -> bytes:
        raise AssertionError("verified in the validator's process, not in a helper")
    monkeypatch.setattr(node.verifier.scheduler, "crypto_sign_open", forbidden)


async def test_chunks_are_verified_by_the_helpers(no_in_thread_checks):
    items = mixed_items(200)
    expected = [verify_signature(*item) for item in items]
    assert 0 < sum(expected) < len(items)
    async with BatchVerifier(threads=2, chunk_size=2 * HELPER_MIN_PIECE, helpers=True, cache_size=0) as verifier:
        assert await verifier.verify_batch(items) == expected
        assert await verifier.verify_batch(items[::-1]) == expected[::-1]
        stats = verifier.stats
        checked = len(items) - items_malformed(items)
        assert (stats.helpers, stats.helper_restarts, stats.verified) == (2, 0, 2 * checked)


async def test_pieces_too_small_for_a_round_trip_stay_in_the_thread(monkeypatch):
    def no_helper(self, pairs):
        raise AssertionError("a small piece went to a helper")
    monkeypatch.setattr(HelperPool, "verify", no_helper)
    items = mixed_items(HELPER_MIN_PIECE - 1)
    async with BatchVerifier(threads=2, chunk_size=256, helpers=True, cache_size=0) as verifier:
        answers = await asyncio.gather(*(verifier.verify_batch([item]) for item in items))
        assert [a[0] for a in answers] == [verify_signature(*item) for item in items]
        assert verifier.verify_many(items) == [verify_signature(*item) for item in items]


def items_malformed(items: list) -> int:
    return sum(1 for _, _, signature in items if len(signature) != 64)


async def test_killed_helpers_cost_no_answers_and_are_replaced(monkeypatch, caplog):
    monkeypatch.setattr(helper_module, "RESPAWN_BACKOFF_S", 0.0)
    items = mixed_items(4 * HELPER_MIN_PIECE)  # two pieces of 56 checkable signatures
    expected = [verify_signature(*item) for item in items]
    async with BatchVerifier(threads=2, chunk_size=2 * HELPER_MIN_PIECE, helpers=True, cache_size=0) as verifier:
        assert await verifier.verify_batch(items) == expected
        first = verifier._helpers.pids
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        assert wait_gone(first)
        with caplog.at_level(logging.ERROR, logger="node.verifier.helpers"):
            # Each dead helper fails the first chunk it is handed (which is then checked
            # in-thread); which round that is depends on which thread takes which helper.
            for _ in range(8):
                assert await verifier.verify_batch(items) == expected
                if caplog.text.count("verifier.helper_failed") == 2:
                    break
        assert caplog.text.count("verifier.helper_failed") == 2
        assert await verifier.verify_batch(items) == expected  # by replacements
        assert verifier.stats.helper_restarts == 2
        assert set(verifier._helpers.pids).isdisjoint(first) and len(verifier._helpers.pids) == 2


@pytest.mark.parametrize("script", [
    "import sys; sys.stdin.buffer.read(4)",                                     # exits without answering
    "import sys; sys.stdin.buffer.read(64); sys.stdout.buffer.write(b'\\x01\\x00\\x00\\x00\\x02'); "
    "sys.stdout.flush(); sys.stdin.buffer.read()",                              # an answer that is no bool
    "import sys; sys.stdin.buffer.read(64); sys.stdout.buffer.write(b'\\x03\\x00\\x00\\x00\\x01\\x01\\x01'); "
    "sys.stdout.flush(); sys.stdin.buffer.read()",                              # the wrong count
    "import sys; sys.stdin.buffer.read(64); sys.stdout.buffer.write(b'\\xff\\xff\\xff\\xff'); "
    "sys.stdout.flush(); sys.stdin.buffer.read()",                              # an absurd length
])
def test_a_helper_out_of_protocol_is_not_believed(script, caplog):
    helper = Helper([sys.executable, "-c", script])
    assert helper.start()
    pid = helper.pid
    try:
        with caplog.at_level(logging.ERROR, logger="node.verifier.helpers"):
            assert helper.verify([(KEY.public_key, KEY.sign(b"x") + b"x")]) is None
        assert "verifier.helper_failed" in caplog.text
        assert helper.pid is None and wait_gone([pid])
        # Within the back-off the slot answers None at once, without spawning.
        assert helper.verify([(KEY.public_key, b"")]) is None and helper.pid is None
    finally:
        helper.close()


def test_a_helper_that_cannot_start_leaves_the_checks_to_the_validator(caplog):
    with caplog.at_level(logging.ERROR, logger="node.verifier.helpers"):
        pool = HelperPool(2, ["/nonexistent/somnode-python"])
    try:
        assert caplog.text.count("verifier.helper_start_failed") == 2
        assert pool.pids == [] and pool.verify([(KEY.public_key, b"")]) is None
    finally:
        pool.close()
    items = mixed_items(4 * HELPER_MIN_PIECE)
    with BatchVerifier(threads=2, chunk_size=HELPER_MIN_PIECE, helpers=True, cache_size=0) as verifier:
        verifier._helpers.close()
        verifier._helpers = pool  # every slot failed to start: the threads check in-process
        assert verifier.verify_many(items) == [verify_signature(*item) for item in items]


def test_closing_the_verifier_ends_its_helpers():
    verifier = BatchVerifier(threads=2, helpers=True)
    pids = verifier._helpers.pids
    assert len(pids) == 2 and not any(gone(pid) for pid in pids)
    verifier.close()
    assert wait_gone(pids, timeout_s=5.0)


def test_helpers_end_when_their_validator_is_killed(tmp_path):
    """A SIGKILLed validator cannot close anything: its helpers see their input end and leave."""
    program = textwrap.dedent("""
        import sys, time
        from node.verifier.scheduler import HELPER_MIN_PIECE, BatchVerifier
        verifier = BatchVerifier(threads=2, helpers=True)
        print(" ".join(map(str, verifier._helpers.pids)), flush=True)
        time.sleep(600)
    """)
    process = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in process.stdout.readline().split()]
        assert len(pids) == 2 and not any(gone(pid) for pid in pids)
        process.kill()
        process.wait()
        assert wait_gone(pids), "a helper outlived its validator"
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def test_helpers_ignore_interrupts_meant_for_the_validator():
    pool = HelperPool(1)
    try:
        pid = pool.pids[0]
        time.sleep(0.5)  # past the interpreter's start, where the handler is installed
        os.kill(pid, signal.SIGINT)
        time.sleep(0.2)
        assert not gone(pid)
        assert pool.verify([(KEY.public_key, KEY.sign(b"still here") + b"still here")]) == [True]
    finally:
        pool.close()


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "little") + body


def test_serve_answers_a_byte_per_pair_until_its_input_ends():
    good = (KEY.public_key, KEY.sign(b"a") + b"a")
    bad = (KEY.public_key, KEY.sign(b"a") + b"b")
    short_key = (KEY.public_key[:31], KEY.sign(b"a") + b"a")
    source = io.BytesIO(frame(msgpack.packb([good, bad, short_key])) + frame(msgpack.packb([])))
    sink = io.BytesIO()
    serve(source, sink)
    assert sink.getvalue() == frame(b"\x01\x00\x00") + frame(b"")


@pytest.mark.parametrize("stream", [
    b"\x05\x00",                       # ends inside a header
    b"\x05\x00\x00\x00ab",             # ends inside a body
    (2**31).to_bytes(4, "little"),     # a length no chunk comes near
])
def test_serve_refuses_a_garbled_stream(stream):
    with pytest.raises(HelperError):
        serve(io.BytesIO(stream), io.BytesIO())
