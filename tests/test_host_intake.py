"""Peer proposals on their way to the single writer: a re-gossiped value is prepared once, and every copy
still reaches the writer with the candidate its value gives."""

from __future__ import annotations

import asyncio
import dataclasses

import msgpack
import pytest

from consensus.messages import Proposal
from node.core.block import split_block
from node.core.tx import Transaction, TxKind
from node.host.inbox import Inbox, PeerProposal
from node.host.intake import MAX_PREPARED, Intake, Rejection
from node.host.proposer import block_on
from node.host.tip import Tip, read_tip
from node.host.validity import Candidate, Validity
from node.ledger import LedgerStore
from node.mempool.pool import Mempool
from tests.crash_writer import CHAIN_ID
from tests.test_host_validity import ALICE, BOB, PROPOSER, VALIDATORS, funded_store

PEER = b"\x07" * 32


class CountingValidity(Validity):
    """The real preparation, counted."""

    prepared_values: list[bytes]

    async def prepare(self, value: bytes) -> Candidate:
        self.prepared_values.append(value)
        return await super().prepare(value)


@pytest.fixture
def store(tmp_path):
    opened = funded_store(tmp_path)
    yield opened
    opened.close()


class Node:
    """An intake wired as the node wires it, with the engine's height set by the test."""

    def __init__(self, store: LedgerStore, verifier) -> None:
        self.height = store.height + 1
        self.validity = CountingValidity(store, verifier, lambda height: VALIDATORS)
        self.validity.prepared_values = []
        self.inbox = Inbox(100)
        self.rejected: list[Rejection] = []
        mempool = Mempool(chain_id=CHAIN_ID, verifier=verifier, account=lambda key: (1_000, 0, 0, 0),
                          governance=lambda: store.governance, max_txs=10, max_bytes=1 << 20)
        self.intake = Intake(chain_id=CHAIN_ID, validators=lambda height: VALIDATORS, verifier=verifier,
                             validity=self.validity, mempool=mempool, inbox=self.inbox,
                             current_height=lambda: self.height, committed_height=lambda: store.height,
                             on_rejected=self.rejected.append)

    def receive(self, *proposals: Proposal) -> list[PeerProposal]:
        async def run() -> list[PeerProposal]:
            for proposal in proposals:
                await self.intake.on_peer_message(PEER, proposal)
            handed = []
            while len(self.inbox):
                item = await self.inbox.get()
                assert isinstance(item, PeerProposal)
                handed.append(item)
            return handed
        return asyncio.run(run())


def block(tip: Tip, height: int, *amounts: int) -> bytes:
    txs = tuple(Transaction(TxKind.TRANSFER, ALICE.public_key, nonce, amount, BOB.public_key).sign(ALICE, CHAIN_ID).raw
                for nonce, amount in enumerate(amounts))
    on_tip = block_on(tip, CHAIN_ID, PROPOSER.public_key, tip.time_ms + 1, txs)
    return dataclasses.replace(on_tip, header=dataclasses.replace(on_tip.header, height=height)).encode()


def proposal(height: int, round: int, value: bytes) -> Proposal:
    unsigned = Proposal(height, round, value, -1, PROPOSER.public_key, bytes(64))
    return Proposal(height, round, value, -1, PROPOSER.public_key, PROPOSER.sign(unsigned.signing_bytes(CHAIN_ID)))


def test_a_re_gossiped_proposal_is_prepared_once_and_every_copy_is_handed_over(store, batch_verifier):
    node = Node(store, batch_verifier)
    value = block(read_tip(store), 1, 5, 6)
    copies = [proposal(1, 0, value) for _ in range(3)]  # three peers relay it, each a fresh message
    handed = node.receive(*copies)
    assert node.validity.prepared_values == [value]
    assert [item.proposal for item in handed] == copies, "the writer still sees each copy"
    assert len({id(item.candidate) for item in handed}) == 1
    fresh = asyncio.run(Validity(store, batch_verifier, lambda height: VALIDATORS).prepare(value))
    assert handed[0].candidate == fresh and fresh.signatures_valid, "the candidate the value gives"


def test_another_value_is_prepared_for_itself(store, batch_verifier):
    node = Node(store, batch_verifier)
    tip = read_tip(store)
    first, second = block(tip, 1, 5), block(tip, 1, 7)
    handed = node.receive(proposal(1, 0, first), proposal(1, 1, second), proposal(1, 1, second))
    assert node.validity.prepared_values == [first, second]
    assert [item.candidate.value for item in handed] == [first, second, second]


def test_a_value_with_a_bad_signature_inside_is_refused_in_every_copy(store, batch_verifier):
    node = Node(store, batch_verifier)
    tip = read_tip(store)
    good = Transaction(TxKind.TRANSFER, ALICE.public_key, 0, 5, BOB.public_key).sign(ALICE, CHAIN_ID)
    forged = good.raw[:-64] + bytes(64)
    value = block_on(tip, CHAIN_ID, PROPOSER.public_key, tip.time_ms + 1, (forged,)).encode()
    handed = node.receive(proposal(1, 0, value), proposal(1, 0, value))
    assert node.validity.prepared_values == [value]
    assert [item.candidate.signatures_valid for item in handed] == [False, False]


def test_what_a_decided_height_brought_goes_and_the_kept_values_are_bounded(store, batch_verifier):
    node = Node(store, batch_verifier)
    tip = read_tip(store)
    decided = block(tip, 1, 5)
    node.receive(proposal(1, 0, decided))
    node.height = 2  # height 1 was decided meanwhile
    later = [block(tip, 2, 10 + round) for round in range(MAX_PREPARED + 2)]
    node.receive(*(proposal(2, round, value) for round, value in enumerate(later)))
    kept = node.intake._prepared
    assert decided not in [candidate.value for _, candidate in kept.values()]
    assert len(kept) == MAX_PREPARED
    assert [candidate.value for _, candidate in kept.values()] == later[-MAX_PREPARED:]


def test_a_relayed_proposal_with_a_swapped_body_is_dropped_and_the_real_one_still_heard(store, batch_verifier):
    """The signature covers the header alone, so a relay can swap the body: the copy that does not decode
    is refused before the engine, which keys proposals by value id, and is not kept in place of the real one."""
    node = Node(store, batch_verifier)
    real = block(read_tip(store), 1, 5)
    header, body = split_block(real)
    swapped = real[:len(real) - len(body)] + msgpack.packb([b"not the transactions"], use_bin_type=True)
    forged, genuine = proposal(1, 0, swapped), proposal(1, 0, real)
    assert forged.value_id == genuine.value_id and forged.signature == genuine.signature
    handed = node.receive(forged, genuine)
    assert node.rejected == [Rejection.MALFORMED]
    assert [item.proposal for item in handed] == [genuine] and handed[0].candidate.block is not None
