"""The host's single writer: the only code that changes consensus state.

One task works through the inbox (node/host/inbox.py) one item at a time and
carries out every action the engine returns, in order, before taking the
next item.  That order is what makes the engine's guarantees real, as in
CometBFT's consensus state:

* every message the engine acts on is in the write-ahead log first (received
  ones before the engine sees them, signed ones durably, with the signing
  state, before they leave the process), so a restart replays them and the
  validator keeps its lock;
* a ``Commit`` is applied to the ledger, and the log truncated, before the
  next height's ``RequestValue`` builds on it;
* the committed tip, the judged blocks of the current height and the engine
  change nowhere else, so nothing can race them.

Everything slow or shared happens around it: signatures are verified on the
peer links' tasks before items are queued (node/host/intake.py), the
proposer waits in a task of its own, catch-up fetches and verifies on its
own, and only their results come through the inbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

from consensus.certificate import CommitCertificate
from consensus.engine import Engine
from consensus.events import (
    Action,
    Broadcast,
    Commit,
    EvidenceFound,
    PersistSigningState,
    ProposalReceived,
    RequestValue,
    ScheduleTimeout,
    SigningState,
    Step,
    TimeoutFired,
    ValueReady,
    VoteReceived,
)
from consensus.evidence import Evidence
from consensus.messages import Proposal
from consensus.wal import Replay, WriteAheadLog
from node.host.commit import Committer
from node.host.failpoints import Failpoint
from node.host.gossip import ConsensusGossip
from node.host.heartbeat import Heartbeat
from node.host.inbox import (
    CaughtUp,
    FetchedBlock,
    Inbox,
    Item,
    PeerProposal,
    PeerVote,
    ProposeNow,
)
from node.host.proposer import Proposer
from node.host.tip import Tip
from node.host.validity import Candidate, CheckedBlock, Refusal, Validity, Verdict

log = logging.getLogger(__name__)

# Verdicts kept for the current height, by value id: each proposal of each round at most.
MAX_JUDGED = 64
# Proposals for the next height held until it starts (they cannot be judged before).
MAX_EARLY_PROPOSALS = 16
MAX_KEPT_EVIDENCE = 256


class ConsensusDriver:
    """Feeds the engine, carries out its actions, and owns the ledger's write path."""

    def __init__(self, *, engine: Engine, wal: WriteAheadLog, barred: bool, inbox: Inbox, tip: Tip,
                 validity: Validity,
                 proposer: Proposer, heartbeat: Heartbeat, committer: Committer, gossip: ConsensusGossip,
                 on_evidence: Callable[[Evidence], None], on_fatal: Callable[[BaseException], None],
                 failpoint: Failpoint | None = None, clock: Callable[[], float] = time.monotonic,
                 offload_signing: bool = False) -> None:
        """``offload_signing``: the engine's signatures may wait on a token or a remote signer, so the
        engine runs in a worker thread (still one call at a time: this task awaits each) and the event
        loop, with the peer links and the API, keeps going meanwhile."""
        assert engine.height == tip.height + 1, "the engine decides the height after the tip"
        self.engine = engine
        self._wal = wal
        # The log was lost or damaged: heights reached by catch-up are barred from signing
        # too, until one is decided live (see consensus.wal.signing_floor).
        self._barred = barred
        self._inbox = inbox
        self._tip = tip
        self._validity = validity
        self._proposer = proposer
        self._heartbeat = heartbeat
        self._committer = committer
        self._gossip = gossip
        self._on_evidence = on_evidence
        self._on_fatal = on_fatal
        self._failpoint = failpoint
        self._clock = clock
        self._offload = offload_signing
        self._last_commit_at = clock()
        self._judged: OrderedDict[bytes, Verdict] = OrderedDict()
        self._early: deque[PeerProposal] = deque(maxlen=MAX_EARLY_PROPOSALS)
        self._evidence: deque[Evidence] = deque(maxlen=MAX_KEPT_EVIDENCE)
        self._timers: set[asyncio.TimerHandle] = set()
        self._idle: set[asyncio.Task[None]] = set()  # propose timeouts waiting for a transaction or the heartbeat
        self._task: asyncio.Task[None] | None = None

    @property
    def tip(self) -> Tip:
        return self._tip

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        return tuple(self._evidence)

    # ---- lifecycle

    async def start(self, replay: Replay) -> None:
        """Start the engine and give it back, from the write-ahead log, what it held before a restart."""
        engine = self.engine
        if self._wal.height != engine.height:
            self._wal.begin(engine.height)
        lock = replay.lock
        log.info("wal.replay height=%d messages=%d own=%d signing_state=%s locked_round=%d locked_value=%s",
                 replay.height, len(replay.messages), replay.own, _state_text(replay.signing_state),
                 -1 if lock is None else lock.round, "none" if lock is None or lock.value_id is None
                 else lock.value_id.hex())
        await self._step(engine.start)
        for message in replay.messages:
            if message.height != engine.height:
                continue  # the log was about a height decided since
            self._gossip.keep(message)
            if isinstance(message, Proposal):
                valid = await self._judge(await self._validity.prepare(message.value))
                await self._step(engine.handle, ProposalReceived(message, verified=True, valid=valid))
            else:
                await self._step(engine.handle, VoteReceived(message, verified=True))
        assert lock is None or engine.height > replay.height or engine.locked_round >= lock.round, \
            "the engine relearned the lock its own precommit took"
        self._gossip.start()
        self._task = asyncio.create_task(self._run(), name="consensus")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._proposer.stop()
        await self._gossip.stop()
        idle = list(self._idle)
        for task in idle:
            task.cancel()
        await asyncio.gather(*idle, return_exceptions=True)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # ---- what other tasks hand in

    async def catch_up(self, blocks: Sequence[FetchedBlock]) -> int:
        """Commit fetched blocks after the tip, in this task's turn; return how many were applied."""
        applied: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._inbox.put_control(CaughtUp(tuple(blocks), applied))
        return await applied

    # ---- the single writer

    async def _run(self) -> None:
        item: Item | None = None
        try:
            while True:
                item = await self._inbox.get()
                await self._handle(item)
                while self._early and self._early[0].proposal.height <= self.engine.height:
                    await self._handle(self._early.popleft())
        except Exception as exc:
            if isinstance(item, CaughtUp) and not item.applied.done():
                item.applied.set_exception(exc)
            # A block that cannot be written (disk full, I/O error) must stop the
            # validator loudly: carrying on would serve a frozen state as if live.
            log.critical("consensus.halted height=%d reason=%s", self.engine.height, _one_line(exc))
            self._on_fatal(exc)

    async def _handle(self, item: Item) -> None:
        engine = self.engine
        match item:
            case PeerProposal(proposal=proposal, candidate=candidate):
                if proposal.height == engine.height + 1:
                    self._early.append(item)  # judged once its height starts
                    return
                if proposal.height != engine.height or engine.knows(proposal):
                    return
                valid = await self._judge(candidate)
                self._wal.received(proposal)
                self._gossip.keep(proposal)
                await self._step(engine.handle, ProposalReceived(proposal, verified=True, valid=valid))
            case PeerVote(vote=vote):
                if vote.height == engine.height:
                    if engine.knows(vote):
                        return
                    self._wal.received(vote)
                    self._gossip.keep(vote)
                await self._step(engine.handle, VoteReceived(vote, verified=True))
            case TimeoutFired():
                await self._step(engine.handle, item)
            case ProposeNow(height=height, round=round):
                await self._propose(height, round)
            case CaughtUp(blocks=blocks, applied=applied):
                count = await self._catch_up(blocks)
                if not applied.done():
                    applied.set_result(count)

    async def _step(self, call: Callable[..., Sequence[Action]], *args: object) -> None:
        """One engine call, then its actions; the call runs off the loop when signing may wait."""
        actions = await asyncio.to_thread(call, *args) if self._offload else call(*args)
        await self._execute(actions)

    async def _execute(self, actions: Sequence[Action]) -> None:
        """Carry out the engine's actions strictly in order."""
        for action in actions:
            match action:
                case PersistSigningState(state=state, message=message):
                    await asyncio.to_thread(self._wal.signed, state, message)
                    if self._failpoint is not None:
                        self._failpoint.signed(message)
                case Broadcast(message=message):
                    self._gossip.send(message)
                case ScheduleTimeout(step=step, height=height, round=round, duration_ms=ms):
                    due = self._heartbeat.due(self._tip, round, self._last_commit_at) \
                        if step is Step.PROPOSE else None
                    if due is None:
                        self._schedule(TimeoutFired(step, height, round), ms / 1000)
                    else:
                        self._schedule_when_busy(TimeoutFired(step, height, round), ms / 1000, due)
                case RequestValue(height=height, round=round):
                    self._proposer.schedule(height, round, self._last_commit_at,
                                            self._heartbeat.due(self._tip, round, self._last_commit_at))
                case Commit(height=height, value=value, certificate=certificate):
                    checked = await self._decided(value, certificate)
                    await self._apply(checked, certificate)
                    self._barred = False
                    self._enter(height + 1)
                case EvidenceFound(evidence=evidence):
                    self._evidence.append(evidence)
                    self._on_evidence(evidence)
                    log.warning("consensus.evidence validator=%s height=%d round=%d",
                                evidence.validator.hex(), evidence.first.height, evidence.first.round)

    # ---- validity, proposing, committing

    async def _judge(self, candidate: Candidate, live: bool = True) -> bool:
        """valid(v) for a value of the current height, judged once per value; a ``live`` proposal
        also against this validator's clock (node/host/validity.py)."""
        verdict = self._judged.get(candidate.value_id)
        if verdict is None:
            now_ms = int(time.time() * 1000) if live else None
            verdict = await asyncio.to_thread(self._validity.judge, self._tip, candidate, now_ms)
            # A time too far ahead of this clock is a verdict of the moment: a re-proposal of the
            # same block in a later round is judged again, when the clock may have caught up.
            if verdict is not Refusal.TIME_TOO_FAR_AHEAD:
                self._judged[candidate.value_id] = verdict
            while len(self._judged) > MAX_JUDGED:
                self._judged.popitem(last=False)
            if isinstance(verdict, Refusal):
                log.info("consensus.invalid_value height=%d value=%s reason=%s",
                         self._tip.height + 1, candidate.value_id.hex(), verdict)
        return isinstance(verdict, CheckedBlock)

    async def _decided(self, value: bytes, certificate: CommitCertificate) -> CheckedBlock:
        """The checked block the engine just decided: judged when it arrived, or judged now
        if its verdict was evicted meanwhile (the engine decides only values judged valid)."""
        if not isinstance(self._judged.get(certificate.value_id), CheckedBlock):
            self._judged.pop(certificate.value_id, None)
            await self._judge(await self._validity.prepare(value), live=False)
        checked = self._judged.get(certificate.value_id)
        assert isinstance(checked, CheckedBlock), "the engine decided a value that is not valid"
        return checked

    async def _propose(self, height: int, round: int) -> None:
        """Build the block for (height, round) on the tip, if the engine still waits for it."""
        engine = self.engine
        if (height, round) != (engine.height, engine.round) or engine.step != Step.PROPOSE:
            return  # the engine moved on while the proposer waited
        now_ms = int(time.time() * 1000)
        proposer = engine.own_key
        assert proposer is not None, "the engine asks for a value only of a validator"
        value, block, txs = self._proposer.build(self._tip, proposer, now_ms)
        candidate = self._validity.prepared(value, block, txs)
        if not await self._judge(candidate):
            # A pending transaction went stale under a commit: an empty block is always valid.
            value, block, txs = self._proposer.build_empty(self._tip, proposer, now_ms)
            candidate = self._validity.prepared(value, block, txs)
            await self._judge(candidate)
        log.info("consensus.propose height=%d round=%d txs=%d bytes=%d", height, round, len(txs), len(value))
        await self._step(engine.handle, ValueReady(height, round, value, valid=True))

    async def _apply(self, checked: CheckedBlock, certificate: CommitCertificate) -> None:
        now = self._clock()
        self._tip = await self._committer.commit(checked, certificate, now - self._last_commit_at)
        self._last_commit_at = now

    def _enter(self, height: int) -> None:
        """Height ``height`` is now being decided: what was kept for the previous one goes."""
        assert height == self._tip.height + 1, "the height after the tip"
        self._wal.begin(height)
        self._judged.clear()
        # Waits for a transaction or the heartbeat at a decided height would only poll the mempool on.
        self._proposer.abandon()
        for task in self._idle:
            task.cancel()
        self._gossip.new_height(height)

    async def _catch_up(self, blocks: Sequence[FetchedBlock]) -> int:
        """Commit fetched blocks that extend the tip, then join consensus above them."""
        applied = 0
        for fetched in blocks:
            height = self._tip.height + 1
            if fetched.certificate.height < height:
                continue  # decided live while catch-up was fetching it
            if fetched.certificate.height > height:
                break
            doubt = await asyncio.to_thread(self._validity.certified, fetched.candidate, fetched.certificate)
            if doubt is not None:
                log.warning("catchup.reject height=%d reason=%s", height, " ".join(doubt.split()))
                break
            self._judged.pop(fetched.candidate.value_id, None)
            verdict = await asyncio.to_thread(self._validity.judge, self._tip, fetched.candidate)
            if isinstance(verdict, Refusal):
                # A block the network certified that this ledger refuses: the app hashes diverged.
                log.error("catchup.diverged height=%d reason=%s", height, verdict)
                break
            await self._apply(verdict, fetched.certificate)
            applied += 1
        if applied:
            height = self._tip.height + 1
            if self._barred:
                floor = SigningState.barring(height)
                self.engine.bar_signing(floor)
                self._wal.bar(floor)
                log.warning("wal.barred height=%d", height)
            self._enter(height)
            await self._step(self.engine.skip_to_height, height)
        return applied

    # ---- timers

    def _schedule(self, event: TimeoutFired, delay_s: float) -> None:
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            self._inbox.put_control(event)

        handle = asyncio.get_running_loop().call_later(delay_s, fire)
        self._timers.add(handle)

    def _schedule_when_busy(self, event: TimeoutFired, delay_s: float, due: float) -> None:
        """Start the propose timeout once a transaction is pending or the heartbeat is due: a timeout
        started at once would fire long before an idle proposer proposes, and waste the round."""
        async def wait() -> None:
            await self._heartbeat.wait(due)
            self._schedule(event, delay_s)

        task = asyncio.create_task(wait(), name=f"idle-{event.height}")
        self._idle.add(task)
        task.add_done_callback(self._idle.discard)


def _state_text(state: object) -> str:
    if state is None:
        return "none"
    return f"{state.height}/{state.round}/{state.step.name.lower()}"  # type: ignore[attr-defined]


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())
