"""One simulated validator: its durable disk and what it holds in memory.

The disk is what survives a crash: the write-ahead log of the undecided
height (with the signing state) and the committed blocks with their
certificates.  Everything else — the engine, the gossip log, what peers are
known to hold — is lost when the process dies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from consensus.certificate import CommitCertificate
from consensus.engine import Engine
from consensus.messages import Message
from consensus.sim.byzantine import ByzantineContext, Strategy
from consensus.sim.crypto import SimSigner
from consensus.sim.scenario import Crash
from consensus.wal import Record, WriteAheadLog

# Messages for the next height kept until this validator gets there, so it
# can relay them then (the engine buffers them too, with its own bound).
MAX_NEXT_HEIGHT_LOG = 1024
# Messages of the current height a validator keeps for re-gossip.  Honest
# traffic in one height is a proposal and two votes per validator per round,
# so this covers dozens of rounds of a large set before anything is dropped.
MAX_GOSSIP_LOG = 4096


# The simulated disk bounds its write-ahead log by record count.
MAX_WAL_RECORDS = 4096


class MemoryWalStorage:
    """The simulated disk's write-ahead log: records in a list, every write as durable as it asks.

    A simulated crash loses nothing written here, which is what fsync promises
    a real node; losing what was never written is modelled by crashing before
    the write (``Crash.after_persist``).
    """

    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records: list[Record] = []

    @property
    def size(self) -> int:
        return len(self.records)

    def append(self, record: Record, *, durable: bool) -> None:
        self.records.append(record)

    def replace(self, records: Sequence[Record]) -> None:
        self.records = list(records)


@dataclass(slots=True)
class Disk:
    """Durable storage: the consensus write-ahead log and the committed blocks with their certificates."""

    wal_storage: MemoryWalStorage = field(default_factory=MemoryWalStorage)
    blocks: dict[int, tuple[bytes, CommitCertificate]] = field(default_factory=dict)

    @property
    def last_height(self) -> int:
        """The highest committed height; heights are committed in order from 1."""
        return len(self.blocks)

    def store_block(self, height: int, value: bytes, certificate: CommitCertificate) -> None:
        if height != self.last_height + 1:
            raise ValueError(f"block {height} does not follow the stored height {self.last_height}")
        self.blocks[height] = (value, certificate)

    def open_wal(self) -> WriteAheadLog:
        """The log as a restarted process finds it."""
        return WriteAheadLog(self.wal_storage, self.wal_storage.records, max_size=MAX_WAL_RECORDS)


class SimValidator:
    """A validator's process as the simulator sees it.

    ``log`` is what a real node would re-gossip: every message of its current
    height it sent or received, in arrival order.  Messages are told apart by
    signature (Ed25519 signatures are deterministic, so equal messages have
    equal signatures and different ones differ), which is cheap to hash.  ``have`` is what it already received at that
    height; peers consult it as a real node's peers learn it from "has vote"
    announcements, so re-gossip only sends what is missing.  ``have_epoch``
    changes whenever ``have`` is emptied, which tells peers that what they
    knew about it is stale; ``synced`` records, per peer, how much of our log
    that peer is known to hold.
    """

    __slots__ = (
        "index", "signers", "disk", "wal", "strategy", "context", "engine", "incarnation", "height",
        "log", "logged", "have", "have_epoch", "synced", "next_height_log",
        "crash_pending", "down", "crashes_armed",
    )

    def __init__(self, index: int, signers: tuple[SimSigner, ...], strategy: Strategy | None,
                 context: ByzantineContext | None) -> None:
        self.index = index
        self.signers = signers  # its key, and the one it rotates to if it does
        self.disk = Disk()
        self.wal: WriteAheadLog | None = None  # the running process's handle on its disk's log
        self.strategy = strategy
        self.context = context
        self.engine: Engine | None = None
        self.incarnation = 0
        self.height = 0
        self.log: list[Message] = []
        self.logged: set[bytes] = set()
        self.have: set[bytes] = set()
        self.have_epoch = 0
        self.synced: dict[int, tuple[int, int]] = {}  # peer -> (its have_epoch, prefix of log it holds)
        self.next_height_log: list[Message] = []
        self.crash_pending: Crash | None = None
        self.down: Crash | None = None
        self.crashes_armed: set[Crash] = set()

    @property
    def honest(self) -> bool:
        return self.strategy is None

    @property
    def up(self) -> bool:
        return self.engine is not None

    def enter_height(self, height: int) -> None:
        """Forget the previous height's gossip, keeping what already arrived for this one.

        Messages that arrived early are in the engine's next-height buffer; a
        real node relays what its engine holds, so they join the gossip log.
        """
        early = [m for m in self.next_height_log if m.height == height]
        self.height = height
        self._forget()
        for message in early:
            self.have.add(message.signature)
            self.remember(message)

    def receive_early(self, message: Message) -> None:
        """A message for the next height arrived: keep it for relaying once we get there."""
        if message.height == self.height + 1 and len(self.next_height_log) < MAX_NEXT_HEIGHT_LOG:
            self.next_height_log.append(message)

    def remember(self, message: Message) -> None:
        if message.signature not in self.logged and len(self.log) < MAX_GOSSIP_LOG:
            self.logged.add(message.signature)
            self.log.append(message)

    def lose_memory(self) -> None:
        """A crash: the engine and everything in memory are gone; the disk stays."""
        self.engine = None
        self.wal = None
        self.incarnation += 1
        self.crash_pending = None
        self._forget()

    def _forget(self) -> None:
        self.next_height_log.clear()
        self.log.clear()
        self.logged.clear()
        self.have.clear()
        self.have_epoch += 1
        self.synced.clear()

    def missing_at(self, peer: SimValidator) -> list[Message]:
        """Messages of our log that ``peer`` does not have, in log order."""
        epoch, start = self.synced.get(peer.index, (peer.have_epoch, 0))
        if epoch != peer.have_epoch:
            start = 0
        order = self.log
        have = peer.have
        while start < len(order) and order[start].signature in have:
            start += 1
        self.synced[peer.index] = (peer.have_epoch, start)
        return [m for m in order[start:] if m.signature not in have]
