"""Catch-up: fetching committed blocks from peers that are ahead.

A validator that was down, cut off or new learns from the peers' status
messages that they have committed heights it lacks.  It then asks one of them
for those blocks and trusts none of the answer.  Here the certificates of the
first blocks, whose validator sets this ledger already knows, are checked
before anything costlier, so a peer answering junk costs one certificate
check; then the blocks are decoded and their transactions' signatures
checked like a proposal's.  The host's
single writer then takes them in order: each block's commit certificate must
verify against the validator set of exactly that height (known only once the
blocks before it are applied, since the set changes by governance) and name
that block, and the block is judged against the tip exactly as a proposal
is; then it is applied through the same commit path as a block decided
live, and the engine rejoins consensus above it.

A peer is asked only after it has been ahead for ``patience_s``: a block that
is being committed right now is normally decided live within milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from consensus.certificate import (
    CommitCertificate,
)
from node.host.inbox import FetchedBlock
from node.host.validity import Validity
from node.p2p.requests import PeerError
from node.p2p.transport import PeerInfo

log = logging.getLogger(__name__)


class BlockSource(Protocol):
    """The part of the peer network catch-up uses."""

    def peers(self) -> tuple[PeerInfo, ...]: ...

    async def request_blocks(self, peer: bytes, from_height: int,
                             to_height: int) -> tuple[tuple[bytes, CommitCertificate], ...]: ...


class CatchUp:
    def __init__(
        self,
        source: BlockSource,
        *,
        validity: Validity,
        committed_height: Callable[[], int],
        deliver: Callable[[Sequence[FetchedBlock]], Awaitable[int]],
        on_fatal: Callable[[BaseException], None],
        poll_s: float = 0.25,
        patience_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``deliver`` hands verified blocks to the host's single writer and returns how many it applied."""
        self._source = source
        self._validity = validity
        self._committed_height = committed_height
        self._deliver = deliver
        self._on_fatal = on_fatal
        self._poll_s = poll_s
        self._patience_s = patience_s
        self._clock = clock
        self._behind_since: float | None = None
        self._pruned_away = False  # every peer ahead has pruned what this node needs: said once
        self._task: asyncio.Task[None] | None = None
        self.blocks_fetched = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="catch-up")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self._step()
            except (PeerError, TimeoutError) as exc:
                log.info("catchup.retry reason=%s", _one_line(exc))
            except Exception as exc:
                log.critical("catchup.halted reason=%s", _one_line(exc))
                self._on_fatal(exc)
                return

    def _best_peer(self, committed: int) -> tuple[bytes, int] | None:
        """The peer furthest ahead among those that still keep block ``committed + 1``."""
        # An observer's status is its word alone: a validator catches up from validators only, so that no
        # observer can hold it back by claiming heights it never serves.
        known = [(p.height, p) for p in self._source.peers()
                 if p.height is not None and p.height > committed and not p.observer]
        ahead = [(height, p.public_key) for height, p in known if p.earliest <= committed + 1]
        if known and not ahead:
            if not self._pruned_away:
                # Every peer ahead has pruned the blocks this node needs: it can join only from a peer
                # that keeps every block, or from a copy of a ledger (docs/operators.md §6).
                log.warning("catchup.pruned height=%d peers_keep_from=%d", committed,
                            min(p.earliest for _, p in known))
            self._pruned_away = True
            return None
        self._pruned_away = False
        if not ahead:
            return None
        height, key = max(ahead)
        return key, height

    async def _step(self) -> None:
        committed = self._committed_height()
        best = self._best_peer(committed)
        if best is None:
            self._behind_since = None
            return
        now = self._clock()
        if self._behind_since is None:
            self._behind_since = now
        if best[1] < committed + 2 and now - self._behind_since < self._patience_s:
            return
        peer, target = best
        log.info("catchup.fetch peer=%s from=%d to=%d", peer.hex()[:16], committed + 1, target)
        blocks = await self._source.request_blocks(peer, committed + 1, target)
        for raw, certificate in blocks[:2]:  # sets are known up to the committed height plus two
            refusal = await asyncio.to_thread(self._validity.certifies, raw, certificate)
            if refusal is not None:
                raise PeerError(f"block {certificate.height} from {peer.hex()[:16]} is not proven: {refusal}")
        fetched = []
        for raw, certificate in blocks:
            candidate = await self._validity.prepare(raw)
            if candidate.block is None:
                raise PeerError(f"block {certificate.height} from {peer.hex()[:16]} does not decode: its body is "
                                f"not the one its certified header names")
            fetched.append(FetchedBlock(candidate, certificate))
        if fetched:
            self.blocks_fetched += await self._deliver(fetched)
        self._behind_since = None


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())
