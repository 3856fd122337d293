"""The mempool: signed transactions admitted by this node and waiting for a block.

Admission runs every check that can be decided before ordering, so a proposal
built from the pool is (almost) always fully applicable: canonical decoding,
one batched signature verification per submitted batch, authorisation (issue
by the issuer only, redeem by a bank or the issuer, as the ledger rules say),
and nonce and balance checks.

Pending state is tracked per account because a sender's transactions are not
independent: the ledger applies an account's nonces strictly in sequence and
debits each spend from the same balance.  Checking each transaction only
against committed state would admit nonces 5, 5 and 5 from one account, or
three spends that each fit the balance but together overdraw it; all but one
would fail in the block and waste its space and every validator's verification
time.  So each account keeps a queue of pending transactions whose nonces are
contiguous from the committed next nonce, plus the sum they spend, and a new
transaction must continue that queue and fit what is left of the balance.
Pending credits are deliberately ignored: a credit only helps once its block
commits, and counting it earlier would let a failed transfer strand the
transactions queued behind it.

Costs: admission and removal are O(1) per transaction (dict and deque
operations; a batch is sorted by nonce once); ``update`` re-reads committed
state only for accounts the block touched, since no other account's committed
state changed, and walks an account's queue only when its balance fell below
the pending spends; ``reap`` visits each account at most once per transaction
it takes plus once when it drops it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice

from node.core.actions import AddBank, DefineTier, Freeze, RemoveBank, ReplaceIssuer, Scope, Seize, SetWallet, Unfreeze
from node.core.amount import format_som
from node.core.governance import SignedGovernance
from node.core.tiers import INSTITUTIONAL
from node.core.transactions import AnyTransaction, decode_tx
from node.core.tx import SignedTransaction, TxDecodeError, TxKind, signing_prefix
from node.ledger.governance import Governance
from node.ledger.receipts import ReceiptCode
from node.ledger.rules import authorisation_refusal
from node.mempool.board import BoardQueue
from node.mempool.results import AdmitCode, AdmitResult
from node.verifier.protocol import SignatureVerifier

log = logging.getLogger(__name__)

# Enum members as module constants: ``TxKind.ISSUE`` is a descriptor lookup on every
# admitted transaction, a module global a fraction of that (docs/performance.md).
_ISSUE, _GOVERNANCE = TxKind.ISSUE, TxKind.GOVERNANCE
_REFUSAL_TEXT = {
    (TxKind.ISSUE, ReceiptCode.UNAUTHORISED): "only the issuer may issue som",
    (TxKind.REDEEM, ReceiptCode.UNAUTHORISED): "only a bank or the issuer may redeem som",
    (TxKind.TRANSFER, ReceiptCode.SELF_TRANSFER): "sender and recipient are the same account",
    (TxKind.REGISTER, ReceiptCode.UNAUTHORISED): "only a bank registers wallets",
}



ACCEPTED, DUPLICATE, MEMPOOL_FULL = AdmitCode.ACCEPTED, AdmitCode.DUPLICATE, AdmitCode.MEMPOOL_FULL
INVALID_SIGNATURE, STALE_NONCE = AdmitCode.INVALID_SIGNATURE, AdmitCode.STALE_NONCE
NONCE_GAP, TOO_MANY_PENDING = AdmitCode.NONCE_GAP, AdmitCode.TOO_MANY_PENDING
INSUFFICIENT_FUNDS = ReceiptCode.INSUFFICIENT_FUNDS
SENDER_FROZEN, OVER_PAYMENT_LIMIT = ReceiptCode.SENDER_FROZEN, ReceiptCode.OVER_PAYMENT_LIMIT


# Committed (balance, next nonce, tier, freeze flags) of an account; zeros when there is none.
AccountLookup = Callable[[bytes], tuple[int, int, int, int]]


def _by_nonce(pair: tuple[int, SignedTransaction]) -> int:
    return pair[1].tx.nonce


def _debit(tx: SignedTransaction) -> int:
    """What the transaction takes from its sender's balance: issuance creates som, it spends none."""
    return 0 if tx.tx.kind is _ISSUE else tx.tx.amount


class _AccountQueue:
    """One sender's pending transactions, nonces ``nonce``, ``nonce + 1``, ... in order."""

    __slots__ = ("balance", "nonce", "txs", "spend", "frozen", "max_payment")

    def __init__(self, balance: int, nonce: int, frozen: bool, max_payment: int | None) -> None:
        self.balance = balance  # committed balance when last read
        self.nonce = nonce  # committed next nonce when last read
        self.frozen = frozen  # frozen for outgoing payments by a legal order
        self.max_payment = max_payment  # the tier's single-payment limit; None: not limited
        self.txs: deque[SignedTransaction] = deque()
        self.spend = 0  # sum of the pending debits

    @property
    def next_nonce(self) -> int:
        return self.nonce + len(self.txs)


class Mempool:
    def __init__(
        self,
        *,
        chain_id: str,
        verifier: SignatureVerifier,
        account: AccountLookup,
        governance: Callable[[], Governance],
        max_txs: int,
        max_bytes: int,
        max_pending_per_account: int = 1000,
        max_client_txs: int | None = None,
        committed_height: Callable[[], int] = lambda: 0,
    ) -> None:
        """``governance`` and ``committed_height`` read the committed state: the board, the
        issuer and banks, the validator set; and the height governance expiries count from."""
        max_client_txs = max_txs if max_client_txs is None else max_client_txs
        if max_txs < 1 or max_bytes < 1 or max_pending_per_account < 1 or max_client_txs < 1:
            raise ValueError("mempool limits must be positive")
        if max_client_txs > max_txs:
            raise ValueError("max_client_txs cannot exceed max_txs")
        self._chain_id = chain_id
        self._prefix = signing_prefix(chain_id)
        self._verifier = verifier
        self._account = account
        self._governance = governance
        self._committed_height = committed_height
        state = governance()
        self._issuer = state.issuer
        self._redeemers = state.redeemers
        self._max_payment = {tier.id: tier.max_payment for tier in state.tiers}
        self._board = BoardQueue(chain_id, verifier, governance, committed_height)
        self._max_txs = max_txs
        # Clients' transactions are admitted while the pool holds fewer than this; relayed
        # ones up to max_txs (see add_gossip).
        self._max_client_txs = max_client_txs
        self._max_bytes = max_bytes
        self._max_per_account = max_pending_per_account
        self._by_hash: dict[bytes, AnyTransaction] = {}
        # Insertion order is the order accounts got their oldest pending transaction: reap's fairness order.
        self._accounts: dict[bytes, _AccountQueue] = {}
        self._bytes = 0
        self.gossip_dropped = 0  # relayed transactions dropped unexamined because the pool was full

    # ---- queries

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._by_hash

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, tx_hash: bytes) -> AnyTransaction | None:
        return self._by_hash.get(tx_hash)

    def limit_clients(self, max_client_txs: int) -> None:
        """Change how much of the pool clients may fill (node/app/assembly.py: as the set grows or shrinks)."""
        if not 1 <= max_client_txs <= self._max_txs:
            raise ValueError("max_client_txs must be 1..max_txs")
        self._max_client_txs = max_client_txs

    def next_sequence(self) -> int:
        """The sequence the board's next governance transaction must carry, counting pending ones."""
        return self._board.next_sequence()

    def pending_nonce(self, public_key: bytes) -> int:
        """The nonce the account's next transaction must carry, counting its pending ones."""
        queue = self._accounts.get(public_key)
        return queue.next_nonce if queue is not None else self._account(public_key)[1]

    # ---- admission

    async def add_gossip(self, raws: Sequence[bytes]) -> None:
        """Transactions a peer relayed: checked as a client's would be, and admitted up to ``max_txs``.

        Clients' transactions stop at ``max_client_txs``, so the rest of the
        pool is kept for what other validators admitted.  Without that room,
        under load every pool filled with its own clients' transfers, each
        block carried only its proposer's, and the other validators verified
        them while the height waited; a validator's pool then emptied only at
        the heights it proposed.  With it, every validator has verified every
        validator's transfers before they are proposed.

        A pool full even for relayed transactions drops them unexamined:
        decoding each only to refuse it was most of a validator's work under
        load, and a transaction another validator admitted reaches this one
        inside that validator's proposal anyway.
        """
        if len(self._by_hash) >= self._max_txs:
            self.gossip_dropped += len(raws)
            return
        await self._add(raws, self._max_txs)

    async def add_batch(self, raws: Sequence[bytes]) -> list[AdmitResult]:
        """A client's transactions: admit what passes every check; one result per input, in input order."""
        return await self._add(raws, self._max_client_txs)

    async def _add(self, raws: Sequence[bytes], limit: int) -> list[AdmitResult]:
        """Admit what passes every check while the pool holds fewer than ``limit`` transactions."""
        results: list[AdmitResult | None] = [None] * len(raws)
        candidates: list[tuple[int, SignedTransaction]] = []
        governing: list[tuple[int, SignedGovernance]] = []
        first_copy: dict[bytes, int] = {}  # hash -> index of its first occurrence in this batch
        repeats: list[tuple[int, int]] = []  # (index, index of the first copy)
        pending = self._by_hash
        for i, raw in enumerate(raws):
            try:
                stx = decode_tx(raw)
            except TxDecodeError as exc:
                results[i] = AdmitResult(None, False, exc.code, str(exc))
                continue
            tx_hash = stx.hash
            if tx_hash in pending:
                results[i] = AdmitResult(tx_hash, True, DUPLICATE, "already pending")
                continue
            if tx_hash in first_copy:
                repeats.append((i, first_copy[tx_hash]))
                continue
            first_copy[tx_hash] = i
            if stx.tx.kind is _GOVERNANCE:
                governing.append((i, stx))  # type: ignore[arg-type]  # the kind says which class
                continue
            refusal = self._authorisation_refusal(stx)  # type: ignore[arg-type]
            if refusal is not None:
                results[i] = refusal
                continue
            candidates.append((i, stx))  # type: ignore[arg-type]
        if candidates:
            await self._verify_and_admit(candidates, results, limit)
        for i, stx in governing:
            results[i] = await self._admit_governance(stx, limit)
        for i, first in repeats:  # a repeated copy shares the fate of the first one
            original = results[first]
            assert original is not None, "the first copy was decided before its repeats"
            if original.accepted:
                original = AdmitResult(original.tx_hash, True, DUPLICATE, "repeated in the batch")
            results[i] = original
        assert None not in results, "every input gets a result"
        return results  # type: ignore[return-value]

    async def _verify_and_admit(self, candidates: list[tuple[int, SignedTransaction]],
                                results: list[AdmitResult | None], limit: int) -> None:
        # Each account's transactions are tried in nonce order, so a client's batch need not be sorted.
        if len(self._by_hash) >= limit:
            # Full by count: nothing can be inserted, so spending a signature check on
            # these would be pure waste (the proposal that carries them verifies them
            # anyway). They still get their state errors, or mempool_full.
            candidates.sort(key=_by_nonce)
            self._admit(candidates, results, limit)
            assert all(not results[i].accepted or results[i].code == DUPLICATE  # type: ignore[union-attr]
                       for i, _ in candidates), "an unverified transaction was admitted"
            return
        prefix = self._prefix
        # Transaction hashes as cache keys, as Chain uses them too: the hash determines the triple.
        valid = await self._verifier.verify_batch([stx.verify_item(prefix) for _, stx in candidates],
                                                  keys=[stx.hash for _, stx in candidates])
        if len(valid) != len(candidates):
            raise RuntimeError(f"verifier answered {len(valid)} results for {len(candidates)} items")
        # No await from here on: the state checks and inserts see one consistent pool.
        if all(valid):
            verified = candidates
        else:
            verified = []
            for (i, stx), ok in zip(candidates, valid):
                if ok:
                    verified.append((i, stx))
                else:
                    results[i] = AdmitResult(stx.hash, False, INVALID_SIGNATURE, "the signature does not verify")
        verified.sort(key=_by_nonce)
        self._admit(verified, results, limit)

    def _authorisation_refusal(self, stx: SignedTransaction) -> AdmitResult | None:
        """The ledger's own authorisation rule (node/ledger/rules.py), with its code."""
        refusal = authorisation_refusal(stx.tx, self._issuer, self._redeemers)
        if refusal is None:
            return None
        return AdmitResult(stx.hash, False, refusal, _REFUSAL_TEXT[stx.tx.kind, refusal])

    def _admit(self, admitting: list[tuple[int, SignedTransaction]], results: list[AdmitResult | None],
               limit: int) -> None:
        """The state checks and inserts for each (index, transaction), in the given order, below ``limit``.

        One loop over the batch with the pool's attributes in locals: this runs
        once per admitted transaction and was the mempool's largest cost.
        """
        by_hash, accounts = self._by_hash, self._accounts
        max_bytes, max_per_account = self._max_bytes, self._max_per_account
        for i, stx in admitting:
            tx_hash = stx.hash
            if tx_hash in by_hash:  # admitted by a concurrent batch while this one was verified
                results[i] = AdmitResult(tx_hash, True, DUPLICATE, "already pending")
                continue
            tx = stx.tx
            sender = tx.sender
            queue = accounts.get(sender)
            if queue is None:
                queue = self._queue(sender)
            if queue.frozen:  # before the nonce: whatever nonce it carries, the ledger would refuse it
                results[i] = AdmitResult(tx_hash, False, SENDER_FROZEN, "a legal order froze the sender's payments")
                continue
            txs = queue.txs
            expected = queue.nonce + len(txs)
            if tx.nonce != expected:
                results[i] = (
                    AdmitResult(tx_hash, False, STALE_NONCE, f"nonce {tx.nonce} is used; the next is {expected}")
                    if tx.nonce < expected else
                    AdmitResult(tx_hash, False, NONCE_GAP, f"nonce {tx.nonce} skips ahead; the next is {expected}"))
                continue
            if queue.max_payment is not None and tx.amount > queue.max_payment:
                results[i] = AdmitResult(tx_hash, False, OVER_PAYMENT_LIMIT,
                                         f"{format_som(tx.amount)} som is over the sender's tier limit of "
                                         f"{format_som(queue.max_payment)} som for one payment")
                continue
            if len(txs) >= max_per_account:
                results[i] = AdmitResult(tx_hash, False, TOO_MANY_PENDING,
                                         f"the account already has {len(txs)} pending transactions")
                continue
            debit = 0 if tx.kind is _ISSUE else tx.amount  # issuance creates som, it spends none
            if queue.spend + debit > queue.balance:
                results[i] = AdmitResult(
                    tx_hash, False, INSUFFICIENT_FUNDS,
                    f"balance {format_som(queue.balance)} som with {format_som(queue.spend)} som pending "
                    f"does not cover {format_som(debit)} som")
                continue
            # Checked last, so "mempool_full" means every other check passed and a retry is worth it
            # (when the pool was already full on arrival, the signature was not checked either).
            size = len(stx.raw)
            if len(by_hash) >= limit or self._bytes + size > max_bytes:
                results[i] = AdmitResult(tx_hash, False, MEMPOOL_FULL, "the mempool is full; retry later")
                continue
            if not txs:
                accounts[sender] = queue
            txs.append(stx)
            queue.spend += debit
            by_hash[tx_hash] = stx
            self._bytes += size
            results[i] = AdmitResult(tx_hash, True, ACCEPTED, "accepted")

    async def _admit_governance(self, stx: SignedGovernance, limit: int) -> AdmitResult:
        """The board's queue judges it by the ledger's rules (node/mempool/board.py); the pool keeps count."""
        def has_room(size: int) -> bool:
            return len(self._by_hash) < limit and self._bytes + size <= self._max_bytes

        result = await self._board.admit(stx, has_room)
        if result.code is ACCEPTED:
            self._by_hash[stx.hash] = stx
            self._bytes += len(stx.raw)
        return result

    # ---- proposal

    def reap(self, max_txs: int, max_bytes: int) -> list[AnyTransaction]:
        """Transactions for a proposal, at most ``max_txs`` and ``max_bytes`` in total.

        The board's pending governance transactions come first, in sequence
        order.  Then payments round-robin across accounts in the order they arrived: one transaction
        from each account per pass, so one busy sender cannot fill a block while
        others wait.  Each account's transactions come out in nonce order, and an
        account whose next transaction does not fit leaves the rotation, since
        its later nonces cannot apply without it.
        """
        picked: list[AnyTransaction] = []
        if max_txs <= 0 or max_bytes <= 0:
            return picked
        picked.extend(self._board.reap(max_txs, max_bytes))
        room = max_bytes - sum(len(stx.raw) for stx in picked)
        # The first pass takes accounts lazily, so a small block does not walk a large pool.
        fresh = iter(self._accounts.values())
        rotation: deque[Iterator[SignedTransaction]] = deque()
        while len(picked) < max_txs:
            queue = next(fresh, None)
            if queue is not None:
                pending = iter(queue.txs)
            elif rotation:
                pending = rotation.popleft()
            else:
                break
            stx = next(pending, None)
            if stx is None or len(stx.raw) > room:
                continue
            picked.append(stx)
            room -= len(stx.raw)
            rotation.append(pending)
        return picked

    # ---- commit

    def update(self, committed: Sequence[AnyTransaction], written: Iterable[bytes] = ()) -> None:
        """Forget what a block committed and re-check the accounts it touched against the new state.

        ``written`` names every account the block changed, which includes some no
        transaction names: a linked account a waterfall credited, a seizure's destination.
        """
        touched: dict[bytes, None] = dict.fromkeys(written)
        governed = everyone = False
        committed_hashes: set[bytes] = set()
        for stx in committed:
            tx = stx.tx
            if tx.kind is _GOVERNANCE:
                governed = True
                committed_hashes.add(stx.hash)
                action = tx.action  # type: ignore[union-attr]
                if isinstance(action, Freeze | Unfreeze | Seize):
                    touched[action.account] = None
                elif isinstance(action, SetWallet):
                    touched[action.wallet] = None
                elif isinstance(action, DefineTier | AddBank | RemoveBank | ReplaceIssuer):
                    everyone = True  # limits or exemptions changed for accounts the block did not name
                continue
            touched[tx.sender] = None  # type: ignore[union-attr]  # a payment: governance left above
            if tx.recipient is not None:  # type: ignore[union-attr]
                touched[tx.recipient] = None  # type: ignore[union-attr]
        if governed:
            state = self._governance()
            self._issuer, self._redeemers = state.issuer, state.redeemers
            self._max_payment = {tier.id: tier.max_payment for tier in state.tiers}
        dropped = 0
        if governed or len(self._board):
            for stx in self._board.recheck():
                self._forget(stx)
                dropped += stx.hash not in committed_hashes
        for public_key in (list(self._accounts) if everyone else touched):
            queue = self._accounts.get(public_key)
            if queue is not None:
                dropped += self._recheck(public_key, queue)
        if dropped:
            log.info("mempool.recheck dropped=%d remaining=%d", dropped, len(self._by_hash))

    def _queue(self, sender: bytes) -> _AccountQueue:
        """A fresh queue for ``sender`` from its committed account and the committed tiers."""
        balance, nonce, tier, flags = self._account(sender)
        unlimited = tier == INSTITUTIONAL or sender in self._redeemers
        return _AccountQueue(balance, nonce, bool(flags & Scope.OUTGOING),
                             None if unlimited else self._max_payment.get(tier, 0))

    def _recheck(self, public_key: bytes, queue: _AccountQueue) -> int:
        """Refresh one account from committed state; return how many pending transactions became invalid.

        O(transactions leaving the queue) in the usual case, where the block
        committed a prefix of the queue and the rest still fits the balance: the
        debits are non-negative, so if the whole remaining spend fits, every
        prefix of it does too and no walk is needed.
        """
        fresh = self._queue(public_key)
        balance, nonce, limit = fresh.balance, fresh.nonce, fresh.max_payment
        lowered = limit is not None and (queue.max_payment is None or limit < queue.max_payment)
        queue.balance, queue.nonce, queue.frozen, queue.max_payment = balance, nonce, fresh.frozen, limit
        txs = queue.txs
        while txs and txs[0].tx.nonce < nonce:  # committed, or made stale by a conflicting commit
            stx = txs.popleft()
            queue.spend -= _debit(stx)
            self._forget(stx)
        kept = len(txs)
        if (txs and txs[0].tx.nonce != nonce) or queue.frozen:  # a gap at the head, or a freeze: none applies
            kept, queue.spend = 0, 0
        else:
            if lowered:  # the tier changed: nothing from the first payment over the new limit on can apply
                kept = next((index for index, stx in enumerate(txs) if stx.tx.amount > limit), kept)  # type: ignore[operator]
            if kept < len(txs) or queue.spend > balance:
                fitting, queue.spend = 0, 0
                for stx in islice(txs, kept):
                    debit = _debit(stx)
                    if queue.spend + debit > balance:
                        break
                    queue.spend += debit
                    fitting += 1
                kept = fitting
        dropped = len(txs) - kept
        while len(txs) > kept:
            self._forget(txs.pop())
        assert queue.spend >= 0 and queue.spend <= balance, "pending spends fit the committed balance"
        if not txs:
            del self._accounts[public_key]
        return dropped

    def _forget(self, stx: AnyTransaction) -> None:
        del self._by_hash[stx.hash]
        self._bytes -= len(stx.raw)
