"""The validator runtime: the host that drives the sans-I/O consensus engine.

Everything that changes consensus or ledger state runs in one task, under one
lock: the engine's events are handled one at a time and each returned action
is carried out, in order, before the next event.  That order is what makes the
engine's guarantees real: a ``PersistSigningState`` is durable before the
``Broadcast`` after it leaves, and a ``Commit`` is applied to the ledger before
the next height's ``RequestValue`` builds on it.

Network input never blocks that task: proposals and votes have their
signatures verified in batches on the verifier's threads first (so the
engine's own checks hit the cache), then wait in a bounded queue.  A full
queue drops the message; every validator re-sends the verified messages of
the current height it holds (its own and those it received) every
``regossip_s`` seconds, which is also how a validator that missed messages
(a dropped link, a restart) reaches the current round and relearns the votes
it sent before a crash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.certificate import CommitCertificate
from consensus.engine import Engine
from consensus.events import (
    Action,
    Broadcast,
    Commit,
    Event,
    EvidenceFound,
    PersistSigningState,
    ProposalReceived,
    RequestValue,
    ScheduleTimeout,
    TimeoutFired,
    ValueReady,
    VoteReceived,
)
from consensus.messages import MessageType, Proposal, Vote
from consensus.validators import ValidatorSet
from node.core.block import Block
from node.host.signing_state import SigningStateFile
from node.host.validity import Chain
from node.ledger.store import BlockResult
from node.mempool.pool import Mempool
from node.p2p.transport import PeerNetwork
from node.p2p.wire import Status, TxBatch, WireMessage

log = logging.getLogger("somnode.runtime")

MAX_QUEUED_EVENTS = 10_000
# Votes of the current height relayed to peers: enough for dozens of rounds of a 16-validator set.
MAX_RELAYED_VOTES = 1024
# Proposals relayed: the latest few; a locked value comes back with its re-proposal.
MAX_RELAYED_PROPOSALS = 4
_PROPOSE_POLL_S = 0.01
MAX_KEPT_EVIDENCE = 256
MAX_KEPT_PROPOSALS = 16


@dataclass(frozen=True, slots=True)
class Committed:
    """What a commit hands to the runtime's listeners (API feed, metrics)."""

    height: int
    block: Block
    certificate: CommitCertificate
    result: BlockResult
    txs: tuple
    interval_s: float


CommitListener = Callable[[Committed], None]


class ConsensusDriver:
    """Feeds the engine and carries out its actions; owns the ledger's write path."""

    def __init__(
        self,
        *,
        engine: Engine,
        chain: Chain,
        mempool: Mempool,
        network: PeerNetwork,
        verifier,
        signing_file: SigningStateFile,
        validators: ValidatorSet,
        own_key: bytes,
        encode_certificate: Callable[[CommitCertificate], bytes],
        max_block_txs: int,
        max_block_bytes: int,
        regossip_s: float = 1.0,
        empty_block_wait_s: float = 0.5,
        block_interval_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.chain = chain
        self.mempool = mempool
        self.network = network
        self._verifier = verifier
        self._signing_file = signing_file
        self._validators = validators
        self._own_key = own_key
        self._encode_certificate = encode_certificate
        self._max_block_txs = max_block_txs
        self._max_block_bytes = max_block_bytes
        self._regossip_s = regossip_s
        self._empty_block_wait_s = empty_block_wait_s
        self._block_interval_s = block_interval_s
        self._proposing: set[asyncio.Task] = set()
        self._own_precommit: Vote | None = None
        self._proposals: dict[bytes, Proposal] = {}
        self._clock = clock
        self._chain_id = chain.store.chain_id
        self.lock = asyncio.Lock()
        self._queue: asyncio.Queue[Event] = asyncio.Queue(MAX_QUEUED_EVENTS)
        self._relayed_votes: dict[tuple, Vote] = {}
        self._relayed_proposals: dict[tuple, Proposal] = {}
        self._listeners: list[CommitListener] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: list[asyncio.Task] = []
        self._last_commit_time = clock()
        self.dropped_events = 0
        self.on_rejected: Callable[[str], None] = lambda reason: None
        self.on_evidence: Callable[[object], None] = lambda evidence: None
        self.on_fatal: Callable[[BaseException], None] = lambda exc: None
        self.evidence: list = []

    def add_commit_listener(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    # ---- lifecycle

    async def start(self, restored_precommit: Vote | None = None, restored_proposal: Proposal | None = None) -> None:
        """Start the engine; a precommit restored from the signing file re-teaches it its lock,
        and the proposal it was for gives it the locked value back."""
        self._own_precommit = restored_precommit
        async with self.lock:
            await self._execute(self.engine.start())
            if restored_precommit is not None and restored_precommit.height == self.engine.height:
                if restored_proposal is not None:
                    self._note_proposal(restored_proposal)
                    await self.chain.preverify(restored_proposal.value)
                    await self._execute(self.engine.handle(ProposalReceived(restored_proposal)))
                await self._execute(self.engine.handle(VoteReceived(restored_precommit)))
        self._tasks = [
            asyncio.create_task(self._run(), name="consensus"),
            asyncio.create_task(self._regossip_loop(), name="regossip"),
        ]

    async def stop(self) -> None:
        tasks = self._tasks + list(self._proposing)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # ---- input

    async def on_peer_message(self, peer: bytes, message: WireMessage) -> None:
        """The p2p layer's handler: verify in batches off the event loop, then queue for the engine."""
        match message:
            case Proposal():
                if message.height < self.engine.height:
                    return
                if not await self._authentic(peer, message.proposer, message):
                    return
                await self.chain.preverify(message.value)
                self._note_proposal(message)
                self._relay(message)
                self._enqueue(ProposalReceived(message))
            case Vote():
                if message.height < self.engine.height:
                    return
                if not await self._authentic(peer, message.validator, message):
                    return
                self._relay(message)
                self._enqueue(VoteReceived(message))
            case TxBatch():
                await self.mempool.add_gossip(list(message.txs))

    async def _authentic(self, peer: bytes, signer: bytes, message: Proposal | Vote) -> bool:
        """Drop a message whose signature is not its signer's before it costs the engine anything.

        A consensus message is one signature, checked here at once (and cached
        for the engine's own check): queueing it behind a flood of mempool
        batches in the verifier would stretch every consensus step.
        """
        if signer not in self._validators:
            reason = "unknown_signer"
        else:
            if self._verifier.verify(signer, message.signing_bytes(self._chain_id), message.signature):
                return True
            reason = "bad_signature"
        self.on_rejected(reason)
        log.warning("consensus.reject peer=%s reason=%s type=%s height=%d round=%d",
                    peer.hex()[:16], reason, type(message).__name__.lower(), message.height, message.round)
        return False

    def _enqueue(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped_events += 1

    # ---- the consensus task

    async def _run(self) -> None:
        try:
            while True:
                event = await self._queue.get()
                async with self.lock:
                    await self._execute(self.engine.handle(event))
        except Exception as exc:
            # A block that cannot be written (disk full, I/O error) must stop the
            # validator loudly: carrying on would serve a frozen state as if live.
            log.critical("consensus.halted height=%d reason=%s", self.engine.height, _one_line(exc))
            self.on_fatal(exc)

    async def _execute(self, actions: Sequence[Action]) -> None:
        """Carry out actions strictly in order; the caller holds ``self.lock``."""
        for index, action in enumerate(actions):
            match action:
                case PersistSigningState(state=state):
                    self._note_own_precommit(state, actions[index + 1] if index + 1 < len(actions) else None)
                    await asyncio.to_thread(self._signing_file.save, state, self._own_precommit,
                                            self._precommitted_proposal())
                case Broadcast(message=message):
                    self._relay(message)
                    if isinstance(message, Proposal):
                        self._note_proposal(message)
                    self.network.broadcast(message)
                case ScheduleTimeout(step=step, height=height, round=round, duration_ms=ms):
                    self._schedule(TimeoutFired(step, height, round), ms / 1000)
                case RequestValue(height=height, round=round):
                    self._spawn(self._propose_when_ready(height, round))
                case Commit(height=height, value=value, certificate=certificate):
                    await self._commit(height, value, certificate)
                case EvidenceFound(evidence=evidence):
                    self.evidence.append(evidence)
                    del self.evidence[:-MAX_KEPT_EVIDENCE]
                    self.on_evidence(evidence)
                    log.warning("consensus.evidence validator=%s height=%d round=%d",
                                evidence.validator.hex(), evidence.first.height, evidence.first.round)

    def _note_proposal(self, proposal: Proposal) -> None:
        """Proposals of the current height by value id: the one we precommit is saved with it."""
        if proposal.height != self.engine.height:
            return
        if len(self._proposals) >= MAX_KEPT_PROPOSALS:
            self._proposals.pop(next(iter(self._proposals)))
        self._proposals[proposal.value_id] = proposal

    def _precommitted_proposal(self) -> Proposal | None:
        precommit = self._own_precommit
        return None if precommit is None else self._proposals.get(precommit.value_id)

    def _note_own_precommit(self, state, following: Action | None) -> None:
        """Keep our latest precommit for a value at the signing height, saved with the signing state."""
        if self._own_precommit is not None and self._own_precommit.height != state.height:
            self._own_precommit = None
        if (isinstance(following, Broadcast) and isinstance(following.message, Vote)
                and following.message.type is MessageType.PRECOMMIT and following.message.value_id is not None):
            self._own_precommit = following.message

    def _schedule(self, event: Event, delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            self._enqueue(event)

        handle = loop.call_later(delay_s, fire)
        self._timers.add(handle)

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._proposing.add(task)
        task.add_done_callback(self._proposing.discard)

    async def _propose_when_ready(self, height: int, round: int) -> None:
        """Answer ``RequestValue`` once there is a block worth proposing.

        That is at once when the mempool holds a full block; else once
        ``block_interval_s`` has passed since the previous commit and something
        is pending; and in any case after ``empty_block_wait_s``.
        Proposing at once on an empty mempool would commit empty blocks as fast
        as the network allows; under load, proposing at once commits many small
        blocks, each paying the per-block costs (fsync'd signing-state and
        ledger writes, consensus steps, the event feed) for few transfers.
        Both waits stay well inside the other validators' propose timeout.
        """
        waited = 0.0
        while waited < self._empty_block_wait_s:
            pending = len(self.mempool)
            full = pending >= self._max_block_txs or self.mempool.size_bytes >= self._max_block_bytes
            if full or (pending and self._clock() - self._last_commit_time >= self._block_interval_s):
                break
            await asyncio.sleep(_PROPOSE_POLL_S)
            waited += _PROPOSE_POLL_S
        async with self.lock:  # a catch-up may be applying blocks: build only on a settled tip
            if (height, round) != (self.engine.height, self.engine.round) or height != self.chain.store.height + 1:
                return  # the engine moved on while we waited
            txs = self.mempool.reap(self._max_block_txs, self._max_block_bytes)
            value = self.chain.build(height, self._own_key, int(self._clock() * 1000), txs)
        log.info("consensus.propose height=%d round=%d txs=%d bytes=%d", height, round, len(txs), len(value))
        self._enqueue(ValueReady(height, round, value))

    async def _commit(self, height: int, value: bytes, certificate: CommitCertificate) -> None:
        decoded = self.chain.decode(value)
        assert decoded is not None, "the engine commits only values that passed valid(v)"
        result = await asyncio.to_thread(
            self.chain.store.apply_block, height, decoded.txs, value, self._encode_certificate(certificate))
        self.chain.committed(height, certificate.value_id, decoded.block)
        self.mempool.update(decoded.txs)
        now = self._clock()
        interval, self._last_commit_time = now - self._last_commit_time, now
        self._relayed_votes.clear()
        self._relayed_proposals.clear()
        self._proposals.clear()
        self.network.broadcast(Status(height))
        log.info("consensus.commit height=%d round=%d txs=%d app_hash=%s",
                 height, certificate.round, len(decoded.txs), result.app_hash.hex())
        committed = Committed(height, decoded.block, certificate, result, decoded.txs, interval)
        for listener in self._listeners:
            listener(committed)

    async def apply_caught_up(self, height: int, value: bytes, certificate: CommitCertificate) -> None:
        """Apply a block fetched by catch-up; the caller holds ``self.lock`` and checked it."""
        await self._commit(height, value, certificate)

    async def resume_after_catch_up(self) -> None:
        """Restart the engine at the height after the ledger's tip; the caller holds ``self.lock``."""
        next_height = self.chain.store.height + 1
        if next_height > self.engine.height:
            await self._execute(self.engine.skip_to_height(next_height))

    # ---- re-gossip

    def _relay(self, message: Proposal | Vote) -> None:
        """Keep a verified message of the current height for re-gossip.

        Every vote is relayed, not just our own: a validator that restarted has
        lost the votes it sent before the crash, and without seeing again the
        prevotes that justified a lock (its own among them) it could never
        accept the locked value's re-proposal (lines 28-33); relaying what every
        honest validator received is what the paper's gossip assumption means.
        """
        if message.height != self.engine.height:
            return
        if isinstance(message, Proposal):
            store, key, bound = self._relayed_proposals, (message.round, message.proposer), MAX_RELAYED_PROPOSALS
        else:
            store, key, bound = self._relayed_votes, (message.type, message.round, message.validator), MAX_RELAYED_VOTES
        if key in store:
            return  # the first one seen stays: an equivocator's second message is not ours to spread
        store[key] = message
        while len(store) > bound:
            store.pop(next(iter(store)))

    async def _regossip_loop(self) -> None:
        """Re-send the current height's messages we hold, and our height, every ``regossip_s``."""
        while True:
            await asyncio.sleep(self._regossip_s)
            height = self.engine.height
            for message in [*self._relayed_proposals.values(), *self._relayed_votes.values()]:
                if message.height == height:
                    self.network.broadcast(message)
            self.network.broadcast(Status(self.chain.store.height))


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())
