"""Catch-up: fetching committed blocks from peers that are ahead.

A validator that was down, cut off or new learns from the peers' status
messages that they have committed heights it lacks.  It then asks one of them
for those blocks and trusts none of the answer: each block must carry a commit
certificate that verifies against the genesis validator set for exactly that
height and block hash, and must pass the same validity check as a proposal
(parent block hash, parent app hash, signatures).  Only then is it applied,
through the same commit path as a block decided live, and the engine rejoins
consensus at the next height.

A peer is asked only after it has been ahead for ``patience_s``: a block that
is being committed right now is normally decided live within milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from consensus.certificate import CertificateError, verify_certificate
from consensus.validators import ValidatorSet
from node.core.block import block_hash
from node.host.driver import ConsensusDriver
from node.p2p.requests import PeerError

log = logging.getLogger("somnode.catchup")


class CatchUp:
    def __init__(
        self,
        driver: ConsensusDriver,
        validators: ValidatorSet,
        verifier,
        *,
        poll_s: float = 0.25,
        patience_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._driver = driver
        self._validators = validators
        self._verifier = verifier
        self._poll_s = poll_s
        self._patience_s = patience_s
        self._clock = clock
        self._behind_since: float | None = None
        self._task: asyncio.Task | None = None
        self.blocks_fetched = 0
        self.rejected = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="catch-up")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self._step()
            except (PeerError, TimeoutError) as exc:
                log.info("catchup.retry reason=%s", exc)
            except Exception as exc:
                log.critical("catchup.halted reason=%s", " ".join(f"{type(exc).__name__}: {exc}".split()))
                self._driver.on_fatal(exc)
                return

    def _best_peer(self) -> tuple[bytes, int] | None:
        ahead = [(p.height, p.public_key) for p in self._driver.network.peers() if p.height is not None]
        if not ahead:
            return None
        height, key = max(ahead)
        return key, height

    async def _step(self) -> None:
        store = self._driver.chain.store
        best = self._best_peer()
        if best is None or best[1] <= store.height:
            self._behind_since = None
            return
        now = self._clock()
        if self._behind_since is None:
            self._behind_since = now
        if best[1] < store.height + 2 and now - self._behind_since < self._patience_s:
            return
        peer, target = best
        log.info("catchup.fetch peer=%s from=%d to=%d", peer.hex()[:16], store.height + 1, target)
        blocks = await self._driver.network.request_blocks(peer, store.height + 1, target)
        await self._apply(blocks)
        self._behind_since = None

    async def _apply(self, blocks) -> None:
        """Check and apply fetched blocks in order, holding the consensus lock throughout
        so the engine cannot decide one of these heights concurrently."""
        driver = self._driver
        chain = driver.chain
        chain_id = chain.store.chain_id
        await self._verifier.verify_batch([
            (v.validator, v.signing_bytes(chain_id), v.signature)
            for _, certificate in blocks for v in certificate.precommits])
        for value, _ in blocks:
            await chain.preverify(value)
        async with driver.lock:
            for value, certificate in blocks:
                height = chain.store.height + 1
                if certificate.height < height:
                    continue  # decided live while we were fetching
                try:
                    verify_certificate(certificate, self._validators, chain_id, self._verifier,
                                       height=height, value_id=block_hash(value))
                except CertificateError as exc:
                    self.rejected += 1
                    log.warning("catchup.reject height=%d reason=%s", height, exc)
                    break
                if not chain.is_valid(height, value):
                    self.rejected += 1
                    log.error("catchup.reject height=%d reason=certified block does not extend our chain "
                              "(app hash divergence?)", height)
                    break
                await driver.apply_caught_up(height, value, certificate)
                self.blocks_fetched += 1
            await driver.resume_after_catch_up()
