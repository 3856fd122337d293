"""Batch Ed25519 verification: the node's hot path.

Every signature the node accepts — transactions at mempool admission and in
proposals, votes, commit certificates, blocks fetched during catch-up — goes
through one ``BatchVerifier``, so the node's throughput ceiling is this
component's throughput.  These things make it fast:

* **Threads.**  PyNaCl's libsodium calls release the GIL, so a pool with one
  thread per core verifies on all cores at once (see docs/verifier.md for the
  measured scaling); more threads than cores gain nothing.
* **Chunks.**  A round trip to a worker thread costs about as much as one
  Ed25519 check (docs/verifier.md);
  handing the pool chunks of many signatures amortises the hop.
* **Coalescing.**  ``verify_batch`` callers on the event loop often bring one
  or a few signatures each.  While every worker is busy their items queue up
  and leave together as one chunk — as soon as a worker frees, when a full
  chunk has gathered, or at the latest ``max_wait_ms`` after the oldest one
  arrived.  A request that finds a worker free goes at once: waiting for
  company would only add latency when there is spare capacity.
* **Priority.**  The pool holds at most ``CHUNKS_PER_THREAD`` chunks per
  thread; the rest waits in the verifier's own queue, which ``urgent`` work
  (a proposal's transactions) skips.  So consensus waits for at most a
  couple of chunks, not for every transaction clients have submitted.
* **Helper processes** (``helpers=True``, as a validator runs it).  A pool
  thread needs the GIL back after every libsodium call; on a validator whose
  event loop is busy with Python those hand-overs kept the pool far below the
  machine's rate (docs/performance.md).  With helpers, each pool thread hands
  its chunk to a helper process of its own (node/verify_helper.py) and waits
  in the pipe without the GIL.  The helper runs the same libsodium call; a
  helper that fails is replaced and its chunk checked in-thread.
* **The GIL switch interval.**  The process runs with
  ``GIL_SWITCH_INTERVAL_S`` instead of CPython's 5 ms, so threads that do
  verify in-process (single checks, a helper's fallback) are not held up for
  whole milliseconds while the event loop runs Python.
* **Back-pressure.**  At most ``max_pending`` signatures are queued or being
  verified for ``verify_batch`` callers; further callers wait their turn in
  arrival order, so a flood costs bounded memory and the answers still come
  back first-come, first-served.

Answers are exactly those of ``node.core.keys.verify_signature`` item by item: the
same length and type checks, then libsodium's ``crypto_sign_open`` (which
``VerifyKey.verify`` also ends in; calling it directly skips a wrapper object
per signature).  libsodium rejects non-canonical S, small-order R and public
keys, and points off the curve; malformed input gives False, never an error.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from node.verifier.cache import VerifiedSignatureCache, signature_digest
from node.verifier.helpers import HelperPool
from node.verifier.protocol import Triple
from node.verifier.stats import BATCH_SIZE_BOUNDS, VerifierStats

log = logging.getLogger(__name__)

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64

# The interpreter's GIL switch interval for a validator process.  A worker
# needs the GIL back after every libsodium call; at CPython's default of 5 ms
# it waits that long whenever the event loop is running Python, so a busy loop
# (decoding a batch, applying a block) starves the pool.  A shorter interval
# costs the loop a little switching and keeps the workers verifying
# (scripts/bench_verify.py measures both; docs/verifier.md has the figures).
GIL_SWITCH_INTERVAL_S = 0.0005

# Chunks handed to the pool at once, per thread: one running and one ready behind it, so a
# worker never waits for the event loop to send more, while urgent work overtakes the rest.
CHUNKS_PER_THREAD = 2

# Below this many signatures a chunk is checked in the pool thread, not sent to a helper: a
# round trip to a helper costs the machine about as much CPU as checking a few signatures
# (docs/performance.md), while a few GIL hand-overs cost little.
HELPER_MIN_PIECE = 32

# Urgent work of at most this many signatures runs on the urgent thread, beside the pool.
URGENT_THREAD_MAX = 8

# Below this many signatures a piece is not worth a second thread: the hop
# would cost a sizeable fraction of the work it moves.
MIN_PIECE = 8

# (public key, signature ∥ message, cache digest): a triple ready for libsodium.
_Prepared = tuple[bytes, bytes, bytes]


class _Request:
    """One ``verify_batch`` call waiting for its queued items; lives on the event loop thread only."""

    __slots__ = ("results", "outstanding", "future")

    def __init__(self, results: list[bool], outstanding: int, future: asyncio.Future[list[bool]]) -> None:
        self.results = results
        self.outstanding = outstanding
        self.future = future


def _prepare(public_key: object, message: object, signature: object, key: bytes | None = None) -> _Prepared | None:
    """The triple in libsodium's form with its cache key, or None when it cannot verify whatever the bytes say.

    Mirrors ``VerifyKey(pk).verify(message, signature)``: the key and the
    signature must be ``bytes`` of exactly 32 and 64 bytes, and the message
    anything that ``signature + message`` accepts.  The cache key is the
    caller's ``key`` when given, else the triple's ``signature_digest``.
    """
    if not (isinstance(public_key, bytes) and len(public_key) == PUBLIC_KEY_BYTES
            and isinstance(signature, bytes) and len(signature) == SIGNATURE_BYTES):
        return None
    try:
        signed = signature + message  # type: ignore[operator]
    except (TypeError, ValueError, BufferError):
        return None
    if not isinstance(signed, bytes):
        return None
    return public_key, signed, signature_digest(public_key, signed) if key is None else key


def _pieces(items: list, count: int) -> list[list]:
    """``items`` cut into ``count`` consecutive pieces whose sizes differ by at most one."""
    size, extra = divmod(len(items), count)
    pieces, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        pieces.append(items[start:end])
        start = end
    return pieces


class BatchVerifier:
    """Verifies (public key, message, signature) triples in batches on a thread pool, with a cache.

    ``verify_batch`` belongs to one event loop at a time and must be called
    on its thread; ``verify_many`` and ``verify`` may be called from any
    thread except the pool's own workers.  Satisfies ``consensus.crypto.Verifier``.
    """

    def __init__(self, *, threads: int | None = None, chunk_size: int = 256, max_wait_ms: float = 2.0,
                 cache_size: int = 1_000_000, max_pending: int = 65_536, helpers: bool = False) -> None:
        threads = threads if threads is not None else (os.cpu_count() or 1)
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if not (max_wait_ms >= 0 and math.isfinite(max_wait_ms)):
            raise ValueError(f"max_wait_ms must be a finite number >= 0, got {max_wait_ms}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self._threads = threads
        self._chunk_size = chunk_size
        self._max_wait = max_wait_ms / 1000.0
        self._max_pending = max_pending
        self._cache = VerifiedSignatureCache(cache_size)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="somnode-verify")
        self._urgent_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="somnode-verify-urgent")
        self._helpers = HelperPool(threads) if helpers else None
        self._closed = False
        # Coalescing state, touched only on the owning event loop's thread.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[tuple[_Request, int, _Prepared]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._chunks: set[asyncio.Future[list[bool]]] = set()
        self._backlog = 0  # signatures queued or in flight for verify_batch callers
        self._room_waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        # Counters, updated from the loop, callers' threads and the workers.
        self._stats_lock = threading.Lock()
        self._requests = 0
        self._signatures = 0
        self._verified = 0
        self._valid = 0
        self._cache_hits = 0
        self._malformed = 0
        self._batches = 0
        self._batch_sizes = [0] * len(BATCH_SIZE_BOUNDS)
        self._batch_seconds_total = 0.0
        self._last_batch_size = 0
        self._last_batch_seconds = 0.0
        log.info("verifier.started threads=%d helpers=%s chunk_size=%d max_wait_ms=%s cache_size=%d max_pending=%d",
                 threads, helpers, chunk_size, max_wait_ms, cache_size, max_pending)

    # ----------------------------------------------------------------- API

    async def verify_batch(self, items: Sequence[Triple], *, urgent: bool = False,
                           keys: Sequence[bytes] | None = None) -> list[bool]:
        """Validity of each triple, in order; small concurrent requests share chunks.

        ``keys``, when given, are the triples' cache keys, one per triple, in
        place of ``signature_digest``: a caller that already holds a
        collision-resistant digest that determines the whole triple saves
        hashing it again.  A transaction's hash is one (the chain's signing
        prefix is fixed per node; see ``node.core.tx``).  The cache trusts them:
        a key that named two different triples would let the second ride on
        the first one's check.

        ``urgent`` work (a proposal's transactions, which consensus waits for)
        goes to the pool at once, past everything queued and past the
        back-pressure limit: behind mempool admission under load it would
        wait seconds, and the round would time out.  Its volume is bounded by
        the protocol, not by clients.  Urgent work of a few signatures (a
        vote, a proposal's own signature) has a thread of its own: in the
        pool it would still wait for the chunks already running there, and
        every consensus step would carry that wait.
        """
        self._check_open()
        loop = asyncio.get_running_loop()
        self._adopt_loop(loop)
        results, pending = self._triage(items, keys)
        if not pending:
            return results
        if not urgent:
            await self._admit(loop, len(pending))
            self._check_open()
        if urgent and len(pending) <= URGENT_THREAD_MAX:
            outcome = await loop.run_in_executor(self._urgent_pool, self._verify_prepared, [p for _, p in pending])
            for (index, _), ok in zip(pending, outcome, strict=True):
                results[index] = ok
            return results
        request = _Request(results, len(pending), loop.create_future())
        entries = [(request, index, prepared) for index, prepared in pending]
        if urgent:
            self._send(entries, reserved=False)
        else:
            self._queue.extend(entries)
            self._dispatch()
        return await request.future

    def verify_many(self, items: Sequence[Triple], keys: Sequence[bytes] | None = None) -> list[bool]:
        """Validity of each triple, in order, blocking the calling thread while the pool works.

        Not for the event loop's thread while anything is left to verify: it
        would stall every other task.  ``keys`` as for ``verify_batch``.
        """
        self._check_open()
        results, pending = self._triage(items, keys)
        if not pending:
            return results
        prepared = [p for _, p in pending]
        pieces = _pieces(prepared, self._piece_count(len(prepared)))
        if len(pieces) == 1:  # the caller would only sit idle while one worker did it all
            outcome = self._verify_prepared(prepared)
        else:
            futures = [self._pool.submit(self._verify_prepared, piece, True) for piece in pieces]
            outcome = [ok for future in futures for ok in future.result()]
        for (index, _), ok in zip(pending, outcome, strict=True):
            results[index] = ok
        return results

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """One check in the calling thread (a hop to the pool would cost more than it saves); cache first."""
        return self.verify_many([(public_key, message, signature)])[0]

    def is_known_valid(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True when this triple was verified valid before and is still cached; never verifies."""
        prepared = _prepare(public_key, message, signature)
        return prepared is not None and self._cache.contains(prepared[2])

    @property
    def helper_pids(self) -> list[int]:
        """Process ids of the running helper processes (none without helpers)."""
        return self._helpers.pids if self._helpers is not None else []

    @property
    def stats(self) -> VerifierStats:
        with self._stats_lock:
            cumulative, running = [], 0
            for bound, count in zip(BATCH_SIZE_BOUNDS, self._batch_sizes, strict=True):
                running += count
                cumulative.append((bound, running))
            return VerifierStats(
                threads=self._threads, helpers=self._helpers.size if self._helpers else 0,
                helper_restarts=self._helpers.restarts if self._helpers else 0,
                requests=self._requests, signatures=self._signatures,
                verified=self._verified, valid=self._valid, cache_hits=self._cache_hits,
                malformed=self._malformed, cache_entries=len(self._cache), batches=self._batches,
                batch_size_le=tuple(cumulative), batch_seconds_total=self._batch_seconds_total,
                last_batch_size=self._last_batch_size, last_batch_seconds=self._last_batch_seconds,
                queued=len(self._queue), chunks_in_flight=len(self._chunks),
                backlog=self._backlog, waiting_requests=len(self._room_waiters),
            )

    def close(self) -> None:
        """Stop the pool once queued and running chunks finish; waiting callers still get answers.

        Call it on the event loop's thread (or after the loop stopped): it
        sends off whatever ``verify_batch`` requests are still queued.
        """
        if self._closed:
            return
        if self._queue:
            self._dispatch(closing=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._closed = True
        while self._room_waiters:
            _, waiter = self._room_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("BatchVerifier is closed"))
        self._pool.shutdown(wait=True)
        self._urgent_pool.shutdown(wait=True)
        if self._helpers is not None:
            self._helpers.close()
        log.info("verifier.closed verified=%d cache_hits=%d batches=%d",
                 self._verified, self._cache_hits, self._batches)

    def __enter__(self) -> BatchVerifier:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> BatchVerifier:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Drain without blocking the loop: flush the queue, await the chunks, then stop the pool."""
        while self._queue or self._chunks:
            if self._queue:
                self._dispatch(closing=True)
            await asyncio.gather(*self._chunks, return_exceptions=True)
        self.close()

    # ------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("BatchVerifier is closed")

    def _adopt_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind the coalescing state to ``loop``; another loop may take over only once it is idle."""
        if self._loop is loop:
            return
        if self._queue or self._chunks:
            raise RuntimeError("BatchVerifier.verify_batch is in use by another event loop")
        self._loop = loop

    def _triage(self, items: Sequence[Triple],
                keys: Sequence[bytes] | None) -> tuple[list[bool], list[tuple[int, _Prepared]]]:
        """Answer malformed triples (False) and cached ones (True); return the rest to verify."""
        if keys is None:
            prepared = [_prepare(public_key, message, signature) for public_key, message, signature in items]
        elif len(keys) != len(items):
            raise ValueError(f"{len(keys)} cache keys for {len(items)} triples")
        else:
            prepared = [_prepare(public_key, message, signature, key)
                        for (public_key, message, signature), key in zip(items, keys)]
        candidates = [(index, p) for index, p in enumerate(prepared) if p is not None]
        known = self._cache.contains_many([p[2] for _, p in candidates])
        results = [False] * len(items)
        pending = []
        for candidate, hit in zip(candidates, known, strict=True):
            if hit:
                results[candidate[0]] = True
            else:
                pending.append(candidate)
        with self._stats_lock:
            self._requests += 1
            self._signatures += len(items)
            self._malformed += len(items) - len(candidates)
            self._cache_hits += len(candidates) - len(pending)
        return results, pending

    async def _admit(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        """Reserve room for ``size`` signatures in the backlog, waiting behind earlier callers if it is full.

        A request larger than ``max_pending`` is let in when the backlog is
        empty; refusing it would block it forever.
        """
        if not self._room_waiters and (self._backlog == 0 or self._backlog + size <= self._max_pending):
            self._backlog += size
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._room_waiters.append((size, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # admitted just as the caller gave up
                self._release(size)
            raise

    def _release(self, size: int) -> None:
        """Give back backlog room and let waiting callers in, oldest first, while they fit."""
        self._backlog -= size
        assert self._backlog >= 0, "every released signature was reserved by _admit"
        while self._room_waiters:
            wanted, waiter = self._room_waiters[0]
            if waiter.done():  # cancelled, or failed by close()
                self._room_waiters.popleft()
                continue
            if self._backlog and self._backlog + wanted > self._max_pending:
                return
            self._room_waiters.popleft()
            self._backlog += wanted
            waiter.set_result(None)

    def _piece_count(self, count: int, workers: int | None = None) -> int:
        """How many chunks ``count`` signatures go out as: none above chunk_size, spread over ``workers``.

        Spreading over every thread (the default), not just the idle ones,
        lets a worker that frees a moment later take a share instead of
        idling beside one long chunk.  Work that goes while every worker is
        busy is not spread: smaller pieces would only cost more hand-overs.
        """
        needed = -(-count // self._chunk_size)
        spread = min(self._threads if workers is None else workers, count // MIN_PIECE)
        return max(needed, spread, 1)

    def _verify_prepared(self, prepared: list[_Prepared], in_helper: bool = False) -> list[bool]:
        """Run libsodium over one chunk and cache what verified.

        A pool thread (``in_helper``) hands the chunk to a helper process when
        the verifier has them and the chunk is worth the round trip; a single
        check inline, a small chunk, or a helper that cannot answer runs
        libsodium in the calling thread.
        """
        started = time.perf_counter()
        outcome: list[bool] | None = None
        if in_helper and self._helpers is not None and len(prepared) >= HELPER_MIN_PIECE:
            outcome = self._helpers.verify([(public_key, signed) for public_key, signed, _ in prepared])
        if outcome is None:
            outcome = []
            append = outcome.append
            for public_key, signed, _ in prepared:
                try:
                    crypto_sign_open(signed, public_key)
                except BadSignatureError:
                    append(False)
                else:
                    append(True)
        elapsed = time.perf_counter() - started
        self._cache.add_many([p[2] for p, ok in zip(prepared, outcome) if ok])
        size = len(prepared)
        with self._stats_lock:
            self._verified += size
            self._valid += sum(outcome)
            self._batches += 1
            self._batch_sizes[bisect.bisect_left(BATCH_SIZE_BOUNDS, size)] += 1
            self._batch_seconds_total += elapsed
            self._last_batch_size = size
            self._last_batch_seconds = elapsed
        return outcome

    def _dispatch(self, *, waited: bool = False, closing: bool = False) -> None:
        """Send queued items to the pool, keeping at most ``CHUNKS_PER_THREAD`` chunks per thread there.

        Without waiting for company when a worker is free or the oldest item
        has ``waited`` ``max_wait_ms``, else full chunks only.  What does not
        fit stays here, where urgent work overtakes it; a finishing chunk
        sends the next.  ``closing`` sends everything.
        """
        queued = len(self._queue)
        if closing:
            take = queued
        else:
            in_flight = len(self._chunks)
            take = queued if (waited or in_flight < self._threads) else queued - queued % self._chunk_size
            take = max(0, min(take, (CHUNKS_PER_THREAD * self._threads - in_flight) * self._chunk_size))
        if take:
            batch, self._queue = self._queue[:take], self._queue[take:]
            self._send(batch, reserved=True, workers=max(1, self._threads - len(self._chunks)))
        # The timer only matters while items wait for company; items waiting for room leave
        # when a chunk finishes.
        if self._queue and self._timer is None and len(self._chunks) < CHUNKS_PER_THREAD * self._threads:
            assert self._loop is not None, "items are queued only by verify_batch, which binds a loop"
            self._timer = self._loop.call_later(self._max_wait, self._wait_expired)
        elif not self._queue and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self, entries: list[tuple[_Request, int, _Prepared]], *, reserved: bool,
              workers: int | None = None) -> None:
        """Hand entries to the pool in pieces; ``reserved`` ones hold back-pressure room until answered."""
        loop = self._loop
        assert loop is not None, "items are sent only by verify_batch, which binds a loop"
        for piece in _pieces(entries, self._piece_count(len(entries), workers)):
            future = loop.run_in_executor(self._pool, self._verify_prepared, [entry[2] for entry in piece], True)
            self._chunks.add(future)
            future.add_done_callback(functools.partial(self._chunk_done, piece, reserved))

    def _wait_expired(self) -> None:
        """The oldest queued item has waited ``max_wait_ms`` for company: send what there is room for."""
        self._timer = None
        if self._queue and not self._closed:
            self._dispatch(waited=True)

    def _chunk_done(self, piece: list[tuple[_Request, int, _Prepared]], reserved: bool,
                    future: asyncio.Future[list[bool]]) -> None:
        """Hand each waiting request its answers; a worker just freed, so send what queued meanwhile."""
        self._chunks.remove(future)
        if reserved:
            self._release(len(piece))
        try:
            outcome = future.result()
        except (Exception, asyncio.CancelledError) as exc:
            log.error("verifier.chunk_failed size=%d error=%r", len(piece), exc)
            for request, _, _ in piece:
                if not request.future.done():
                    request.future.set_exception(exc)
        else:
            for (request, index, _), ok in zip(piece, outcome, strict=True):
                request.results[index] = ok
                request.outstanding -= 1
                if request.outstanding == 0 and not request.future.done():
                    request.future.set_result(request.results)
        if self._queue and not self._closed:
            self._dispatch()
