"""Tendermint consensus for one validator, as a sans-I/O state machine.

This is Algorithm 1 of Buchman, Kwon, Milosevic, "The latest gossip on BFT
consensus" (arXiv:1807.04938), with the paper's variable names.  Each upon-rule
is a method or branch labelled with its line numbers.  After every event the
engine re-evaluates the rules until none fires, which is how the paper's
"upon" clauses are meant to be read: a rule fires as soon as its condition
holds, whichever message completed it.

What the paper leaves out, because its processes never crash and have
unbounded memory:

* A validator never signs at or below its persisted ``SigningState``, so a
  restarted validator cannot equivocate; where it would have signed it simply
  stays silent, as if its message had been lost.
* A validator restarted inside a height has lost its lock (lockedValue,
  lockedRound).  It relearns the lock from its own precommits of that height
  when they come back to it: the lock is always the value of its highest-round
  precommit for a value.  The host replays them from its write-ahead log
  (``consensus.wal``) before anything else reaches the engine, so a restart
  is not amnesia; a host without that log would have to count every restart
  as a fault against f.
* Signing can fail (a remote signer or a hardware token out of reach): the
  message is then treated as lost, which the protocol tolerates.
* Memory is bounded: rounds far behind the current one are forgotten, each
  validator may occupy only a few future rounds, and messages for the next
  height are buffered per validator with a cap.  Dropping a message is
  indistinguishable from the network losing it, which the protocol tolerates.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.certificate import CommitCertificate
from consensus.crypto import Signer, SigningUnavailable, Verifier
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
    SigningState,
    Step,
    TimeoutFired,
    ValueReady,
    VoteReceived,
)
from consensus.evidence import Evidence, conflicting, make_evidence, signer_of
from consensus.messages import (
    MessageType,
    Proposal,
    Vote,
    is_well_formed,
    signing_bytes,
    value_id,
)
from consensus.validators import ValidatorSet
from consensus.votes import HeightLog

# How many rounds above the current one a validator's messages may occupy.
MAX_FUTURE_ROUNDS_PER_VALIDATOR = 4
# Rounds further behind the current round than this are forgotten.
MAX_PAST_ROUNDS = 64
# Messages per validator kept for the next height until this one is decided.
MAX_NEXT_HEIGHT_MESSAGES_PER_VALIDATOR = 3 * MAX_FUTURE_ROUNDS_PER_VALIDATOR
MAX_EVIDENCE = 256
_MAX_VALIDITY_CACHE = 1024
_MAX_HEIGHT = 2**64 - 1


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    """The paper's timeoutPropose/Prevote/Precommit(r) = base + r * delta.

    Growing with the round is what gives liveness after GST: eventually the
    timeouts exceed the real message delay.
    """

    propose_ms: int = 1000
    prevote_ms: int = 500
    precommit_ms: int = 500
    delta_ms: int = 250

    def __post_init__(self) -> None:
        for name in ("propose_ms", "prevote_ms", "precommit_ms", "delta_ms"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"timeout {name} must be a non-negative integer, got {value!r}")

    def duration_ms(self, step: Step, round: int) -> int:
        base = {Step.PROPOSE: self.propose_ms, Step.PREVOTE: self.prevote_ms,
                Step.PRECOMMIT: self.precommit_ms}[step]
        return base + round * self.delta_ms


class Engine:
    """One validator's (or observer's) view of consensus, height by height."""

    def __init__(
        self,
        chain_id: str,
        validators: ValidatorSet | Callable[[int], ValidatorSet],
        signer: Signer | Sequence[Signer] | None,
        verifier: Verifier | None,
        is_valid: Callable[[int, bytes], bool] | None,
        height: int,
        signing_state: SigningState | None = None,
        timeouts: TimeoutConfig = TimeoutConfig(),
    ) -> None:
        """``validators``: one set, or the set of each height (the validator set is a
        function of the height; the host answers for the current and the next height).
        ``signer``: this validator's key, or its keys when a rotation is under way: at
        each height it signs with the one in that height's set, and with none it only
        observes.  ``verifier`` None: the host verifies every message before handing it
        over and unverified ones are dropped.  ``is_valid`` None: the host judges every
        value before handing it over (``ProposalReceived.valid``, ``ValueReady.valid``)."""
        if type(height) is not int or not 0 <= height <= _MAX_HEIGHT:
            raise ValueError(f"height must be a non-negative 64-bit integer, got {height!r}")
        self._chain_id = chain_id
        if isinstance(validators, ValidatorSet):
            fixed = validators
            self._schedule: Callable[[int], ValidatorSet] = lambda height: fixed
        else:
            self._schedule = validators
        self._signers: tuple[Signer, ...] = () if signer is None else \
            tuple(signer) if isinstance(signer, Sequence) else (signer,)
        self._validators = self._schedule(height)
        self._signer, self._own_key = self._voting_key(self._validators)
        self._verifier = verifier
        self._is_valid = is_valid
        self._timeouts = timeouts
        self._signing_state = signing_state
        self._started = False
        self._height = height
        self._round = 0
        self._step = Step.PROPOSE
        self._locked_value: bytes | None = None
        self._locked_id: bytes | None = None  # id(lockedValue): known before the value when relearned
        self._locked_round = -1
        self._valid_value: bytes | None = None
        self._valid_round = -1
        self._log = HeightLog(height, self._validators)
        self._awaiting_value: tuple[int, int] | None = None
        # The "for the first time" rules (named by first line: 34, 36, 47) already fired in this round.
        self._fired: set[int] = set()
        self._dirty: set[int] = set()  # rounds that gained messages since rules were last evaluated
        self._validity: dict[bytes, bool] = {}
        self._next_height: dict[bytes, deque[Proposal | Vote]] = {}
        self._evidence: deque[Evidence] = deque(maxlen=MAX_EVIDENCE)
        self._reported: OrderedDict[tuple[bytes, bytes], None] = OrderedDict()

    # ---- read-only state

    @property
    def height(self) -> int:
        return self._height

    @property
    def round(self) -> int:
        return self._round

    @property
    def step(self) -> Step:
        return self._step

    @property
    def locked_value(self) -> bytes | None:
        if self._locked_value is None and self._locked_id is not None:
            for proposal in self._log.proposals(self._locked_round):
                if proposal.value_id == self._locked_id:
                    self._locked_value = proposal.value
        return self._locked_value

    @property
    def validators(self) -> ValidatorSet:
        """The validator set of the current height."""
        return self._validators

    @property
    def own_key(self) -> bytes | None:
        """The key this validator signs with at the current height; None when it only observes."""
        return self._own_key

    @property
    def locked_value_id(self) -> bytes | None:
        return self._locked_id

    @property
    def locked_round(self) -> int:
        return self._locked_round

    @property
    def valid_value(self) -> bytes | None:
        return self._valid_value

    @property
    def valid_round(self) -> int:
        return self._valid_round

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        return tuple(self._evidence)

    @property
    def signing_state(self) -> SigningState | None:
        return self._signing_state

    def bar_signing(self, state: SigningState) -> None:
        """Never sign at or below ``state`` (the host lost what it signed there: see consensus.wal)."""
        if self._signing_state is None or state > self._signing_state:
            self._signing_state = state

    def knows(self, message: Proposal | Vote) -> bool:
        """The message is already in this height's log, so handing it over again changes nothing."""
        return is_well_formed(message) and message.height == self._height and self._log.has(message)

    # ---- host interface

    def start(self) -> list[Action]:
        """StartRound(0) at the construction height; messages received earlier count."""
        if self._started:
            return []
        self._started = True
        out: list[Action] = []
        self._dirty.update(self._log.rounds())
        self._start_round(0, out)
        self._evaluate(out)
        return out

    def handle(self, event: Event) -> list[Action]:
        """Feed one event; malformed, stale or unverifiable input is dropped."""
        out: list[Action] = []
        if isinstance(event, ProposalReceived):
            if event.valid is not None and is_well_formed(event.proposal) \
                    and event.proposal.height == self._height:
                self._note_validity(event.proposal.value_id, event.valid)
            self._receive(event.proposal, out, event.verified)
        elif isinstance(event, VoteReceived):
            self._receive(event.vote, out, event.verified)
        elif isinstance(event, TimeoutFired):
            if self._started:
                self._on_timeout(event, out)
        elif isinstance(event, ValueReady):
            if self._started:
                self._on_value_ready(event, out)
        if self._started:
            self._evaluate(out)
        return out

    def skip_to_height(self, height: int) -> list[Action]:
        """The host fetched and applied blocks up to ``height - 1`` with their
        certificates; join consensus at ``height`` with StartRound(0)."""
        if type(height) is not int or not self._height < height <= _MAX_HEIGHT:
            return []
        out: list[Action] = []
        self._started = True
        self._enter_height(height, out)
        self._evaluate(out)
        return out

    # ---- receiving messages

    def _receive(self, message: object, out: list[Action], verified: bool) -> None:
        if not is_well_formed(message):
            return
        assert isinstance(message, (Proposal, Vote))
        if message.height == self._height:
            self._accept(message, out, verified=verified)
        elif message.height == self._height + 1:
            self._buffer_for_next_height(message, verified)

    def _accept(self, message: Proposal | Vote, out: list[Action], *, verified: bool) -> None:
        """Verify a message for the current height and log it, or record the equivocation."""
        sender = signer_of(message)
        if sender not in self._validators:
            return
        if self._log.has(message):
            return  # a duplicate, e.g. our own message looped back by the host
        first = self._log.first(message)
        if first is None and not self._has_room(sender, message.round):
            return
        if not self._authentic(message, verified):
            return
        if first is not None and conflicting(first, message):
            self._report(make_evidence(first, message), out)
        if self._log.add(message):
            self._dirty.add(message.round)
            if sender == self._own_key and isinstance(message, Vote) \
                    and message.type == MessageType.PRECOMMIT and message.value_id is not None:
                self._relearn_lock(message)

    def _has_room(self, sender: bytes, round: int) -> bool:
        """Per-validator bound on future rounds; see MAX_FUTURE_ROUNDS_PER_VALIDATOR.

        Our own messages are exempt: after a restart the host replays what we
        signed, possibly many rounds ahead of round 0, and the lock is relearned
        from it.  They are bounded anyway by the rounds we actually reached.
        """
        if round <= self._round or sender == self._own_key:
            return True
        rounds = self._log.rounds_of(sender)
        if round in rounds:
            return True
        return sum(1 for r in rounds if r > self._round) < MAX_FUTURE_ROUNDS_PER_VALIDATOR

    def _authentic(self, message: Proposal | Vote, verified: bool) -> bool:
        """A proposal comes from proposer(h, r), and the message is signed by its sender
        (checked here unless the host already checked it)."""
        sender = signer_of(message)
        if isinstance(message, Proposal) and \
                self._schedule(message.height).proposer(message.height, message.round) != sender:
            return False
        if verified:
            return True
        if self._verifier is None:
            return False  # this host verifies before handing over: an unverified message is dropped
        return self._verifier.verify(sender, message.signing_bytes(self._chain_id), message.signature)

    def _buffer_for_next_height(self, message: Proposal | Vote, verified: bool) -> None:
        sender = signer_of(message)
        if sender not in self._schedule(message.height):
            return
        queue = self._next_height.get(sender)
        if queue is not None and message in queue:
            return
        if not self._authentic(message, verified):
            return
        if queue is None:
            queue = self._next_height[sender] = deque(maxlen=MAX_NEXT_HEIGHT_MESSAGES_PER_VALIDATOR)
        queue.append(message)

    def _report(self, evidence: Evidence, out: list[Action]) -> None:
        key = (evidence.first.signature, evidence.second.signature)
        if key in self._reported:
            return
        self._reported[key] = None
        if len(self._reported) > MAX_EVIDENCE:
            self._reported.popitem(last=False)
        self._evidence.append(evidence)
        out.append(EvidenceFound(evidence))

    # ---- the rules

    def _evaluate(self, out: list[Action]) -> None:
        """Fire enabled upon-rules until none is enabled."""
        while self._try_decide(out) or self._current_round_rules(out) or self._try_skip_round(out):
            pass
        self._dirty.clear()

    def _start_round(self, round: int, out: list[Action]) -> None:
        """StartRound(round): Algorithm 1, lines 11-21."""
        self._round = round
        self._step = Step.PROPOSE
        self._fired.clear()
        self._awaiting_value = None
        self._log.prune_below(round - MAX_PAST_ROUNDS)
        height = self._height
        if self._own_key is not None and self._validators.proposer(height, round) == self._own_key \
                and self._may_sign(Step.PROPOSE):
            if self._valid_value is not None:  # lines 15-16
                self._propose(self._valid_value, self._valid_round, out)
            else:
                self._awaiting_value = (height, round)
                out.append(RequestValue(height, round))
        else:  # line 19; also when our own proposal is barred by the signing state
            out.append(ScheduleTimeout(Step.PROPOSE, height, round,
                                       self._timeouts.duration_ms(Step.PROPOSE, round)))

    def _on_value_ready(self, event: ValueReady, out: list[Action]) -> None:
        """getValue() returned (line 16): broadcast the proposal (line 17)."""
        if self._awaiting_value != (event.height, event.round) or self._step != Step.PROPOSE:
            return
        if not isinstance(event.value, bytes):
            return
        self._awaiting_value = None
        if event.valid is not None:
            self._note_validity(value_id(event.value), event.valid)
        self._propose(event.value, -1, out)

    def _current_round_rules(self, out: list[Action]) -> bool:
        """The rules about round_p: lines 22-27, 28-33, 34-35, 36-43, 44-46, 47-48."""
        r = self._round
        proposal = self._log.proposal(r)
        quorum = self._validators.quorum
        if self._step == Step.PROPOSE and proposal is not None:
            v, vr = proposal.value, proposal.valid_round
            if vr == -1:  # lines 22-27
                acceptable = (self._valid(v, proposal.value_id)
                              and (self._locked_round == -1 or self._locked_id == proposal.value_id))
                self._prevote(proposal.value_id if acceptable else None, out)
                return True
            if vr < r and self._log.power_for(vr, MessageType.PREVOTE, proposal.value_id) >= quorum:  # 28-33
                acceptable = (self._valid(v, proposal.value_id)
                              and (self._locked_round <= vr or self._locked_id == proposal.value_id))
                self._prevote(proposal.value_id if acceptable else None, out)
                return True
        if self._step == Step.PREVOTE and 34 not in self._fired \
                and self._log.power_any(r, MessageType.PREVOTE) >= quorum:  # lines 34-35
            self._fired.add(34)
            out.append(ScheduleTimeout(Step.PREVOTE, self._height, r,
                                       self._timeouts.duration_ms(Step.PREVOTE, r)))
            return True
        if self._step >= Step.PREVOTE and 36 not in self._fired:  # lines 36-43
            for candidate in self._log.proposals(r):
                if self._log.power_for(r, MessageType.PREVOTE, candidate.value_id) >= quorum \
                        and self._valid(candidate.value, candidate.value_id):
                    self._fired.add(36)
                    if self._step == Step.PREVOTE:
                        self._locked_value = candidate.value
                        self._locked_id = candidate.value_id
                        self._locked_round = r
                        self._precommit(candidate.value_id, out)
                    self._valid_value = candidate.value
                    self._valid_round = r
                    return True
        if self._step == Step.PREVOTE and self._log.power_for(r, MessageType.PREVOTE, None) >= quorum:  # 44-46
            self._precommit(None, out)
            return True
        if 47 not in self._fired and self._log.power_any(r, MessageType.PRECOMMIT) >= quorum:  # lines 47-48
            self._fired.add(47)
            out.append(ScheduleTimeout(Step.PRECOMMIT, self._height, r,
                                       self._timeouts.duration_ms(Step.PRECOMMIT, r)))
            return True
        return False

    def _try_decide(self, out: list[Action]) -> bool:
        """Algorithm 1, lines 49-54: a proposal and 2f+1 precommits for it in any round."""
        quorum = self._validators.quorum
        for r in sorted(self._dirty):
            for proposal in self._log.proposals(r):
                if self._log.power_for(r, MessageType.PRECOMMIT, proposal.value_id) < quorum:
                    continue
                if not self._valid(proposal.value, proposal.value_id):
                    continue
                precommits = self._log.votes_for(r, MessageType.PRECOMMIT, proposal.value_id)
                certificate = CommitCertificate(self._height, r, proposal.value_id, precommits)
                out.append(Commit(self._height, proposal.value, certificate))
                self._enter_height(self._height + 1, out)
                return True
        return False

    def _try_skip_round(self, out: list[Action]) -> bool:
        """Algorithm 1, lines 55-56: f+1 messages of a higher round start that round."""
        candidates = [r for r in self._dirty
                      if r > self._round and self._log.round_power(r) >= self._validators.f_plus_one]
        if not candidates:
            return False
        self._start_round(max(candidates), out)
        return True

    def _on_timeout(self, event: TimeoutFired, out: list[Action]) -> None:
        """OnTimeoutPropose (57-60), OnTimeoutPrevote (61-64), OnTimeoutPrecommit (65-67)."""
        if event.height != self._height or event.round != self._round:
            return
        if event.step == Step.PROPOSE and self._step == Step.PROPOSE:
            self._prevote(None, out)
        elif event.step == Step.PREVOTE and self._step == Step.PREVOTE:
            self._precommit(None, out)
        elif event.step == Step.PRECOMMIT:
            self._start_round(self._round + 1, out)

    def _enter_height(self, height: int, out: list[Action]) -> None:
        """Lines 52-54: the next height with a fresh state and message log, then StartRound(0)."""
        buffered = self._next_height if height == self._height + 1 else {}
        self._next_height = {}
        self._height = height
        self._validators = self._schedule(height)
        self._signer, self._own_key = self._voting_key(self._validators)
        self._round = 0
        self._locked_value, self._locked_id, self._locked_round = None, None, -1
        self._valid_value, self._valid_round = None, -1
        self._log = HeightLog(height, self._validators)
        self._validity.clear()
        self._dirty.clear()
        for queue in buffered.values():
            for message in queue:
                self._accept(message, out, verified=True)
        self._start_round(0, out)

    # ---- our own messages

    def _propose(self, value: bytes, valid_round: int, out: list[Action]) -> None:
        """Line 17: broadcast ⟨PROPOSAL, h_p, round_p, proposal, validRound_p⟩."""
        h, r = self._height, self._round
        if not self._may_sign(Step.PROPOSE):
            return
        assert self._signer is not None and self._own_key is not None, "only a validator signs"
        try:
            signature = self._signer.sign(
                signing_bytes(self._chain_id, MessageType.PROPOSAL, h, r, value_id(value), valid_round)
            )
        except SigningUnavailable:
            # No proposal this round: wait for one like any other validator would (line 19),
            # so the round times out and moves on.
            out.append(ScheduleTimeout(Step.PROPOSE, h, r, self._timeouts.duration_ms(Step.PROPOSE, r)))
            return
        proposal = Proposal(h, r, value, valid_round, self._own_key, signature)
        self._emit_signed(proposal, Step.PROPOSE, out)

    def _prevote(self, vid: bytes | None, out: list[Action]) -> None:
        """Broadcast ⟨PREVOTE, h_p, round_p, vid⟩ and set step_p ← prevote."""
        self._vote(MessageType.PREVOTE, Step.PREVOTE, vid, out)
        self._step = Step.PREVOTE

    def _precommit(self, vid: bytes | None, out: list[Action]) -> None:
        """Broadcast ⟨PRECOMMIT, h_p, round_p, vid⟩ and set step_p ← precommit."""
        self._vote(MessageType.PRECOMMIT, Step.PRECOMMIT, vid, out)
        self._step = Step.PRECOMMIT

    def _vote(self, kind: MessageType, step: Step, vid: bytes | None, out: list[Action]) -> None:
        if not self._may_sign(step):
            return
        h, r = self._height, self._round
        assert self._signer is not None and self._own_key is not None, "only a validator signs"
        try:
            signature = self._signer.sign(signing_bytes(self._chain_id, kind, h, r, vid))
        except SigningUnavailable:
            return  # the vote is lost, as if the network had dropped it
        self._emit_signed(Vote(kind, h, r, vid, self._own_key, signature), step, out)

    def _emit_signed(self, message: Proposal | Vote, step: Step, out: list[Action]) -> None:
        """Persist the signing state, then broadcast, then count our own message."""
        previous = self._signing_state
        assert previous is None or previous.allows(message.height, message.round, step), "would re-sign"
        self._signing_state = SigningState(message.height, message.round, step)
        out.append(PersistSigningState(self._signing_state, message))
        out.append(Broadcast(message))
        if not self._log.has(message) and self._log.add(message):
            self._dirty.add(message.round)

    def _voting_key(self, validators: ValidatorSet) -> tuple[Signer | None, bytes | None]:
        """The key this validator signs with in ``validators``; none: it only observes that height."""
        for signer in self._signers:
            if signer.public_key in validators:
                return signer, signer.public_key
        return None, None

    def _may_sign(self, step: Step) -> bool:
        if self._signer is None:
            return False
        state = self._signing_state
        return state is None or state.allows(self._height, self._round, step)

    def _relearn_lock(self, vote: Vote) -> None:
        """Our own precommit for a value came back after a restart: lines 38-39
        had locked on it, unless a later round's precommit had locked on another.

        Lines 36-43 set validValue and validRound in the same step, so when the
        proposal is known they are restored too: as proposer the validator then
        re-proposes the locked value (lines 15-16) instead of a fresh one that
        its own lock would make it refuse.
        """
        if vote.round > self._locked_round:
            self._locked_round = vote.round
            self._locked_id = vote.value_id
            self._locked_value = None
            for proposal in self._log.proposals(vote.round):
                if proposal.value_id == vote.value_id:
                    self._locked_value = proposal.value
                    if vote.round > self._valid_round:
                        self._valid_value, self._valid_round = proposal.value, vote.round

    def _valid(self, value: bytes, key: bytes) -> bool:
        """The paper's valid(v), asked of the application once per value and height; ``key`` is id(v).

        The caller passes the proposal's memoised id: hashing a block of
        thousands of transactions again on every rule evaluation showed in profiles.
        """
        assert len(key) == 32, "key is the value's id"
        known = self._validity.get(key)
        if known is None:
            if self._is_valid is None:
                return False  # not judged yet: the host hands values over with their verdict
            known = bool(self._is_valid(self._height, value))
            self._note_validity(key, known)
        return known

    def _note_validity(self, key: bytes, valid: bool) -> None:
        """Remember valid(v) for this height; the oldest verdict goes first when the memory is full."""
        if key in self._validity:
            return
        if len(self._validity) >= _MAX_VALIDITY_CACHE:
            del self._validity[next(iter(self._validity))]
        self._validity[key] = valid

