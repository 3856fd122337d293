"""What the client API needs from the node, and the read-only views it renders.

The API never touches the mempool, ledger or consensus directly: the runtime
implements ``ApiBackend``, so the HTTP layer can be tested against a fake and
the node's internals can change without touching a single handler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from node.core.actions import Action
from node.core.block import Header
from node.core.state_proof import StateProof
from node.core.transactions import AnyTransaction
from node.mempool.results import AdmitResult


class TxState(StrEnum):
    PENDING = "pending"
    COMMITTED = "committed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class TxView:
    """A transaction's decoded fields, so a reader sees who paid whom how much without a decoder.

    ``kind`` is the lowercase kind name ("transfer", "issue", "redeem");
    ``recipient`` is None exactly when the kind has none (redeem).
    """

    kind: str
    sender: bytes
    nonce: int
    amount: int
    recipient: bytes | None
    memo: str


@dataclass(frozen=True, slots=True)
class GovernanceView:
    """A governance transaction's fields: the action, its sequence and expiry, who approved it."""

    sequence: int
    expiry_height: int
    action: Action
    signers: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class RegistrationView:
    """A bank's registration of a wallet: the tier it gives, the linked account (empty: none)."""

    bank: bytes
    nonce: int
    wallet: bytes
    tier: int
    linked: bytes


@dataclass(frozen=True, slots=True)
class TxStatus:
    """Where a transaction is; ``height``, ``index`` and ``result`` are set exactly when it is committed.

    ``result`` is the ledger's receipt code ("ok", "insufficient_funds", ...):
    a committed transaction may still have failed a business rule.  ``tx``
    is the transaction itself when the node holds it (pending or committed).
    """

    state: TxState
    height: int | None = None
    index: int | None = None
    result: str | None = None
    tx: TxView | GovernanceView | RegistrationView | None = None
    waterfall: tuple[int, int, bytes] | None = None  # (credited, passed on, linked) when it overflowed

    def __post_init__(self) -> None:
        committed = self.state is TxState.COMMITTED
        located = self.height is not None and self.index is not None and self.result is not None
        unlocated = self.height is None and self.index is None and self.result is None
        if not (located if committed else unlocated):
            raise ValueError("height, index and result are given exactly for committed transactions")
        if self.state is TxState.UNKNOWN and self.tx is not None:
            raise ValueError("an unknown transaction has no fields to show")


@dataclass(frozen=True, slots=True)
class PrecommitView:
    validator: bytes  # the validator's Ed25519 public key
    signature: bytes


@dataclass(frozen=True, slots=True)
class CommitCertificateView:
    """The +2/3 precommits for ``value_id`` (the block hash) in ``round`` that finalised a block."""

    round: int
    value_id: bytes
    precommits: tuple[PrecommitView, ...]


class ProofUnavailable(Exception):
    """The state of the height asked for cannot be proven here (not kept, or not committed yet)."""


@dataclass(frozen=True, slots=True)
class StateProofView:
    """A state record after block ``height`` and its proof against that height's app hash, which
    block ``height + 1`` carries as its ``previous_app_hash``."""

    height: int
    key: bytes
    value: bytes | None
    app_hash: bytes
    proof: StateProof


@dataclass(frozen=True, slots=True)
class BlockView:
    """A committed block as clients see it: header, transaction hashes and commit certificate.

    The header's ``previous_app_hash`` and ``previous_results_hash`` are what the
    block before left (execution follows commit); ``app_hash`` and ``results_hash``
    are what applying this block produced, known once it is applied.
    """

    header: Header
    block_hash: bytes
    app_hash: bytes
    results_hash: bytes
    tx_hashes: tuple[bytes, ...]
    commit: CommitCertificateView

    @property
    def height(self) -> int:
        return self.header.height


class TxProofPending(Exception):
    """The transaction is committed at ``height``, but its receipt is provable only once height + 1 is."""

    def __init__(self, height: int) -> None:
        super().__init__(f"the transaction is in block {height}; its result becomes provable when block "
                         f"{height + 1} is committed (its header carries the results root)")
        self.height = height


class ApiBackend(Protocol):
    """The node as the client API sees it; the runtime implements this."""

    chain_id: str
    node_id: str
    metrics_registry: CollectorRegistry

    async def submit(self, raws: list[bytes]) -> list[AdmitResult]: ...

    def tx_status(self, tx_hash: bytes) -> TxStatus:
        """Pending, committed or unknown; with the decoded transaction when this node holds it."""
        ...

    def account(self, public_key: bytes) -> tuple[int, int]:
        """Committed (balance in tyiyn, next nonce)."""
        ...

    def account_rules(self, public_key: bytes) -> dict[str, Any]:
        """JSON-ready: the account's tier, what its limits leave today, whether it is frozen, and its
        registration (docs/api.md lists the fields)."""
        ...

    def orders(self, public_key: bytes) -> list[dict[str, Any]]:
        """JSON-ready: the legal orders applied to the account, oldest first, each with its height."""
        ...

    def pending_nonce(self, public_key: bytes) -> int:
        """The nonce the account's next transaction must carry, counting its pending ones (the mempool's answer)."""
        ...

    def state_proof(self, key: bytes, height: int | None) -> StateProofView:
        """The record ``key`` at ``height`` (by default the newest a committed header certifies), proven.
        Raises ProofUnavailable."""
        ...

    def block(self, height: int) -> BlockView | None: ...

    def block_txs(self, height: int) -> list[bytes] | None:
        """The committed block's transactions as signed bytes, in block order; None if not committed."""
        ...

    def tx_proof(self, tx_hash: bytes) -> dict[str, Any] | None:
        """JSON-ready: the proof document of a committed transaction (docs/protocol.md §12.6); None when
        the transaction is not committed; ``TxProofPending`` while its block is the tip."""
        ...

    def genesis(self) -> tuple[str, bytes]:
        """The genesis file's text as the node read it, and the genesis hash (docs/protocol.md §11)."""
        ...

    def latest_height(self) -> int:
        """Height of the last committed block; 0 before the first."""
        ...

    def earliest_height(self) -> int:
        """The lowest height whose block this node still keeps: 1 unless it prunes (``storage.retain_blocks``)."""
        ...

    def validators(self, height: int | None) -> dict[str, Any] | None:
        """JSON-ready: the validator set of ``height`` (None: the height being decided) and from when it
        holds; None when that height's set is not decided yet."""
        ...

    def governance(self) -> dict[str, Any]:
        """JSON-ready: the board, its next sequence, the issuer and the banks."""
        ...

    def governance_history(self, after: int, limit: int) -> list[tuple[int, int, int, str, AnyTransaction]]:
        """Applied governance transactions after number ``after``: (number, height, index, result, tx)."""
        ...

    def status(self) -> dict[str, Any]:
        """JSON-ready: chain id, node id, height, app hash, validators, peers, mempool size, round,
        supply and the transactions committed so far (docs/api.md lists the fields)."""
        ...

    def subscribe(self) -> AsyncIterator[BlockView]:
        """Committed blocks from now on; ends with ``SubscriberLagged`` if the reader falls behind (see BlockFeed)."""
        ...
