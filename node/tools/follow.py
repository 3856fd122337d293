"""Follow the validator set from the genesis through a node's API, checking every block it serves.

A client that trusts only the genesis can check that a block was decided: its
certificate's precommits must carry more than two thirds of the power of the
validator set *of that height*.  The set changes only by governance
transactions, so the client takes each block's header bytes and its
transactions (``GET /v1/blocks/{h}`` and ``/v1/blocks/{h}/txs``), checks that
the header hashes to the value the certificate decides, that it names its
parent, the transactions (``tx_root``) and the next height's set
(``next_validators_hash``) the client computed, and applies the block's
governance transactions itself, approvals verified, with the ledger's own
rules (node/ledger/governance.py).  No change can move a third of the power
or more at once, so each set is followed from the one before.  What the node
says besides (``GET /v1/validators``, ``GET /v1/governance/history``) is
compared with what the client computed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from consensus.certificate import CertificateError, CommitCertificate, verify_certificate
from consensus.messages import MessageType, Vote
from consensus.validators import Validator, ValidatorSet
from node.core import rfc6962
from node.core.address import AddressError, decode_address, encode_address
from node.core.block import BlockDecodeError, decode_header
from node.core.genesis import Genesis
from node.core.governance import SignedGovernance
from node.core.keys import verify_signature
from node.core.transactions import decode_tx
from node.core.tx import TxDecodeError
from node.core.validator_set import validators_hash
from node.ledger.governance import Governance, GovernanceChanges, ValidatorPowers
from node.ledger.state import GenesisState
from node.lightclient.documents import Ed25519
from node.tools.client import NodeClient


class FollowError(Exception):
    """What the node served does not prove what it claims; the message says where."""


@dataclass(frozen=True, slots=True)
class Followed:
    """The state a client reached: every block up to ``height`` verified."""

    height: int
    governance: Governance
    schedule: tuple[tuple[int, ValidatorPowers], ...]  # (from height, set), as the client computed it
    applied: tuple[tuple[int, int, str, bytes], ...]  # every governance transaction: (height, index, code, hash)


def follow(client: NodeClient, genesis: Genesis, to_height: int) -> Followed:
    """Check blocks 1..``to_height`` as described above; raise FollowError at the first doubt."""
    chain_id = genesis.chain_id
    state = GenesisState.from_genesis(genesis).governance()
    schedule: list[tuple[int, ValidatorPowers]] = [(1, state.validators)]
    applied: list[tuple[int, int, str, bytes]] = []
    parent = genesis.hash()
    for height in range(1, to_height + 1):
        powers, next_powers = ([powers for start, powers in schedule if start <= at][-1] for at in (height, height + 1))
        header, txs = client.block(height), client.block_txs(height)
        parent = _check_block(header, txs, powers, chain_id, height, parent, validators_hash(next_powers))
        _check_validators_document(client.validators(height), powers, height)
        changes = GovernanceChanges.starting(state, height)
        governing = 0
        for index, raw in enumerate(txs):
            stx = _decode(raw, height, index)
            if not isinstance(stx, SignedGovernance):
                continue
            if not all(verify_signature(*item) for item in stx.verify_items(chain_id)):
                raise FollowError(f"height {height}: governance transaction {index} carries a bad signature")
            changes.apply(stx, index)
            governing += 1
        if changes.void or len(changes.applied) != governing:
            raise FollowError(f"height {height}: the block carries a governance transaction that changes nothing")
        applied.extend((height, a.index, str(a.code), hashlib.sha256(a.raw).digest()) for a in changes.applied)
        after = changes.result()
        if after.validators_from != state.validators_from:
            schedule.append((after.validators_from, after.validators))
        state = after
    _check_history(client, applied)
    return Followed(to_height, state, tuple(schedule), tuple(applied))


def _decode(raw: bytes, height: int, index: int):
    try:
        return decode_tx(raw)
    except TxDecodeError as exc:
        raise FollowError(f"height {height}: transaction {index} does not decode: {exc}") from None


def _check_block(header: dict, txs: list[bytes], powers: ValidatorPowers, chain_id: str, height: int,
                 parent: bytes, next_set_hash: bytes) -> bytes:
    """The header bytes are what the certificate of the height's set decides, and they name the parent,
    the transactions and the next set the client expects; the block hash, for the next block's check."""
    commit = header["commit"]
    try:
        header_bytes = bytes.fromhex(header["header"])
        decoded = decode_header(header_bytes)
        value_id = hashlib.sha256(header_bytes).digest()
        precommits = tuple(
            Vote(MessageType.PRECOMMIT, height, commit["round"], bytes.fromhex(commit["value_id"]),
                 decode_address(p["validator"]), bytes.fromhex(p["signature"]))
            for p in commit["precommits"])
        verify_certificate(CommitCertificate(height, commit["round"], bytes.fromhex(commit["value_id"]), precommits),
                           ValidatorSet([Validator(key, power) for key, power in powers]), chain_id,
                           Ed25519(), height=height, value_id=value_id)
    except (CertificateError, AddressError, BlockDecodeError, ValueError, KeyError, TypeError) as exc:
        raise FollowError(f"height {height}: the block is not proven by its certificate: {exc}") from None
    if header["hash"] != value_id.hex():
        raise FollowError(f"height {height}: the served hash is not the hash of the header's bytes")
    if (decoded.chain_id, decoded.height, decoded.previous_block_hash) != (chain_id, height, parent):
        raise FollowError(f"height {height}: the header is not the next block of chain {chain_id!r}")
    if (decoded.tx_root, decoded.tx_count) != (rfc6962.root(txs), len(txs)):
        raise FollowError(f"height {height}: the served transactions are not the ones the header's tx_root names")
    if decoded.next_validators_hash != next_set_hash:
        raise FollowError(f"height {height}: the header's next_validators_hash is not the set the blocks give")
    return value_id


def _check_validators_document(document: dict, powers: ValidatorPowers, height: int) -> None:
    served = sorted((entry["address"], entry["power"]) for entry in document["validators"])
    if served != sorted((encode_address(key), power) for key, power in powers):
        raise FollowError(f"height {height}: the node's validator set differs from the one the blocks give")


def _check_history(client: NodeClient, applied: list[tuple[int, int, str, bytes]]) -> None:
    """The node's history lists exactly the governance transactions the blocks applied, numbered from 0."""
    served: list[tuple[int, int, str, bytes]] = []
    after: int | None = None
    while True:
        page = client.governance_history(after)
        for entry in page["actions"]:
            if entry["number"] != len(served):
                raise FollowError(f"the history skips from {len(served)} to {entry['number']}")
            served.append((entry["height"], entry["index"], entry["result"], bytes.fromhex(entry["hash"])))
        if page["next_after"] is None:
            break
        after = page["next_after"]
    followed = served[:len(applied)]
    if followed != applied:
        raise FollowError("the node's governance history differs from what its blocks applied")
