"""The consensus write-ahead log: what a validator must find again after a restart.

A validator that signs a vote and then forgets it in a crash may sign a
conflicting one (equivocation); one that forgets the precommit it locked with
may prevote as if unlocked, and would have to be counted as a fault against f.
So, as in CometBFT, the host appends every message the engine signs to this
log, in the same durable write as the signing state that covers it and before
the message leaves the process; and every message it receives for the height
being decided, before the engine acts on it (those need not be durable at
once: they only help a restarted validator catch up faster, and gossip
brings them back anyway).  After a restart the host replays the messages of
the height it is deciding, and the engine relearns its lock from its own
precommits among them.

This module is the log's meaning, shared by the node (records in a file,
node/host/wal.py) and the simulator (records on its simulated disk): which
records exist, which must be durable, what a restart replays, when the log
is truncated and how it stays bounded.  Where the records live is the host's
business, behind ``WalStorage``.

Truncation: once a height is decided (or skipped by catch-up) its messages
are worthless, so the log starts over with an ``Opened`` record holding the
next height and the signing state so far.

Bound: when the storage grows past ``max_size``, the log is rewritten with
what safety and the lock need, and nothing else: ``Opened`` with the signing
state, this validator's highest-round precommit for a value and the proposal
it was for.  Received messages are dropped (the network re-sends them).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from consensus.events import SigningState
from consensus.messages import Message, MessageType, Proposal, Vote

# Proposals of the current height kept in memory, by value id, so that the one
# this validator's precommit refers to survives a compaction.
MAX_REMEMBERED_PROPOSALS = 8


@dataclass(frozen=True, slots=True)
class Opened:
    """The first record after a truncation: the height being decided and the signing state so far."""

    height: int
    signing_state: SigningState | None


@dataclass(frozen=True, slots=True)
class Signed:
    """A message this validator signed, with the signing state that covers it."""

    state: SigningState
    message: Message


@dataclass(frozen=True, slots=True)
class Received:
    """A message from another validator, verified, for the height being decided."""

    message: Message


Record = Opened | Signed | Received


class WalStorage(Protocol):
    """Where the records live: a file in the node, a list on the simulator's disk."""

    @property
    def size(self) -> int:
        """How much the stored records take, in the storage's own unit (bytes, records)."""
        ...

    def append(self, record: Record, *, durable: bool) -> None:
        """Add one record at the end; with ``durable`` it is on stable storage when this returns."""
        ...

    def replace(self, records: Sequence[Record]) -> None:
        """Make ``records`` the whole log, durably (a crash part-way leaves a log the host
        treats as damaged, which is safe: see ``signing_floor``)."""
        ...


@dataclass(frozen=True, slots=True)
class Replay:
    """What the log gives back after a restart, for the height the validator is deciding."""

    height: int
    signing_state: SigningState | None
    messages: tuple[Message, ...]  # in the order the validator acted on them
    own: int  # how many of them this validator signed
    lock: Vote | None  # this validator's highest-round precommit for a value among them: its lock


def signing_floor(next_height: int) -> SigningState:
    """The signing state for a validator whose log was lost or damaged.

    The engine only ever signs at the height after the last committed block,
    so every signature in a lost log is at most at the committed height plus
    one.  Refusing to sign anything at that height can never equivocate, and
    costs the network one validator's votes for one height.  (A ledger
    restored from an older backup along with the loss is the host's to
    handle: it bars each height it catches up to until it has seen one
    decided live.)
    """
    return SigningState.barring(next_height)


class WriteAheadLog:
    """The log of one validator, rebuilt from what its storage held at start."""

    def __init__(self, storage: WalStorage, records: Sequence[Record], *, max_size: int,
                 floor: SigningState | None = None) -> None:
        """``records``: what the storage held, a valid prefix (the host drops a torn tail).
        ``floor``: a signing state the host imposes because the log was lost or damaged."""
        if max_size < 1:
            raise ValueError("max_size must be positive")
        self._storage = storage
        self._max_size = max_size
        self._height: int | None = None
        self._signing_state: SigningState | None = None
        self._current: list[Record] = []  # the records since the last Opened
        for record in records:
            if isinstance(record, Opened):
                self._height = record.height
                self._current = []
                self._raise_state(record.signing_state)
            else:
                self._current.append(record)
                if isinstance(record, Signed):
                    self._raise_state(record.state)
        self._raise_state(floor)
        self._lock: Vote | None = None
        self._proposals: OrderedDict[bytes, Proposal] = OrderedDict()
        for record in self._current:
            self._remember(record)

    @property
    def height(self) -> int | None:
        """The height whose messages the log holds; None for an empty log."""
        return self._height

    @property
    def signing_state(self) -> SigningState | None:
        return self._signing_state

    def replay(self, height: int) -> Replay:
        """The messages to feed the engine again at ``height``: none if the log is about another height."""
        if self._height != height:
            return Replay(height, self._signing_state, (), 0, None)
        messages = tuple(record.message for record in self._current if not isinstance(record, Opened))
        own = sum(1 for record in self._current if isinstance(record, Signed))
        return Replay(height, self._signing_state, messages, own, self._lock)

    def bar(self, state: SigningState) -> None:
        """Raise the signing state without a message (a floor): made durable by the next ``begin``."""
        self._raise_state(state)

    def begin(self, height: int) -> None:
        """Truncate: ``height`` is now being decided, and nothing recorded before matters but the signing state."""
        self._height = height
        self._current = []
        self._lock = None
        self._proposals.clear()
        self._storage.replace([Opened(height, self._signing_state)])

    def signed(self, state: SigningState, message: Message) -> None:
        """Durably record a message the engine signed; call before it leaves the process."""
        assert self._height is not None, "begin() names the height first"
        assert message.height == self._height, "the engine signs only at the height being decided"
        assert self._signing_state is None or state > self._signing_state, "signing states only grow"
        self._signing_state = state
        record = Signed(state, message)
        self._storage.append(record, durable=True)
        self._current.append(record)
        self._remember(record)
        self._keep_bounded()

    def received(self, message: Message) -> None:
        """Record a verified message for the height being decided, before the engine acts on it."""
        assert self._height is not None, "begin() names the height first"
        if message.height != self._height:
            return
        record = Received(message)
        self._storage.append(record, durable=False)
        self._current.append(record)
        self._remember(record)
        self._keep_bounded()

    # ---- internals

    def _raise_state(self, state: SigningState | None) -> None:
        if state is not None and (self._signing_state is None or state > self._signing_state):
            self._signing_state = state

    def _remember(self, record: Record) -> None:
        """Track the lock (our highest-round precommit for a value) and recent proposals."""
        message = record.message if isinstance(record, (Signed, Received)) else None
        if isinstance(message, Proposal):
            self._proposals[message.value_id] = message
            self._proposals.move_to_end(message.value_id)
            while len(self._proposals) > MAX_REMEMBERED_PROPOSALS:
                oldest = next(iter(self._proposals))
                if self._lock is not None and oldest == self._lock.value_id:
                    self._proposals.move_to_end(oldest)
                    oldest = next(iter(self._proposals))
                del self._proposals[oldest]
        elif isinstance(record, Signed) and isinstance(message, Vote) \
                and message.type == MessageType.PRECOMMIT and message.value_id is not None \
                and (self._lock is None or message.round > self._lock.round):
            self._lock = message

    def _keep_bounded(self) -> None:
        """Past ``max_size``, keep only what safety and the lock need (see the module docstring)."""
        if self._storage.size <= self._max_size:
            return
        assert self._height is not None
        essentials: list[Record] = [Opened(self._height, self._signing_state)]
        lock = self._lock
        if lock is not None:
            assert lock.value_id is not None and self._signing_state is not None, "a lock is a signed precommit"
            proposal = self._proposals.get(lock.value_id)
            if proposal is not None:
                essentials.append(Received(proposal))
            essentials.append(Signed(self._signing_state, lock))
        self._storage.replace(essentials)
        self._current = essentials[1:]

