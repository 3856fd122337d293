"""The board changes a running network under a steady transfer load, with the operators' commands.

Four validator processes; clients keep sending transfers to two of them the
whole time.  The board, through ``somnode gov`` (build, sign, combine,
submit), then:

1. adds a fifth validator, a new process started from its own config: it
   catches up, and its precommits appear in later certificates;
2. removes validator4: the others close its link and its votes appear in no
   certificate from the height the removal holds;
3. lets validator1 rotate its own key: restarted with ``node.next_key_file``,
   it signs with the new key from the height the rotation holds.

At the end every transfer a node accepted is committed exactly once, every
node agrees on the app hash of every height it has, and a client that
trusts only the genesis follows the set and verifies every certificate
(node/tools/follow.py).
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from node.app.config import load_config, render_config
from node.core.keys import read_key_file
from node.tools.client import NodeClient
from node.tools.follow import follow
from node.tools.testnet import LocalTestnet
from tests.localnet import (
    TransferLoad,
    Wallet,
    board_decides,
    height_of,
    joining_config,
    make_network,
    node_log,
    somnode,
    wait_for,
)

TIMEOUT_S = 90
LOAD_NODES = (1, 2)  # validator2 and validator3: never restarted, never removed


def certificate_signers(net: LocalTestnet, index: int, height: int) -> set[str]:
    return {p["validator"] for p in net.client(index).block(height)["commit"]["precommits"]}


def test_the_board_adds_removes_and_rotates_validators_under_load(tmp_path):
    network = make_network(tmp_path / "net", validators=4)
    directory, genesis = network.directory, network.genesis
    joining_config(directory, "validator5", load_config(network.config_files[0]))
    net = LocalTestnet(directory)  # validators 1-4 and the joining validator5 (index 4)
    original = [0, 1, 2, 3]
    load = TransferLoad(net, [Wallet(path, genesis.chain_id) for path in network.bank_key_files], LOAD_NODES)
    try:
        for index in original:
            net.start(index)
        net.wait_ready(indices=original)
        net.wait_height(2, indices=original)
        load.start()
        api = net.api_urls[1]
        board = list(network.board_key_files)
        address = [read_key_file(path).address for path in network.validator_key_files]

        # 1. A fifth validator joins: started first, it is refused until the set holds it.
        net.start(4)
        net.wait_ready(indices=[4])
        fifth = read_key_file(directory / "keys" / "validator5.json").address
        added_at = board_decides(tmp_path, "add", ["set-validator", "--validator", fifth, "--power", "100"],
                                 api, board[:2])
        holds_from = net.client(1).validators(added_at + 2)
        assert holds_from["from_height"] == added_at + 2 and fifth in {v["address"] for v in holds_from["validators"]}
        assert fifth not in {v["address"] for v in net.client(1).validators(added_at + 1)["validators"]}
        wait_for(lambda: height_of(net, 4) >= added_at + 2, "the fifth validator caught up")
        wait_for(lambda: any(fifth in certificate_signers(net, 1, h)
                             for h in range(added_at + 2, height_of(net, 1) + 1)),
                 "a certificate carries the fifth validator's precommit")

        # 2. validator4 is removed; it keeps running, but nobody links with it or counts its votes.
        removed_at = board_decides(tmp_path, "remove",
                                   ["set-validator", "--validator", address[3], "--power", "0"], api, board[1:])
        wait_for(lambda: height_of(net, 1) >= removed_at + 6, "blocks after the removal")
        for index in (0, 1, 2, 4):
            wait_for(lambda: address[3] not in net.status(index)["peers"], f"validator{index + 1} closed the link")
        for h in range(removed_at + 2, height_of(net, 1) + 1):
            assert address[3] not in certificate_signers(net, 1, h), h
        assert net.alive(3), node_log(net, 3)

        # 3. validator1 rotates its key: restarted with the next key configured, then its own approval.
        next_key = directory / "keys" / "validator1-next.json"
        somnode("keygen", "--out", next_key)
        config_path = network.config_files[0]
        config = load_config(config_path)
        net.stop(0)
        config_path.write_text(render_config(
            dataclasses.replace(config, node=dataclasses.replace(config.node, next_key_file=next_key)),
            config_path.parent))
        net.start(0)
        net.wait_ready(indices=[0])
        new_address = read_key_file(next_key).address
        rotated_at = board_decides(
            tmp_path, "rotate", ["rotate-key", "--old", address[0], "--new-key", next_key], api,
            [network.validator_key_files[0]])
        wait_for(lambda: any(new_address in certificate_signers(net, 1, h)
                             for h in range(rotated_at + 2, height_of(net, 1) + 1)),
                 "a certificate carries validator1's new key")
        for h in range(rotated_at + 2, height_of(net, 1) + 1):
            assert address[0] not in certificate_signers(net, 1, h), h

        # 4. Exactly once, one app hash, and a client that follows it all from the genesis.
        load.stop()
        assert load.accepted and not load.refused, load.refused[:3]
        members = [0, 1, 2, 4]
        wait_for(lambda: all(net.client(1).tx(h)["status"] == "committed" for h in load.accepted[-20:]),
                 "the last transfers committed")
        assert all(net.client(1).tx(h)["status"] == "committed" for h in load.accepted)
        top = height_of(net, 1)
        seen = Counter(h for height in range(1, top + 1) for h in net.client(1).block(height)["txs"])
        assert [h for h in load.accepted if seen[h] != 1] == []
        tip = min(height_of(net, i) for i in members)
        for height in range(1, tip + 1):
            hashes = {net.client(i).block(height)["app_hash"] for i in members}
            if height <= height_of(net, 3):
                hashes.add(net.client(3).block(height)["app_hash"])
            assert len(hashes) == 1, f"height {height}: app hashes {hashes}"
        followed = follow(NodeClient(api), genesis, tip)
        assert [start for start, _ in followed.schedule] == [1, added_at + 2, removed_at + 2, rotated_at + 2]
        assert followed.governance.sequence == 2, "the rotation was the validator's own: no board sequence"
        assert [(height, code) for height, _, code, _ in followed.applied] == [
            (added_at, "ok"), (removed_at, "ok"), (rotated_at, "ok")]
        history = net.client(0).governance_history()["actions"]
        assert [(a["action"]["type"], a["result"]) for a in history] == [
            ("set_validator", "ok"), ("set_validator", "ok"), ("rotate_validator_key", "ok")]
        assert net.client(4).governance()["next_sequence"] == 2
    finally:
        load.stopping.set()
        net.stop()
