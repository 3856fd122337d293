"""The paper's valid(v) for a proposed block, judged before the engine sees the proposal.

A proposal is valid only if every honest validator would apply it the same
way and no junk rides along: canonical encoding (with a body that is the one
its header's tx_root names), the right chain, height and parent (block hash,
app hash, results root), the validator set of the next height, a proposer from the validator set, a time
not before its parent's, every signature valid, no transaction twice, and no
transaction that the ledger would refuse without effect (a bad nonce or an
unknown sender: such bytes could be replayed into a later block).  Business
failures such as insufficient funds are allowed: they consume the nonce and
leave a receipt, exactly as the ledger documents.

Judging a block takes two steps with different needs, so they are two calls
whose results are passed forward as values:

* ``prepare`` decodes the value and verifies the signatures of the
  transactions this node has not checked yet, in one batch on the verifier's
  workers (never on the event loop).  It needs no committed state, so it runs
  as soon as a proposal arrives, on the peer link's task.
* ``judge`` checks the block against the committed tip and executes it on
  the ledger's state (without writing).  Only the host's single writer calls
  it, between commits; a ``CheckedBlock`` carries the execution that the
  commit then applies as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from consensus.certificate import CertificateError, CommitCertificate, verify_certificate
from consensus.messages import value_id
from consensus.validators import ValidatorSet
from node.core.block import DEFAULT_MAX_TIME_AHEAD_MS, Block, BlockDecodeError, decode_block
from node.core.governance import SignedGovernance
from node.core.transactions import AnyTransaction, decode_tx
from node.core.tx import TxDecodeError, signing_prefix
from node.host.tip import Tip
from node.ledger.store import LedgerStore, PreparedBlock
from node.verifier.protocol import SignatureVerifier, Triple


class Refusal(StrEnum):
    """Why a proposed block is not valid; the nil prevote's log line names it."""

    MALFORMED = "malformed"
    WRONG_CHAIN = "wrong_chain"
    WRONG_HEIGHT = "wrong_height"
    NOT_A_VALIDATOR = "proposer_not_a_validator"
    WRONG_PARENT = "wrong_parent"
    WRONG_APP_HASH = "wrong_app_hash"
    WRONG_RESULTS_HASH = "wrong_results_hash"
    WRONG_NEXT_VALIDATORS = "wrong_next_validators_hash"
    TIME_BEFORE_PARENT = "time_before_parent"
    TIME_TOO_FAR_AHEAD = "time_too_far_ahead"
    DUPLICATE_TX = "duplicate_transaction"
    BAD_SIGNATURE = "bad_signature"
    INAPPLICABLE_TX = "inapplicable_transaction"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A proposed value, decoded, with the outcome of its transactions' signature checks.

    ``block`` is None when the bytes are not one canonical block (or hold a
    transaction that is not canonical).
    """

    value: bytes
    value_id: bytes
    block: Block | None
    txs: tuple[AnyTransaction, ...]
    signatures_valid: bool


@dataclass(frozen=True, slots=True)
class CheckedBlock:
    """A value judged valid on top of ``parent``, with the execution its commit applies."""

    value: bytes
    value_id: bytes
    block: Block
    txs: tuple[AnyTransaction, ...]
    parent: Tip
    prepared: PreparedBlock


Verdict = CheckedBlock | Refusal

KnownTx = Callable[[bytes], AnyTransaction | None]


class Validity:
    """Decodes and judges proposed blocks for one chain."""

    def __init__(self, store: LedgerStore, verifier: SignatureVerifier, validators: Callable[[int], ValidatorSet],
                 known: KnownTx = lambda tx_hash: None, max_time_ahead_ms: int = DEFAULT_MAX_TIME_AHEAD_MS) -> None:
        """``known`` finds a transaction this node already admitted (its mempool's), whose signature
        was checked at admission and is not checked again.  ``max_time_ahead_ms`` bounds how far
        ahead of this validator's clock a live proposal's time may be."""
        self._max_time_ahead_ms = max_time_ahead_ms
        self._store = store
        self._verifier = verifier
        self._validators = validators
        self._known = known
        self._chain_id = store.chain_id
        self._prefix = signing_prefix(store.chain_id)

    async def prepare(self, value: bytes) -> Candidate:
        """Decode ``value`` and verify the signatures not checked before (urgent: consensus waits)."""
        vid = value_id(value)
        try:
            block = decode_block(value)
            txs, unchecked = self._decode_txs(block)
        except (BlockDecodeError, TxDecodeError):
            return Candidate(value, vid, None, (), False)
        valid = True
        if unchecked:
            items, keys = self._signature_checks(unchecked)
            valid = all(await self._verifier.verify_batch(items, urgent=True, keys=keys))
        return Candidate(value, vid, block, txs, valid)

    def prepared(self, value: bytes, block: Block, txs: Sequence[AnyTransaction]) -> Candidate:
        """A candidate this node built itself from transactions it admitted."""
        return Candidate(value, value_id(value), block, tuple(txs), True)

    def judge(self, tip: Tip, candidate: Candidate, now_ms: int | None = None) -> Verdict:
        """valid(v) for ``candidate`` proposed on top of ``tip``, which must be the ledger's state now.

        ``now_ms`` is this validator's clock for a live proposal: block time drives the daily
        limits, so a block stamped further ahead of it than the configured bound gets a nil
        prevote.  A block the network already decided (catch-up, or a decision this node must
        apply) is judged without it: the certificate speaks for its time.
        One check per line, cheapest first; the execution runs last.
        """
        assert tip.height == self._store.height, "judged on the committed state"
        if candidate.block is None:
            return Refusal.MALFORMED
        block = candidate.block.header
        if block.chain_id != self._chain_id:
            return Refusal.WRONG_CHAIN
        if block.height != tip.height + 1:
            return Refusal.WRONG_HEIGHT
        if block.proposer not in self._validators(block.height):
            return Refusal.NOT_A_VALIDATOR
        if block.previous_block_hash != tip.block_hash:
            return Refusal.WRONG_PARENT
        if block.previous_app_hash != tip.app_hash:
            return Refusal.WRONG_APP_HASH
        if block.previous_results_hash != tip.results_hash:
            return Refusal.WRONG_RESULTS_HASH
        if block.next_validators_hash != tip.next_validators_hash:
            return Refusal.WRONG_NEXT_VALIDATORS
        if block.time_ms < tip.time_ms:
            return Refusal.TIME_BEFORE_PARENT
        if now_ms is not None and block.time_ms > now_ms + self._max_time_ahead_ms:
            return Refusal.TIME_TOO_FAR_AHEAD
        if len({stx.hash for stx in candidate.txs}) != len(candidate.txs):
            return Refusal.DUPLICATE_TX
        if not candidate.signatures_valid:
            return Refusal.BAD_SIGNATURE
        prepared = self._store.prepare(candidate.txs, block.time_ms)
        if prepared.execution.inapplicable:
            return Refusal.INAPPLICABLE_TX
        return CheckedBlock(candidate.value, candidate.value_id, candidate.block, candidate.txs, tip, prepared)

    def certified(self, candidate: Candidate, certificate: CommitCertificate) -> str | None:
        """Why ``certificate`` does not prove ``candidate`` was decided, or None when it does.

        Checked against the validator set of the certificate's height; call
        it from a worker thread, never the event loop: it verifies signatures.
        """
        return self._certifies(candidate.value_id, certificate)

    def certifies(self, value: bytes, certificate: CommitCertificate) -> str | None:
        """``certified`` for raw block bytes, before any decoding (a worker thread too)."""
        return self._certifies(value_id(value), certificate)

    def _certifies(self, vid: bytes, certificate: CommitCertificate) -> str | None:
        if not 1 <= certificate.height <= self._store.height + 2:
            return f"the validator set of height {certificate.height} is not known yet"
        try:
            verify_certificate(certificate, self._validators(certificate.height), self._chain_id, self._verifier,
                               value_id=vid)
        except CertificateError as exc:
            return str(exc)
        return None

    def _signature_checks(self, txs: Sequence[AnyTransaction]) -> tuple[list[Triple], list[bytes]]:
        """Every signature the transactions carry, with its cache key: a payment's hash, or a
        governance transaction's keys per signature (node/core/governance.py)."""
        prefix, items, keys = self._prefix, [], []
        for stx in txs:
            if isinstance(stx, SignedGovernance):
                more, more_keys = stx.signature_checks(self._chain_id)
                items += more
                keys += more_keys
            else:
                items.append(stx.verify_item(prefix))
                keys.append(stx.hash)
        return items, keys

    def _decode_txs(self, block: Block) -> tuple[tuple[AnyTransaction, ...], list[AnyTransaction]]:
        """The block's transactions, and those among them whose signatures still need checking.

        Transactions already in our mempool are taken as they are: the mempool
        admits only canonical transactions whose signatures verified.
        """
        known, sha256 = self._known, hashlib.sha256
        txs: list[AnyTransaction] = []
        unchecked: list[AnyTransaction] = []
        for raw in block.txs:
            found = known(sha256(raw).digest())
            if found is None:
                found = decode_tx(raw)
                unchecked.append(found)
            txs.append(found)
        return tuple(txs), unchecked
