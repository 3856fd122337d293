"""Peer messages on their way to the host's single writer.

Each authenticated peer link hands its messages here one at a time (a slow
step slows that peer only).  A consensus message is filtered first by what
costs nothing (its height, whether its signer is in that height's validator set), then its
signature is verified in the verifier's pool, never on the event loop, and
urgently, so that a consensus step does not wait behind a flood of client
transactions.  A proposal's value is then decoded and its transactions'
signatures checked the same way (``Validity.prepare``), so the single writer
receives a message it can act on at once.  The engine therefore gets every
message already verified and checks only what is its own business (the
proposer of the round, the validator set, its bounds).

Peers re-gossip the proposals of the height being decided every second
(node/host/gossip.py), so the same proposal arrives again and again while its
height lasts: at four validators, more than half of all the proposals this
node receives.  A value is prepared once and its candidate handed over with
each copy: a candidate depends on the value's bytes alone (decoded, and
whether every signature in it holds), so preparing it again could only give
the same one, at the price of re-reading thousands of transactions.

Transaction batches relayed by other validators go to the mempool.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum

from consensus.messages import Proposal, Vote
from consensus.validators import ValidatorSet
from node.host.inbox import Inbox, PeerProposal, PeerVote
from node.host.validity import Candidate, Validity
from node.mempool.pool import Mempool
from node.p2p.wire import TxBatch, WireMessage
from node.verifier.protocol import SignatureVerifier

log = logging.getLogger(__name__)

# Prepared values kept for re-gossiped copies: the few proposals (rounds, or an
# equivocating proposer's values) of the height being decided and of the next.
MAX_PREPARED = 8


class Rejection(StrEnum):
    """Why a consensus message from a peer was dropped before the engine (a metric label)."""

    UNKNOWN_SIGNER = "unknown_signer"
    NOT_THE_PROPOSER = "not_the_proposer"
    BAD_SIGNATURE = "bad_signature"
    # A signed proposal whose value is not one canonical block, its body the one its header names: the
    # signature covers the header alone (the value id), so a relay may have swapped the body.
    MALFORMED = "malformed"


class Intake:
    def __init__(self, *, chain_id: str, validators: Callable[[int], ValidatorSet], verifier: SignatureVerifier,
                 validity: Validity, mempool: Mempool, inbox: Inbox, current_height: Callable[[], int],
                 committed_height: Callable[[], int],
                 on_rejected: Callable[[Rejection], None] = lambda reason: None) -> None:
        """``current_height`` is the height the engine decides; ``committed_height`` the ledger's, which
        lags it while a decided block is written, and bounds the heights whose sets are known."""
        self._chain_id = chain_id
        self._validators = validators
        self._verifier = verifier
        self._validity = validity
        self._mempool = mempool
        self._inbox = inbox
        self._current_height = current_height
        self._committed_height = committed_height
        self._on_rejected = on_rejected
        # value id -> (height of the proposal that brought it, its candidate); oldest first.
        self._prepared: OrderedDict[bytes, tuple[int, Candidate]] = OrderedDict()

    async def on_peer_message(self, peer: bytes, message: WireMessage) -> None:
        """The p2p layer's handler for one message from an authenticated peer."""
        match message:
            case Proposal():
                if await self._admissible(peer, message, message.proposer):
                    candidate = await self._candidate(message)
                    if candidate.block is None:
                        # Never to the engine, which keys its log and verdicts by value id: the real
                        # body, arriving later with the same id, must still be heard.
                        self._reject(peer, message, Rejection.MALFORMED)
                        return
                    self._inbox.put_peer(PeerProposal(message, candidate))
            case Vote():
                if await self._admissible(peer, message, message.validator):
                    self._inbox.put_peer(PeerVote(message))
            case TxBatch():
                await self._mempool.add_gossip(list(message.txs))

    async def _admissible(self, peer: bytes, message: Proposal | Vote, signer: bytes) -> bool:
        """For a height not yet decided, from a signer allowed to sign it, with a signature that holds."""
        current = self._current_height()
        # A set is known two heights past the committed block (node/ledger/governance.py).
        if not current <= message.height <= min(current + 1, self._committed_height() + 2):
            return False  # decided already, or too far ahead to hold: not worth a signature check
        validators = self._validators(message.height)
        if signer not in validators:
            return self._reject(peer, message, Rejection.UNKNOWN_SIGNER)
        if isinstance(message, Proposal) and validators.proposer(message.height, message.round) != signer:
            return self._reject(peer, message, Rejection.NOT_THE_PROPOSER)
        triple = (signer, message.signing_bytes(self._chain_id), message.signature)
        if not (await self._verifier.verify_batch([triple], urgent=True))[0]:
            return self._reject(peer, message, Rejection.BAD_SIGNATURE)
        return True

    async def _candidate(self, proposal: Proposal) -> Candidate:
        """The proposal's value prepared: once per value, however many copies arrive."""
        vid = proposal.value_id  # computed for the signature check already
        kept = self._prepared.get(vid)
        if kept is not None:
            self._prepared.move_to_end(vid)
            return kept[1]
        candidate = await self._validity.prepare(proposal.value)
        assert candidate.value_id == vid, "a candidate is of the value it was prepared from"
        if candidate.block is None:
            return candidate  # not kept: the id is the header's, and another body may be the real one
        # What a decided height brought is of no more use; the bound holds against an equivocator.
        current = self._current_height()
        for stale in [key for key, (height, _) in self._prepared.items() if height < current]:
            del self._prepared[stale]
        self._prepared[vid] = (proposal.height, candidate)
        while len(self._prepared) > MAX_PREPARED:
            self._prepared.popitem(last=False)
        return candidate

    def _reject(self, peer: bytes, message: Proposal | Vote, reason: Rejection) -> bool:
        self._on_rejected(reason)
        log.warning("consensus.reject peer=%s reason=%s type=%s height=%d round=%d", peer.hex()[:16], reason,
                    type(message).__name__.lower(), message.height, message.round)
        return False
