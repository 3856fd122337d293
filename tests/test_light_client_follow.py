"""Following headers from the genesis (node/lightclient/client.py, docs/protocol.md §17.2) on a synthetic
chain served by an in-memory API: a set change is followed, and each way a node could slip in a header or a
set that the chain did not decide is refused with the step that failed.

The live counterpart, against real validator processes, is tests/test_light_client_network.py.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from consensus.messages import MessageType, Vote
from node.core import rfc6962
from node.core.address import encode_address
from node.core.block import Header
from node.core.genesis import Bank, BoardMember, Genesis, GenesisBoard, GenesisValidator
from node.core.keys import KeyPair
from node.core.tiers import Tier
from node.core.validator_set import validators_hash
from node.lightclient.client import LightClient, NodeUnavailable, VerificationFailed

CHAIN = "som-follow-test"
KEYS = [KeyPair.from_seed(bytes([0x50 + i]) * 32) for i in range(5)]
OLD = tuple(sorted((k.public_key, 1) for k in KEYS[:4]))
NEW = tuple(sorted([*OLD, (KEYS[4].public_key, 2)]))  # total 6: the four old keys alone are short of 5
CHANGE_AT = 150
GENESIS = Genesis(
    chain_id=CHAIN, genesis_time="2026-01-01T00:00:00Z", issuer=b"\x31" * 32,
    banks=(Bank("bank", b"\x32" * 32),),
    validators=tuple(GenesisValidator(f"v{i}", k.public_key, 1, f"127.0.0.1:{1000 + i}", f"127.0.0.1:{2000 + i}")
                     for i, k in enumerate(KEYS[:4])),
    balances=((b"\x32" * 32, 1_000_000),),
    board=GenesisBoard(1, (BoardMember("chair", b"\x34" * 32),)),
    tiers=(Tier(0, "anonymous", 10**12, 10**12, 10**12),),
)


@dataclass
class FakeApi:
    """What a node's API answers, as documents by path; a missing path is the node's 404."""

    documents: dict[str, Any] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def get(self, path: str) -> object:
        self.asked.append(path)
        if path not in self.documents:
            raise NodeUnavailable(f"GET {path}: HTTP 404")
        return self.documents[path]


def set_of(height: int) -> tuple[tuple[bytes, int], ...]:
    return NEW if height >= CHANGE_AT else OLD


def members(height: int) -> list[KeyPair]:
    keys = {key for key, _ in set_of(height)}
    return [k for k in KEYS if k.public_key in keys]


def chain(top: int, signers: Callable[[int], list[KeyPair]] = members) -> FakeApi:
    api = FakeApi({"/v1/genesis": {"hash": GENESIS.hash().hex()}, "/v1/status": {"height": top}})
    parent = GENESIS.hash()
    for height in range(1, top + 1):
        header = Header(CHAIN, height, 1_767_225_600_000 + height, KEYS[0].public_key, parent, b"\x11" * 32,
                        rfc6962.EMPTY_ROOT, validators_hash(set_of(height + 1)), rfc6962.EMPTY_ROOT, 0)
        parent = header.hash()
        api.documents[f"/v1/blocks/{height}"] = certified(header, signers(height))
    api.documents[f"/v1/validators?height={CHANGE_AT}"] = {
        "validators": [{"address": encode_address(key), "power": power} for key, power in NEW]}
    return api


def test_three_hundred_headers_and_a_set_change_are_followed_in_well_under_seconds():
    api = chain(300)
    client = LightClient(api, GENESIS)
    client.check_genesis()
    started = time.perf_counter()
    client.follow_to(client.latest_height())
    elapsed = time.perf_counter() - started
    assert client.height == 300 and set(client.headers) == set(range(1, 301))
    assert [(c.height, c.before, c.after) for c in client.changes] == [(CHANGE_AT, OLD, NEW)]
    assert [p for p in api.asked if p.startswith("/v1/validators")] == [f"/v1/validators?height={CHANGE_AT}"]
    assert client.validators_at(CHANGE_AT - 1).total_power == 4 and client.validators_at(CHANGE_AT).total_power == 6
    assert elapsed < 30, f"following 300 headers took {elapsed:.1f} s"  # a wide bound: the CPU may be shared


def refused(api: FakeApi, top: int) -> str:
    client = LightClient(api, GENESIS)
    with pytest.raises(VerificationFailed) as failure:
        client.follow_to(top)
    return str(failure.value)


def test_a_served_set_that_is_not_the_one_the_header_names_is_refused():
    api = chain(CHANGE_AT + 1)
    api.documents[f"/v1/validators?height={CHANGE_AT}"] = {
        "validators": [{"address": encode_address(key), "power": 3 if key == KEYS[4].public_key else power}
                       for key, power in NEW]}
    assert refused(api, CHANGE_AT + 1).startswith(f"block {CHANGE_AT}: validator set: the set served")


def test_after_a_change_the_old_set_alone_no_longer_certifies():
    api = chain(CHANGE_AT + 1, signers=lambda height: KEYS[:4])
    assert refused(api, CHANGE_AT + 1).startswith(f"block {CHANGE_AT}: certificate: insufficient power: 4 of 6")


def certified(header: Header, signers: list[KeyPair]) -> dict:
    """A block document for ``header`` with a valid certificate by ``signers``."""
    raw = header.encode()
    value = hashlib.sha256(raw).digest()
    precommits = []
    for key in signers:
        vote = Vote(MessageType.PRECOMMIT, header.height, 0, value, key.public_key, bytes(64))
        precommits.append({"validator": key.address, "signature": key.sign(vote.signing_bytes(CHAIN)).hex()})
    return {"header": raw.hex(), "commit": {"round": 0, "value_id": value.hex(), "precommits": precommits}}


def test_a_certified_header_that_does_not_name_its_parent_is_refused():
    """A node splicing two histories: block 3 is properly certified, but its parent is not our block 2."""
    api = chain(3)
    header = Header(CHAIN, 3, 1_767_225_600_003, KEYS[0].public_key, b"\x22" * 32, b"\x11" * 32,
                    rfc6962.EMPTY_ROOT, validators_hash(OLD), rfc6962.EMPTY_ROOT, 0)
    api.documents["/v1/blocks/3"] = certified(header, KEYS[:4])
    assert refused(api, 3) == "block 3: header: previous_block_hash is not the hash of the verified header 2"


def test_a_header_whose_certificate_is_for_another_value_is_refused():
    api = chain(2)
    api.documents["/v1/blocks/2"]["header"] = chain(3).documents["/v1/blocks/3"]["header"]
    assert refused(api, 2) == "block 2: header: height 3, expected 2"
    api = chain(2)
    document = api.documents["/v1/blocks/2"]
    raw = bytearray.fromhex(document["header"])
    raw[-3] ^= 1  # inside tx_root: still a header, no longer the one signed
    document["header"] = raw.hex()
    assert refused(api, 2).startswith("block 2: certificate: certificate decides value")


def test_another_chain_and_a_wrong_height_are_refused():
    api = chain(2)
    api.documents["/v1/blocks/2"] = api.documents["/v1/blocks/1"]
    assert refused(api, 2) == "block 2: header: height 1, expected 2"
    client = LightClient(chain(1), GENESIS)
    client.chain_id = "som-other"
    with pytest.raises(VerificationFailed, match="block 1: header: chain 'som-follow-test', not 'som-other'"):
        client.follow_to(1)


def test_a_node_of_another_genesis_is_refused():
    api = chain(1)
    api.documents["/v1/genesis"] = {"hash": "00" * 32}
    with pytest.raises(VerificationFailed, match="genesis: the node's genesis hash 00"):
        LightClient(api, GENESIS).check_genesis()


@pytest.mark.parametrize("position", [{"height": -1, "index": 0}, {"height": 2**64, "index": 0},
                                      {"height": 3, "index": 2**32}])
def test_an_order_listed_where_no_order_key_can_be_is_refused(position):
    api = chain(4)
    holder = KeyPair.from_seed(b"\x61" * 32).public_key
    api.documents[f"/v1/accounts/{encode_address(holder)}/orders"] = {"orders": [position]}
    client = LightClient(api, GENESIS)
    client.follow_to(4)
    with pytest.raises(VerificationFailed, match="no such key can exist"):
        client.prove_orders(encode_address(holder), 3, None)
