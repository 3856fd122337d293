"""The deterministic discrete-event simulation that drives real engines.

Time is simulated milliseconds; pending work is a heap of (time, sequence,
event) so that ties break by scheduling order and one seed replays a run
exactly.  Each validator runs the real ``Engine``; the simulator plays the host:
it carries out actions in order, writes its write-ahead log to a simulated disk,
moves messages through the faulty network, crashes and restarts validators,
and lets lagging validators catch up from a peer's committed blocks.

The host does what a real node must do for the protocol's liveness argument
(every message a correct validator holds eventually reaches every correct
validator) to survive losses and crashes:

* Gossip.  A validator broadcasts each message once, and every
  ``GOSSIP_INTERVAL_MS`` re-offers each peer the messages of its current height
  the peer does not hold: its own and those it relayed, including Byzantine
  messages only it received and messages that reached it a height early.  A
  message for a round the peer's engine has not reached does not count as held
  (the engine may have dropped it under its future-round bound).  A peer that
  is behind gets the committed blocks it lacks, with certificates it verifies
  before skipping ahead.
* A write-ahead log (``consensus.wal``, the node's own semantics).  Every
  received message of the height being decided is logged before the engine
  sees it, and every signed message in the same durable write as its signing
  state; a restarted validator replays the log into its new engine,
  relearning its lock and re-gossiping what it had.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from consensus.certificate import CertificateError, CommitCertificate, verify_certificate
from consensus.engine import Engine, TimeoutConfig
from consensus.events import (
    Action,
    Broadcast,
    Commit,
    EvidenceFound,
    PersistSigningState,
    ProposalReceived,
    RequestValue,
    ScheduleTimeout,
    TimeoutFired,
    ValueReady,
    VoteReceived,
)
from consensus.evidence import Evidence
from consensus.messages import Message, Proposal, Vote, value_id
from consensus.sim.byzantine import (
    ByzantineContext,
    Collude,
    CollusionPlan,
    Strategy,
    honest_value,
    is_valid_value,
    make_strategy,
)
from consensus.sim.checkers import (
    CommitRecord,
    SetRecord,
    SignedRecord,
    Violation,
    check_agreement,
    check_certificates,
    check_liveness,
    check_no_equivocation,
    check_validator_sets,
    check_validity,
    conflicting_messages,
)
from consensus.sim.crypto import MemoVerifier, SimSigner
from consensus.sim.network import Network
from consensus.sim.scenario import ChangeKind, Crash, FaultPlan, Scenario, draw_plan
from consensus.sim.validator import MemoryWalStorage, SimValidator
from consensus.validators import Validator, ValidatorSet

log = logging.getLogger(__name__)

CHAIN_ID = "somnode-sim"
# Short timeouts keep simulated rounds short; they still grow per round, which
# is what liveness after GST relies on.
SIM_TIMEOUTS = TimeoutConfig(propose_ms=200, prevote_ms=100, precommit_ms=100, delta_ms=50)
GOSSIP_INTERVAL_MS = 150
# Most blocks one catch-up message carries; a longer gap takes several rounds of gossip.
MAX_BLOCKS_PER_CATCH_UP = 16
# After the network is stable and every crashed validator is back, each
# honest validator must reach the target height within this much simulated time.
LIVENESS_BASE_MS = 10_000
LIVENESS_PER_HEIGHT_MS = 3_000
# A crash armed to strike after the next PersistSigningState strikes anyway this late.
CRASH_FALLBACK_MS = 200

_DELIVER, _TIMEOUT, _VALUE, _GOSSIP, _CRASH, _CRASH_NOW, _RESTART, _BLOCKS, _COMMIT = range(9)
# A rotated validator's second key is the key of this index plus its own.
ROTATED_KEYS = 1_000
Blocks = tuple[tuple[int, bytes, CommitCertificate], ...]


@dataclass(frozen=True, slots=True)
class _Input:
    """An event for a validator's engine, valid only for the process incarnation that asked for it."""

    incarnation: int
    event: TimeoutFired | ValueReady


# What a queued event carries, by kind: _DELIVER a message, _TIMEOUT and _VALUE an _Input,
# _GOSSIP the incarnation it was scheduled by, _CRASH, _CRASH_NOW and _RESTART a Crash, _BLOCKS Blocks.
_Payload = Message | _Input | int | Crash | Blocks
_TRACE_ENTRY = struct.Struct(">qBHH")  # time, event kind, validator, detail length


@dataclass(frozen=True, slots=True)
class SimResult:
    scenario: Scenario
    violations: tuple[Violation, ...]
    commits: tuple[CommitRecord, ...]
    honest: frozenset[int]
    byzantine: dict[int, str]
    evidence: tuple[tuple[int, Evidence], ...]
    equivocators: frozenset[int]  # honest validators that signed conflicting messages
    accused: frozenset[int]  # validators some engine found evidence against
    messages_sent: int
    messages_lost: int
    events: int
    crashes: int
    stable_ms: int  # GST or the last restart, whichever came later
    end_ms: int
    deadline_ms: int
    trace_digest: str

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def catch_ups(self) -> int:
        """Heights honest validators learned from a peer's blocks rather than deciding them."""
        return sum(1 for r in self.commits if r.via == "catch-up" and r.validator in self.honest)

    @property
    def target_reached_ms(self) -> int | None:
        """When the last honest validator reached the target height; None if one never did."""
        reached: dict[int, int] = {}
        for record in self.commits:
            if record.validator in self.honest and record.height == self.scenario.heights:
                reached.setdefault(record.validator, record.time_ms)
        return max(reached.values()) if len(reached) == len(self.honest) else None

    @property
    def min_honest_height(self) -> int:
        heights = dict.fromkeys(self.honest, 0)
        for record in self.commits:
            if record.validator in heights:
                heights[record.validator] = max(heights[record.validator], record.height)
        return min(heights.values())


class Simulation:
    """One scenario: build it, ``run()`` it once, read the ``SimResult``."""

    def __init__(self, scenario: Scenario, verifier: MemoVerifier | None = None) -> None:
        self.scenario = scenario
        self.plan: FaultPlan = draw_plan(scenario)
        self.verifier = verifier if verifier is not None else MemoVerifier()
        self.network = Network(self.plan.network, random.Random(f"somnode-sim-network:{scenario.seed}"))
        count = scenario.validators + self.plan.joiners
        rotated = {c.validator for c in self.plan.changes if c.kind is ChangeKind.ROTATE}
        # Each validator's keys: its own, and a second one for a planned rotation.
        keys = [(SimSigner(i),) + ((SimSigner(ROTATED_KEYS + i),) if i in rotated else ()) for i in range(count)]
        self.index_of = {signer.public_key: i for i, own in enumerate(keys) for signer in own}
        self._sets = _validator_sets(self.plan, keys)
        self._collusion = self._collusion_plan() if "collude" in self.plan.byzantine.values() else None
        self.nodes = [self._make_node(i, own) for i, own in enumerate(keys)]
        self.sets_seen: list[SetRecord] = []
        self.honest = frozenset(n.index for n in self.nodes if n.honest)
        self.now = 0
        self._queue: list[tuple[int, int, int, int, _Payload]] = []
        self._seq = 0
        self._events = 0
        self._trace = hashlib.blake2b(digest_size=16)
        self.commits: list[CommitRecord] = []
        self.signed: list[SignedRecord] = []
        self.evidence: list[tuple[int, Evidence]] = []
        self._pending_crashes = 0
        self._crashes = 0
        self._last_restart_ms = 0

    def validators_at(self, height: int) -> ValidatorSet:
        """The validator set of ``height``: each planned change committed at H holds from H+2."""
        return next(validators for start, validators in reversed(self._sets) if start <= height)

    def _make_node(self, index: int, signers: tuple[SimSigner, ...]) -> SimValidator:
        strategy_name = self.plan.byzantine.get(index)
        if strategy_name is None:
            return SimValidator(index, signers, None, None)
        peers = tuple(i for i in range(self.scenario.validators + self.plan.joiners) if i != index)
        context = ByzantineContext(index, signers[0], CHAIN_ID, peers,
                                   random.Random(f"somnode-sim-byzantine:{self.scenario.seed}:{index}"))
        strategy: Strategy
        if strategy_name == "collude":
            assert self._collusion is not None, "a collusion plan exists when anyone colludes"
            strategy = Collude(self._collusion)
        else:
            strategy = make_strategy(strategy_name)
        return SimValidator(index, signers, strategy, context)

    def _collusion_plan(self) -> CollusionPlan:
        """One plan shared by all colluders: the honest validators split in two halves."""
        colluders = tuple(sorted(self.plan.byzantine))
        honest = [i for i in range(self.scenario.validators) if i not in self.plan.byzantine]
        half = (len(honest) + 1) // 2
        return CollusionPlan(tuple(honest[:half]), tuple(honest[half:]), colluders)

    # ---- running

    def run(self) -> SimResult:
        if self._events or self._queue:
            raise RuntimeError("a Simulation runs once; build a new one to run the scenario again")
        target = self.scenario.heights
        for node in self.nodes:
            self._start_engine(node)
        self._pending_crashes = len(self.plan.crashes)
        deadline = self._deadline()
        while self._queue:
            time, _, kind, target_node, payload = heapq.heappop(self._queue)
            if time > deadline:
                deadline = self._deadline()  # a restart moves the deadline
                if time > deadline:
                    break
            self.now = time
            self._events += 1
            self._dispatch(kind, self.nodes[target_node], payload)
            if self._finished(target):
                break
        return self._result()

    def _deadline(self) -> int:
        stable = max(self.plan.network.gst_ms, self._last_restart_ms)
        return stable + LIVENESS_BASE_MS + LIVENESS_PER_HEIGHT_MS * self.scenario.heights

    def _finished(self, target: int) -> bool:
        if self._pending_crashes:
            return False
        return all(self.nodes[i].up and self.nodes[i].disk.last_height >= target for i in self.honest)

    def _result(self) -> SimResult:
        target = self.scenario.heights
        deadline = self._deadline()
        violations = [
            *check_agreement(self.commits, self.honest),
            *check_validity(self.commits, self.honest, is_valid_value),
            *check_certificates(self.commits, self.honest, self.validators_at, CHAIN_ID, self.verifier),
            *check_validator_sets(self.sets_seen, self.honest, self.validators_at),
            *check_liveness(self.commits, self.honest, target, deadline),
            *check_no_equivocation(self.signed),
            *self._check_evidence(),
        ]
        return SimResult(
            scenario=self.scenario,
            violations=tuple(violations),
            commits=tuple(self.commits),
            honest=self.honest,
            byzantine=dict(self.plan.byzantine),
            evidence=tuple(self.evidence),
            equivocators=frozenset(a.validator for a, _ in conflicting_messages(self.signed)),
            accused=frozenset(self.index_of[e.validator] for _, e in self.evidence),
            messages_sent=self.network.sent,
            messages_lost=self.network.lost,
            events=self._events,
            crashes=self._crashes,
            stable_ms=max(self.plan.network.gst_ms, self._last_restart_ms),
            end_ms=self.now,
            deadline_ms=deadline,
            trace_digest=self._trace.hexdigest(),
        )

    def _check_evidence(self) -> list[Violation]:
        """Evidence may only ever name a validator that really equivocated."""
        honest_equivocators = {a.validator for a, _ in conflicting_messages(self.signed)}
        accused: dict[int, int] = {}
        for observer, evidence in self.evidence:
            accused.setdefault(self.index_of[evidence.validator], observer)
        return [
            Violation("evidence", f"validator {observer} holds evidence against honest validator {v}, "
                                  f"which never signed conflicting messages")
            for v, observer in accused.items()
            if v in self.honest and v not in honest_equivocators
        ]

    # ---- the event queue

    def _schedule(self, time: int, kind: int, node: int, payload: _Payload) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time, self._seq, kind, node, payload))

    def _dispatch(self, kind: int, node: SimValidator, payload: _Payload) -> None:
        engine = node.engine
        if kind == _DELIVER:
            assert isinstance(payload, (Proposal, Vote))
            self._record(kind, node.index, payload.signature[:8])
            self._deliver(node, payload)
        elif kind in (_TIMEOUT, _VALUE):
            assert isinstance(payload, _Input)
            if engine is not None and payload.incarnation == node.incarnation:
                event = payload.event
                detail = (b"%d/%d/%d" % (event.step, event.height, event.round) if isinstance(event, TimeoutFired)
                          else b"%d/%d" % (event.height, event.round))
                self._record(kind, node.index, detail)
                self._execute(node, engine.handle(event))
        elif kind == _GOSSIP:
            if node.up and payload == node.incarnation:
                self._gossip(node)
                self._schedule(self.now + GOSSIP_INTERVAL_MS, _GOSSIP, node.index, node.incarnation)
        elif kind == _CRASH:
            assert isinstance(payload, Crash)
            self._record(kind, node.index, b"armed")
            self._arm_crash(node, payload)
        elif kind == _CRASH_NOW:
            assert isinstance(payload, Crash)
            if node.crash_pending is payload:
                self._crash(node, payload)
        elif kind == _RESTART:
            if node.down is payload:
                self._record(kind, node.index, b"%d" % node.disk.last_height)
                node.down = None
                self._last_restart_ms = self.now
                self._pending_crashes -= 1
                self._start_engine(node)
        elif kind == _BLOCKS:
            assert isinstance(payload, tuple)
            self._record(kind, node.index, b",".join(b"%d" % b[0] for b in payload))
            if node.up:
                self._catch_up(node, payload)

    def _record(self, kind: int, node: int, detail: bytes) -> None:
        """Fold one processed event into the trace digest that replays are compared by."""
        self._trace.update(_TRACE_ENTRY.pack(self.now, kind, node, len(detail)) + detail)

    # ---- the host of one validator

    def _start_engine(self, node: SimValidator) -> None:
        height = node.disk.last_height + 1
        if not self.scenario.persist:
            node.disk.wal_storage = MemoryWalStorage()  # amnesia: the log is gone
        wal = node.disk.open_wal()
        replay = wal.replay(height)
        if wal.height != height:
            wal.begin(height)
        node.wal = wal
        schedule: Callable[[int], ValidatorSet] = self.validators_at
        if node.index == self.scenario.early:  # a host that applies set changes a height early
            schedule = partial(_a_height_early, self.validators_at)
        node.engine = Engine(CHAIN_ID, schedule, node.signers, self.verifier, is_valid_value,
                             height, signing_state=replay.signing_state, timeouts=SIM_TIMEOUTS)
        self._enter_height(node, height)
        self._saw_height(node)
        self._execute(node, node.engine.start())
        if self.scenario.wal_replay:
            self._replay_wal(node, replay.messages)
        if node.honest:  # Byzantine validators send only what their strategy decides
            self._schedule(self.now + GOSSIP_INTERVAL_MS, _GOSSIP, node.index, node.incarnation)

    def _replay_wal(self, node: SimValidator, messages: tuple[Message, ...]) -> None:
        """After a restart, relearn (and re-gossip) what we received and signed before the crash."""
        for message in messages:
            if not node.up:
                return
            self._accept(node, message)

    def _enter_height(self, node: SimValidator, height: int) -> None:
        node.enter_height(height)
        for crash in self.plan.crashes:
            if crash.validator == node.index and height >= crash.at_height and crash not in node.crashes_armed:
                node.crashes_armed.add(crash)
                self._schedule(self.now + crash.offset_ms, _CRASH, node.index, crash)

    def _saw_height(self, node: SimValidator) -> None:
        """Record the validator set the node's engine took for the height it is now at."""
        assert node.engine is not None
        self.sets_seen.append(SetRecord(node.index, node.engine.height, node.engine.validators))

    def _execute(self, node: SimValidator, actions: Sequence[Action]) -> None:
        """Carry out the engine's actions in order; a crash may cut the list short."""
        for action in actions:
            if not node.up:
                return
            if isinstance(action, Broadcast):
                self._broadcast(node, action.message)
            elif isinstance(action, PersistSigningState):
                assert node.wal is not None, "a running validator has its log open"
                node.wal.signed(action.state, action.message)
                if node.crash_pending is not None:
                    self._crash(node, node.crash_pending)
                    return
            elif isinstance(action, ScheduleTimeout):
                timeout = TimeoutFired(action.step, action.height, action.round)
                self._schedule(self.now + action.duration_ms, _TIMEOUT, node.index, _Input(node.incarnation, timeout))
            elif isinstance(action, RequestValue):
                value = honest_value(action.height, action.round, node.index, node.incarnation)
                ready = ValueReady(action.height, action.round, value)
                self._schedule(self.now, _VALUE, node.index, _Input(node.incarnation, ready))
            elif isinstance(action, Commit):
                self._commit(node, action.height, action.value, action.certificate, "consensus")
                self._enter_height(node, action.height + 1)
                self._saw_height(node)
                assert node.wal is not None
                node.wal.begin(action.height + 1)
            elif isinstance(action, EvidenceFound):
                if len(self.evidence) < 10_000:
                    self.evidence.append((node.index, action.evidence))
            else:
                raise TypeError(f"unknown engine action {action!r}")

    def _commit(self, node: SimValidator, height: int, value: bytes, certificate: CommitCertificate,
                via: str) -> None:
        node.disk.store_block(height, value, certificate)
        self.commits.append(CommitRecord(node.index, height, value, certificate, self.now, via))
        self._record(_COMMIT, node.index, b"%d/%s/%s" % (height, value_id(value)[:8], via.encode()))

    def _broadcast(self, node: SimValidator, message: Message) -> None:
        if node.strategy is None:
            self.signed.append(SignedRecord(node.index, message, self.now))
            node.remember(message)
            sends = [(message, tuple(i for i in range(len(self.nodes)) if i != node.index))]
        else:
            assert node.context is not None, "a Byzantine validator has its context"
            sends = node.strategy.outgoing(node.context, message)
        for sent, destinations in sends:
            for dst in destinations:
                self._send(node.index, dst, sent)

    def _send(self, src: int, dst: int, message: Message) -> None:
        for arrival in self.network.arrivals(src, dst, self.now):
            self._schedule(arrival, _DELIVER, dst, message)

    def _deliver(self, node: SimValidator, message: Message) -> None:
        if not node.up or message.height < node.height or message.signature in node.have:
            return
        if node.engine is not None and not node.engine.knows(message):
            assert node.wal is not None
            node.wal.received(message)  # before the engine acts on it
        self._accept(node, message)

    def _accept(self, node: SimValidator, message: Message) -> None:
        """Hand a message to the engine and keep it for relaying.

        A message for a round the engine has not reached yet may be dropped by
        its per-validator bound on future rounds, so it does not count as
        held until the engine is in that round: peers keep offering it, as
        Tendermint peers offer the votes of the round a peer is in.
        """
        if message.height < node.height or message.signature in node.have:
            return
        if message.height == node.height:
            node.remember(message)
        else:
            node.receive_early(message)
        engine = node.engine
        assert engine is not None, "only a running validator accepts messages"
        event = ProposalReceived(message) if isinstance(message, Proposal) else VoteReceived(message)
        self._execute(node, engine.handle(event))
        if node.engine is engine and message.height == node.height and message.round <= engine.round:
            node.have.add(message.signature)

    def _gossip(self, node: SimValidator) -> None:
        """Re-send to each peer what it lacks at our height, or the blocks it lacks."""
        for peer in self.nodes:
            if peer is node or not peer.up or peer.height > node.height:
                continue
            if peer.height < node.height:
                first = peer.disk.last_height + 1
                last = min(node.disk.last_height, first + MAX_BLOCKS_PER_CATCH_UP - 1)
                if first <= last:
                    blocks = tuple((h, *node.disk.blocks[h]) for h in range(first, last + 1))
                    for arrival in self.network.arrivals(node.index, peer.index, self.now):
                        self._schedule(arrival, _BLOCKS, peer.index, blocks)
                continue
            for message in node.missing_at(peer):
                self._send(node.index, peer.index, message)

    def _catch_up(self, node: SimValidator, blocks: Blocks) -> None:
        """Apply fetched blocks whose certificates verify, then rejoin consensus above them."""
        start = node.disk.last_height
        for height, value, certificate in blocks:
            if height != node.disk.last_height + 1:
                continue
            try:
                verify_certificate(certificate, self.validators_at(height), CHAIN_ID, self.verifier,
                                   height=height, value_id=value_id(value))
            except CertificateError as exc:
                log.warning("sim.catch_up_rejected validator=%d height=%d reason=%s", node.index, height, exc)
                break
            self._commit(node, height, value, certificate, "catch-up")
        engine = node.engine
        assert engine is not None and node.wal is not None, "only a running validator catches up"
        if node.disk.last_height > start and node.disk.last_height + 1 > engine.height:
            new_height = node.disk.last_height + 1
            self._enter_height(node, new_height)
            node.wal.begin(new_height)
            actions = engine.skip_to_height(new_height)
            self._saw_height(node)
            self._execute(node, actions)

    # ---- crashes

    def _arm_crash(self, node: SimValidator, crash: Crash) -> None:
        if not node.up or node.crash_pending is not None:
            self._pending_crashes -= 1  # it is already down or about to be: this crash is moot
            return
        if crash.after_persist:
            node.crash_pending = crash
            self._schedule(self.now + CRASH_FALLBACK_MS, _CRASH_NOW, node.index, crash)
        else:
            self._crash(node, crash)

    def _crash(self, node: SimValidator, crash: Crash) -> None:
        self._record(_CRASH_NOW, node.index, b"%d" % node.height)
        log.debug("sim.crash validator=%d height=%d time_ms=%d", node.index, node.height, self.now)
        node.lose_memory()
        node.down = crash
        self._crashes += 1
        self._schedule(self.now + crash.down_ms, _RESTART, node.index, crash)


def run_scenario(scenario: Scenario, verifier: MemoVerifier | None = None) -> SimResult:
    return Simulation(scenario, verifier).run()


def _validator_sets(plan: FaultPlan, keys: list[tuple[SimSigner, ...]]) -> list[tuple[int, ValidatorSet]]:
    """Each validator set with the height it holds from, as the plan's changes make them."""
    powers = dict(enumerate(plan.powers))
    rotated: set[int] = set()

    def of(current: dict[int, int]) -> ValidatorSet:
        return ValidatorSet([Validator(keys[i][1 if i in rotated else 0].public_key, power)
                             for i, power in current.items()])

    entries = [(1, of(powers))]
    for change in plan.changes:
        if change.kind in (ChangeKind.ADD, ChangeKind.POWER):
            powers[change.validator] = change.power
        elif change.kind is ChangeKind.REMOVE:
            del powers[change.validator]
        elif change.kind is ChangeKind.ROTATE:
            rotated.add(change.validator)
        entries.append((change.height + 2, of(powers)))
    return entries


def _a_height_early(schedule: Callable[[int], ValidatorSet], height: int) -> ValidatorSet:
    return schedule(height + 1)
