"""The governance transactions waiting for a block, in the order they will apply.

Admission runs the ledger's own rules (node/ledger/governance.py) on the
committed state after the transactions already waiting, so an action the
ledger would refuse is refused here, before it costs the board a sequence
number or a block its validity.  The rules look at keys only, so they run
before any signature is checked: a transaction with a hundred approvals
that could never apply costs no verification.  After each commit the queue
is judged again from the new state, and whatever would no longer apply
(another node's action took its sequence, the board changed, it expired)
leaves, so a proposal built from the queue is always valid.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from node.core.governance import SignedGovernance
from node.ledger.governance import REFUSAL_TEXT, Governance, GovernanceChanges
from node.ledger.receipts import ReceiptCode
from node.mempool.results import AdmitCode, AdmitResult
from node.verifier.protocol import SignatureVerifier


class BoardQueue:
    def __init__(self, chain_id: str, verifier: SignatureVerifier, governance: Callable[[], Governance],
                 committed_height: Callable[[], int]) -> None:
        """``governance`` and ``committed_height`` read the committed state: the board, the issuer,
        the banks and the validator set; and the height expiries count from."""
        self._chain_id = chain_id
        self._verifier = verifier
        self._governance = governance
        self._committed_height = committed_height
        self._queue: deque[SignedGovernance] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def __iter__(self) -> Iterator[SignedGovernance]:
        return iter(self._queue)

    def _judged(self) -> tuple[GovernanceChanges, list[SignedGovernance], list[SignedGovernance]]:
        """The queue tried, in order, on the committed state as the next block would try it: the
        changes of those that apply, those, and those that no longer do (the state moved on)."""
        changes = GovernanceChanges.starting(self._governance(), self._committed_height() + 1)
        kept: list[SignedGovernance] = []
        dropped: list[SignedGovernance] = []
        for stx in self._queue:
            attempt = changes.copy()
            code = attempt.apply(stx, len(kept))
            if code is ReceiptCode.OK:
                changes = attempt
                kept.append(stx)
            else:
                dropped.append(stx)
        return changes, kept, dropped

    def next_sequence(self) -> int:
        """The sequence the board's next action must carry, counting those waiting."""
        return self._judged()[0].sequence

    def refusal(self, stx: SignedGovernance) -> AdmitResult | None:
        """Why the ledger would refuse ``stx`` after the queue, or None if it would apply it."""
        changes, kept, _ = self._judged()
        code = changes.apply(stx, len(kept))
        if code is ReceiptCode.OK:
            return None
        return AdmitResult(stx.hash, False, code, REFUSAL_TEXT[code])

    async def admit(self, stx: SignedGovernance, has_room: Callable[[int], bool]) -> AdmitResult:
        """Judge, verify every signature, judge again (the state may have moved meanwhile), queue."""
        refused = self.refusal(stx)
        if refused is not None:
            return refused
        items, keys = stx.signature_checks(self._chain_id)
        if not all(await self._verifier.verify_batch(items, keys=keys)):
            return AdmitResult(stx.hash, False, AdmitCode.INVALID_SIGNATURE, "a signature does not verify")
        if any(stx.hash == queued.hash for queued in self._queue):  # a concurrent batch admitted it meanwhile
            return AdmitResult(stx.hash, True, AdmitCode.DUPLICATE, "already pending")
        refused = self.refusal(stx)
        if refused is not None:
            return refused
        if not has_room(len(stx.raw)):
            return AdmitResult(stx.hash, False, AdmitCode.MEMPOOL_FULL, "the mempool is full; retry later")
        self._queue.append(stx)
        return AdmitResult(stx.hash, True, AdmitCode.ACCEPTED, "accepted")

    def reap(self, max_txs: int, room: int) -> list[SignedGovernance]:
        """The queue's head: at most ``max_txs`` transactions and ``room`` bytes, in order."""
        picked: list[SignedGovernance] = []
        for stx in self._queue:
            if len(picked) >= max_txs or len(stx.raw) > room:
                break
            picked.append(stx)
            room -= len(stx.raw)
        return picked

    def recheck(self) -> list[SignedGovernance]:
        """After a commit: keep what still applies on the new state, in order; return what left
        (those the block committed among them)."""
        _, kept, dropped = self._judged()
        self._queue = deque(kept)
        return dropped
