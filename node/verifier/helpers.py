"""Helper processes that run libsodium's checks for the verifier's pool threads.

PyNaCl releases the GIL inside each libsodium call, but a pool thread needs it
back after every signature to fetch the next one.  While
the event loop runs Python (decoding a batch, applying a block) each of those
hand-overs waits, so on a busy validator the pool verified far below the
machine's rate and part of a core sat idle (docs/performance.md has the
measurements).  A helper process has an interpreter of its own: the pool
thread hands it a whole chunk, blocks in the pipe without the GIL, and takes
the GIL once to read the answer.

The helper runs the very call the verifier would run in-thread, PyNaCl's
``crypto_sign_open``, so answers cannot differ.  Every decision (the cache,
what counts as malformed, what a result means) stays in the validator; a
helper only says which of the pairs it was sent verify.

Frames on both pipes are a 4-byte little-endian length and a body: msgpack
``[[public_key, signature ∥ message], ...]`` towards the helper, one byte per
pair (1 valid, 0 not) back.  A helper exits when its input reaches end of
file, which is also what happens when the validator dies, however it dies: a
helper never outlives its validator.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import IO

import msgpack
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("<I")
# Far above a chunk (256 transfers are about 50 KB): a longer frame means the stream is garbled.
MAX_FRAME_BYTES = 64 * 1024 * 1024
# After a helper failed to start, the slot verifies in-thread for this long before trying again.
RESPAWN_BACKOFF_S = 5.0


class HelperError(Exception):
    """A helper process died, broke its pipe or answered out of protocol."""


def _read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame's body, or None at a clean end of file."""
    head = stream.read(_LENGTH.size)
    if not head:
        return None
    if len(head) != _LENGTH.size:
        raise HelperError("stream ended inside a frame header")
    (size,) = _LENGTH.unpack(head)
    if size > MAX_FRAME_BYTES:
        raise HelperError(f"frame of {size} bytes is over the {MAX_FRAME_BYTES}-byte limit")
    body = stream.read(size)
    if len(body) != size:
        raise HelperError(f"stream ended after {len(body)} of a frame's {size} bytes")
    return body


def _write_frame(stream: IO[bytes], body: bytes) -> None:
    stream.write(_LENGTH.pack(len(body)))
    stream.write(body)
    stream.flush()


def verify_pairs(pairs: Sequence[Sequence[bytes]]) -> bytes:
    """One byte per (public key, signature ∥ message): 1 if libsodium verifies it, else 0."""
    outcome = bytearray(len(pairs))
    for index, (public_key, signed) in enumerate(pairs):
        try:
            crypto_sign_open(signed, public_key)
        except BadSignatureError:
            continue
        outcome[index] = 1
    return bytes(outcome)


def serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """The helper's whole life: answer frames until the validator closes the pipe."""
    while (body := _read_frame(source)) is not None:
        _write_frame(sink, verify_pairs(msgpack.unpackb(body, use_list=False)))


class Helper:
    """The validator's end of one helper process; used by one pool thread at a time.

    A helper that fails (dies, breaks its pipe, answers out of protocol) is
    discarded and the chunk is checked in-thread instead; a replacement is
    started on a later chunk, no sooner than ``RESPAWN_BACKOFF_S`` after the
    failure, so a helper that cannot run costs speed, never answers, and
    never a stream of new processes.
    """

    def __init__(self, command: Sequence[str] | None = None) -> None:
        self._command = list(command) if command is not None else [sys.executable, "-m", "node.verifier.helpers"]
        self._process: subprocess.Popen[bytes] | None = None
        self._failed_at: float | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> bool:
        """Spawn the process (it loads PyNaCl while the validator goes on); False if it cannot be spawned."""
        assert self._process is None, "a helper runs one process at a time"
        try:
            self._process = subprocess.Popen(
                self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                # Its own session: a Ctrl-C or SIGTERM meant for the validator's process group
                # does not reach it; it ends when the validator's end of the pipe closes.
                start_new_session=True,
            )
        except OSError as exc:
            self._failed_at = time.monotonic()
            log.error("verifier.helper_start_failed error=%r", exc)
            return False
        self.starts += 1
        return True

    def verify(self, pairs: list[tuple[bytes, bytes]]) -> list[bool] | None:
        """Which pairs verify, or None if no helper can answer now (the caller checks in-thread)."""
        if self._process is None:
            if self._failed_at is not None and time.monotonic() - self._failed_at < RESPAWN_BACKOFF_S:
                return None
            if not self.start():
                return None
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            _write_frame(process.stdin, msgpack.packb(pairs))
            answer = _read_frame(process.stdout)
            if answer is None or len(answer) != len(pairs) or answer.strip(b"\x00\x01"):
                raise HelperError(f"answered {answer!r:.60} to {len(pairs)} pairs")
        except (OSError, ValueError, HelperError) as exc:
            self._discard()
            self._failed_at = time.monotonic()
            log.error("verifier.helper_failed pid=%d returncode=%s error=%r", process.pid, process.returncode, exc)
            return None
        return [byte == 1 for byte in answer]

    def close(self, timeout_s: float = 5.0) -> None:
        """End the process: close its input so it leaves by itself; kill it if it has not within ``timeout_s``."""
        process, self._process = self._process, None
        if process is None:
            return
        _close_pipes(process)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _discard(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        _close_pipes(process)
        process.wait()


def _close_pipes(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:  # a flush into a dead helper's pipe; it is gone either way
                pass


class HelperPool:
    """One helper per pool thread, handed out and given back."""

    def __init__(self, count: int, command: Sequence[str] | None = None) -> None:
        self._all = [Helper(command) for _ in range(count)]
        self._idle: queue.SimpleQueue[Helper] = queue.SimpleQueue()
        for helper in self._all:
            helper.start()
            self._idle.put(helper)

    def verify(self, pairs: list[tuple[bytes, bytes]]) -> list[bool] | None:
        helper = self._idle.get()  # one per pool thread, so a free one is always there
        try:
            return helper.verify(pairs)
        finally:
            self._idle.put(helper)

    @property
    def size(self) -> int:
        return len(self._all)

    @property
    def restarts(self) -> int:
        """Helpers started to replace one that failed."""
        return sum(max(0, helper.starts - 1) for helper in self._all)

    @property
    def pids(self) -> list[int]:
        return [pid for helper in self._all if (pid := helper.pid) is not None]

    def close(self) -> None:
        for helper in self._all:
            helper.close()


def main() -> None:
    # Interrupts are for the validator; this process ends when its input does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the validator went away mid-answer
        os._exit(0)


if __name__ == "__main__":
    main()
