"""Hostile governance transactions against a running validator: each refused with its own code,
before it reaches a block, and the node keeps committing transfers.

A one-validator network (power 100), so that removing the last validator can be tried; a second
validator of power 33 is added part way, so that a rotation onto a key in use can be.
"""

from __future__ import annotations

import time

import msgpack
import pytest

from node.core.actions import AddBank, RotateValidatorKey, SetValidator, proof_bytes
from node.core.governance import GovernanceTransaction
from node.core.keys import KeyPair, read_key_file
from node.core.tx import pack
from node.tools.client import NodeClient
from tests.localnet import Wallet, make_network, node_log, running

TIMEOUT_S = 30


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    network = make_network(tmp_path_factory.mktemp("hostile-gov") / "net", validators=1)
    with running(network) as net:
        net.wait_height(1)
        yield network, net


def submit(client: NodeClient, raw: bytes) -> dict:
    return client.submit([raw])[0]


def committed(client: NodeClient, result: dict) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while (status := client.tx(result["hash"]))["status"] != "committed":
        assert time.monotonic() < deadline, "not committed in time"
        time.sleep(0.1)
    return status


class Board:
    def __init__(self, network, client: NodeClient) -> None:
        self.members = [read_key_file(path) for path in network.board_key_files]
        self.chain_id = network.genesis.chain_id
        self.client = client

    def action(self, action, *, signers=None, sequence=None, expiry=None) -> bytes:
        governance, height = self.client.governance(), self.client.status()["height"]
        tx = GovernanceTransaction(governance["pending_sequence"] if sequence is None else sequence,
                                   height + 100 if expiry is None else expiry, action)
        signers = self.members[:2] if signers is None else signers
        return tx.signed([tx.approve(key, self.chain_id) for key in signers]).raw


def test_hostile_governance_is_refused_with_its_code_and_the_node_keeps_running(node):
    network, net = node
    client = net.client(0)
    board = Board(network, client)
    validator = read_key_file(network.validator_key_files[0])
    stranger, second = KeyPair.generate(), KeyPair.generate()
    bank = KeyPair.generate().public_key
    refusals = {}

    refusals["too_few_signatures"] = submit(client, board.action(AddBank("Bank X", bank), signers=board.members[:1]))
    refusals["not_board_signer"] = submit(client, board.action(AddBank("Bank X", bank),
                                                               signers=[board.members[0], stranger]))
    refusals["expired"] = submit(client, board.action(AddBank("Bank X", bank), expiry=1))
    refusals["empty_validator_set"] = submit(client, board.action(SetValidator(validator.public_key, 0)))
    refusals["power_change_too_large"] = submit(client, board.action(SetValidator(second.public_key, 34)))
    # A signer twice is not a transaction at all.
    good = board.action(AddBank("Bank X", bank))
    *fields, approvals = msgpack.unpackb(good)
    refusals["duplicate_signer"] = submit(client, pack([*fields, [approvals[0], approvals[0]]]))

    accepted = submit(client, good)
    assert accepted["accepted"], accepted
    assert committed(client, accepted)["result"] == "ok"
    refusals["bad_sequence"] = submit(client, good)  # the same bytes again: a replay
    refusals["bad_sequence, old number"] = submit(client, board.action(AddBank("Bank Y", stranger.public_key),
                                                                       sequence=0))

    joined = submit(client, board.action(SetValidator(second.public_key, 33)))
    added_at = committed(client, joined)["height"]
    net.wait_height(added_at + 2)
    proof = second.sign(proof_bytes(board.chain_id, validator.public_key, second.public_key))
    refusals["key_in_use"] = submit(client, board.action(RotateValidatorKey(validator.public_key,
                                                                            second.public_key, proof)))

    for expected, result in refusals.items():
        assert not result["accepted"] and result["code"] == expected.split(",")[0], (expected, result)
        assert result["message"]
    # Nothing refused took a sequence number: the two accepted actions hold 0 and 1.
    assert client.governance()["next_sequence"] == 2
    assert [a["sequence"] for a in client.governance_history()["actions"]] == [0, 1]

    wallet = Wallet(network.bank_key_files[0], board.chain_id)
    transfer = submit(client, wallet.transfer(bank, 5).raw)
    assert committed(client, transfer)["result"] == "ok", node_log(net, 0)
    assert net.alive(0)
