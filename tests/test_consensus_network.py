"""Several engines in one in-memory network: agreement, validity and liveness.

The network delivers every message eventually but in a seeded random order,
duplicates some, and fires timeouts only when nothing else is in flight (so
rounds change only when the network is "slow").  This is a small harness for
the consensus core alone; the full fault simulator lives in ``consensus/sim``.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.certificate import verify_certificate
from consensus.engine import Engine
from consensus.events import (
    Broadcast,
    Commit,
    EvidenceFound,
    PersistSigningState,
    ProposalReceived,
    RequestValue,
    ScheduleTimeout,
    SigningState,
    TimeoutFired,
    ValueReady,
    VoteReceived,
)
from consensus.messages import MessageType, Proposal, Vote, signing_bytes, value_id
from consensus.validators import Validator, ValidatorSet
from node.core.keys import KeyPair, verify_signature

CHAIN = "som-net"
LONG = os.environ.get("SOMNODE_LONG") == "1"
EXAMPLES = int(os.environ.get("SOMNODE_CONSENSUS_EXAMPLES", "1000" if LONG else "15"))


class Ed25519:
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return verify_signature(public_key, message, signature)


class Network:
    """Honest engines plus optional equivocating validators, driven by one seed."""

    def __init__(self, powers: list[int], seed: int, *, byzantine: int = 0, start_height: int = 1) -> None:
        self.rng = random.Random(seed)
        self.keys = [KeyPair.from_seed(seed.to_bytes(8, "big") + bytes([i]) * 24) for i in range(len(powers))]
        self.validators = ValidatorSet([Validator(k.public_key, p) for k, p in zip(self.keys, powers)])
        self.byzantine = self.keys[:byzantine]
        self.honest = self.keys[byzantine:]
        self.engines = {k.public_key: self._engine(k, start_height, None) for k in self.honest}
        self.persisted: dict[bytes, SigningState] = {}
        self.inbox: list[tuple[bytes, object]] = []
        self.timers: list[tuple[bytes, ScheduleTimeout]] = []
        self.history: list[Proposal | Vote] = []
        self.commits: dict[bytes, list[Commit]] = {k.public_key: [] for k in self.honest}
        self.evidence: list = []
        self.proposed: set[bytes] = set()

    def _engine(self, key: KeyPair, height: int, state: SigningState | None) -> Engine:
        return Engine(CHAIN, self.validators, key, Ed25519(), lambda h, v: v.startswith(b"block"), height, state)

    def start(self) -> None:
        for node, engine in self.engines.items():
            self._carry_out(node, engine.start())

    def _carry_out(self, node: bytes, actions: list) -> None:
        for i, action in enumerate(actions):
            if isinstance(action, Broadcast):
                persisted = actions[i - 1]
                assert isinstance(persisted, PersistSigningState)
                previous = self.persisted.get(node)
                state = persisted.state
                assert previous is None or previous.allows(state.height, state.round, state.step)
                self.persisted[node] = persisted.state
                self._send(action.message)
            elif isinstance(action, RequestValue):
                value = b"block %d %d %d" % (action.height, action.round, self.rng.randrange(1000))
                self.proposed.add(value)
                self.inbox.append((node, ValueReady(action.height, action.round, value)))
            elif isinstance(action, ScheduleTimeout):
                self.timers.append((node, action))
            elif isinstance(action, Commit):
                self.commits[node].append(action)
                self._relay_decision(node, action)
            elif isinstance(action, EvidenceFound):
                self.evidence.append(action.evidence)

    def _send(self, message: Proposal | Vote) -> None:
        self.history.append(message)
        event = ProposalReceived(message) if isinstance(message, Proposal) else VoteReceived(message)
        for node in self.engines:
            self.inbox.append((node, event))
            if self.rng.random() < 0.05:
                self.inbox.append((node, event))
        self._equivocate(message)

    def _relay_decision(self, node: bytes, commit: Commit) -> None:
        """Gossip relays what decided a height, so validators still at that height
        receive the same proposal and precommits even from a Byzantine sender that
        sent its precommit to some of them only."""
        proposal = next(m for m in reversed(self.history) if isinstance(m, Proposal)
                        and m.height == commit.height and m.round == commit.certificate.round
                        and m.value == commit.value)
        for message in (proposal, *commit.certificate.precommits):
            event = ProposalReceived(message) if isinstance(message, Proposal) else VoteReceived(message)
            for other in self.engines:
                if other != node:
                    self.inbox.append((other, event))

    def _equivocate(self, message: Proposal | Vote) -> None:
        """Each Byzantine validator answers every honest vote with two conflicting ones."""
        if not isinstance(message, Vote) or message.validator not in self.engines:
            return
        for key in self.byzantine:
            for vid in (message.value_id, value_id(b"block evil %d" % self.rng.randrange(10**6))):
                data = signing_bytes(CHAIN, message.type, message.height, message.round, vid)
                vote = Vote(message.type, message.height, message.round, vid, key.public_key, key.sign(data))
                if vote in self.history:
                    continue
                self.history.append(vote)
                targets = list(self.engines)
                self.rng.shuffle(targets)
                for node in targets[: len(targets) // 2 + 1]:
                    self.inbox.append((node, VoteReceived(vote)))

    def restart(self, node: bytes) -> None:
        """Crash ``node`` and bring it back with only its persisted signing state;
        gossip re-delivers what was said at its height."""
        height = self.engines[node].height
        key = next(k for k in self.honest if k.public_key == node)
        self.engines[node] = self._engine(key, height, self.persisted.get(node))
        self.inbox = [(n, e) for n, e in self.inbox if n != node]
        self.timers = [(n, t) for n, t in self.timers if n != node]
        for message in self.history:
            if message.height >= height:
                event = ProposalReceived(message) if isinstance(message, Proposal) else VoteReceived(message)
                self.inbox.append((node, event))
        self._carry_out(node, self.engines[node].start())

    def run(self, heights: int, max_steps: int = 200_000, restart_every: int = 0) -> None:
        target = min(e.height for e in self.engines.values()) + heights
        for step in range(max_steps):
            if min(e.height for e in self.engines.values()) >= target:
                return
            if restart_every and step and step % restart_every == 0:
                self.restart(self.rng.choice(list(self.engines)))
            if not self.inbox and any(self._catch_up(node, quiet=True) for node in self.engines):
                continue
            if self.inbox:
                node, event = self.inbox.pop(self.rng.randrange(len(self.inbox)))
            else:
                assert self.timers, "deadlock: nothing in flight and no timer pending"
                node, timer = self.timers.pop(0)
                event = TimeoutFired(timer.step, timer.height, timer.round)
            self._catch_up(node)
            self._carry_out(node, self.engines[node].handle(event))
        pytest.fail(f"no progress to height {target} in {max_steps} steps")

    def _catch_up(self, node: bytes, *, quiet: bool = False) -> bool:
        """What the node's host does when it falls behind: fetch the decided
        blocks with their certificates and rejoin above them.  A node two
        heights behind does it at once (it dropped messages beyond the next
        height); one height behind it does only once the network is quiet,
        which happens when Byzantine votes it never counted decided the height."""
        engine = self.engines[node]
        decided = {c.height: c for commits in self.commits.values() for c in commits}
        if engine.height + (0 if quiet else 1) not in decided:
            return False
        top = max(decided)
        for height in range(engine.height, top + 1):
            commit = decided[height]
            verify_certificate(commit.certificate, self.validators, CHAIN, Ed25519(),
                               height=height, value_id=value_id(commit.value))
        self._carry_out(node, engine.skip_to_height(top + 1))
        return True

    def check_safety(self) -> None:
        """Agreement, validity and certificates at every height anyone decided."""
        decided: dict[int, bytes] = {}
        for _node, commits in self.commits.items():
            heights = [c.height for c in commits]
            assert heights == sorted(set(heights)), "a node committed a height twice or out of order"
            for commit in commits:
                assert decided.setdefault(commit.height, commit.value) == commit.value, "disagreement"
                assert commit.value in self.proposed
                verify_certificate(commit.certificate, self.validators, CHAIN, Ed25519(),
                                   height=commit.height, value_id=value_id(commit.value))


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=EXAMPLES)
def test_four_equal_validators_agree_under_reordering(seed: int) -> None:
    net = Network([1, 1, 1, 1], seed)
    net.start()
    net.run(heights=4)
    net.check_safety()


@pytest.mark.parametrize("powers", [[1, 1, 1, 10], [3, 3, 3, 1], [1, 2, 3, 4, 5, 6, 7]])
@pytest.mark.parametrize("seed", [1, 2])
def test_unequal_powers_agree(powers: list[int], seed: int) -> None:
    net = Network(powers, seed)
    net.start()
    net.run(heights=3)
    net.check_safety()


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=EXAMPLES)
def test_one_equivocating_validator_of_four_cannot_break_agreement(seed: int) -> None:
    net = Network([1, 1, 1, 1], seed, byzantine=1)
    net.start()
    net.run(heights=3)
    net.check_safety()
    assert net.evidence, "the equivocation went unnoticed"
    assert {e.validator for e in net.evidence} == {net.byzantine[0].public_key}


@pytest.mark.parametrize("seed", [11, 12])
def test_two_equivocators_of_seven_cannot_break_agreement(seed: int) -> None:
    net = Network([1] * 7, seed, byzantine=2)
    net.start()
    net.run(heights=2)
    net.check_safety()
    assert {e.validator for e in net.evidence} == {k.public_key for k in net.byzantine}


@pytest.mark.long
@pytest.mark.parametrize("seed", range(5))
def test_long_run_sixteen_validators_with_five_equivocators(seed: int) -> None:
    net = Network([1] * 16, seed, byzantine=5)
    net.start()
    net.run(heights=20, max_steps=5_000_000, restart_every=997)
    net.check_safety()


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=EXAMPLES)
def test_crash_restarts_with_signing_state_never_equivocate(seed: int) -> None:
    net = Network([1, 1, 1, 1], seed)
    net.start()
    net.run(heights=3, restart_every=37)
    net.check_safety()
    assert net.evidence == [], "an honest validator equivocated after a restart"


def test_observer_follows_the_chain() -> None:
    net = Network([1, 1, 1, 1], 7)
    watcher = Engine(CHAIN, net.validators, None, Ed25519(), lambda h, v: True, 1)
    watcher.start()
    net.start()
    net.run(heights=3)
    commits = []
    for message in net.history:
        event = ProposalReceived(message) if isinstance(message, Proposal) else VoteReceived(message)
        commits += [a for a in watcher.handle(event) if isinstance(a, Commit)]
    assert [c.value for c in commits] == [c.value for c in net.commits[net.honest[0].public_key]][: len(commits)]
    assert len(commits) >= 3


def test_votes_of_higher_rounds_stay_bounded_per_validator() -> None:
    """A validator spamming future rounds occupies only a few of them: its vote
    at round 400 is dropped, so a second validator there is not f+1, while its
    early future rounds are kept and do count."""
    net = Network([1, 1, 1, 1], 3)
    engine = net._engine(net.keys[0], 1, None)
    engine.start()

    def prevote(key: KeyPair, round: int) -> VoteReceived:
        data = signing_bytes(CHAIN, MessageType.PREVOTE, 1, round, None)
        return VoteReceived(Vote(MessageType.PREVOTE, 1, round, None, key.public_key, key.sign(data)))

    for round in range(5, 500):
        engine.handle(prevote(net.keys[1], round))
    engine.handle(prevote(net.keys[2], 400))
    assert engine.round == 0
    engine.handle(prevote(net.keys[2], 6))
    assert engine.round == 6
