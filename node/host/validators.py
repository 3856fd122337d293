"""The validator set of each height, as the ledger's schedule says, for everything that needs it.

Certificate checks, catch-up, the proposer schedule, peer admission and the
engine all ask for the set of a height, never for "the" set: a change
committed at height H holds from H+2 (node/ledger/governance.py).  The sets
are built once per schedule entry and kept, since a ``ValidatorSet`` caches
its proposer schedule.  Worker threads (validity, catch-up) ask too, hence
the lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from consensus.validators import Validator, ValidatorSet
from node.ledger.store import LedgerStore

# Distinct sets kept built: a handful cover the heights anyone asks about at once.
MAX_CACHED_SETS = 16


class ValidatorSchedule:
    def __init__(self, store: LedgerStore, vouched: frozenset[bytes] = frozenset()) -> None:
        """``vouched`` are keys the operator's config names as validators (``p2p.peers``)."""
        self._store = store
        self._vouched = vouched
        self._sets: OrderedDict[int, ValidatorSet] = OrderedDict()
        self._lock = threading.Lock()
        self._known: tuple[int, frozenset[bytes]] = (0, frozenset())  # (schedule length, every key it names)

    def __call__(self, height: int) -> ValidatorSet:
        """The set of ``height``, which must be at most the committed height plus two."""
        from_height, powers = self._store.validators_at(height)
        with self._lock:
            found = self._sets.get(from_height)
            if found is None:
                found = self._sets[from_height] = ValidatorSet([Validator(key, power) for key, power in powers])
                while len(self._sets) > MAX_CACHED_SETS:
                    self._sets.popitem(last=False)
            else:
                self._sets.move_to_end(from_height)
            return found

    def admits(self, key: bytes) -> bool:
        """Whether ``key`` may hold a peer link: a validator of the next height or of the one after,
        so a validator added at H connects as soon as H is committed, before its first height.

        A key the config vouches for is admitted too as long as this ledger has never seen it in
        a set: a node far behind (one that is joining, or was down across changes) learns the
        validators of today only from them.  Once its ledger names the key, the sets decide.
        """
        height = self._store.height
        if key in self(height + 1) or key in self(height + 2):
            return True
        return key in self._vouched and key not in self._ever_named()

    def observes(self, key: bytes) -> bool:
        """Whether ``key`` is a registered observer's (in the genesis or by the board): a validator lets
        it link and follow, up to ``p2p.max_observers``.  The ledger never lets a key hold both roles."""
        return key in dict(self._store.governance.observers)

    def admits_with_observers(self, key: bytes) -> bool:
        """Who may link to a validator: the validators ``admits`` and the registered observers."""
        return self.admits(key) or self.observes(key)

    def _ever_named(self) -> frozenset[bytes]:
        schedule = self._store.validator_schedule()
        with self._lock:
            length, keys = self._known
            if length != len(schedule):
                keys = frozenset(key for _, powers in schedule for key, _ in powers)
                self._known = (len(schedule), keys)
            return keys
