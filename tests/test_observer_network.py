"""Observer nodes on a real multi-process network, under a steady transfer load.

Four validator processes and one observer registered in the genesis; clients
keep sending transfers to two validators the whole time.  The observer
follows: at the same height its blocks, balances and account proofs are the
validators', a transfer submitted to its API is relayed and commits, and its
key is in no certificate.  Then the board registers a second observer with
``somnode gov`` while the network runs: started before, it is refused until
the registration commits, then links and follows.
"""

from __future__ import annotations

from node.app.config import load_config
from node.core.address import encode_address
from node.core.keys import KeyPair, read_key_file
from node.tools.testnet import LocalTestnet
from tests.localnet import (
    TransferLoad,
    Wallet,
    board_decides,
    height_of,
    joining_config,
    make_network,
    node_log,
    proof,
    wait_for,
)

LOAD_NODES = (1, 2)  # validator2 and validator3
OBSERVER = 4  # observer1, registered in the genesis
JOINING = 5  # observer2, registered by the board while the network runs


def same_block(net: LocalTestnet, index: int, other: int, height: int) -> bool:
    """The same block at ``height``, certified for the same value.  The certificates themselves may
    differ: each validator keeps the +2/3 of precommits it saw, and an observer the one it fetched."""
    ours, theirs = net.client(index).block(height), net.client(other).block(height)
    return ({k: v for k, v in ours.items() if k != "commit"} == {k: v for k, v in theirs.items() if k != "commit"}
            and ours["commit"]["value_id"] == theirs["commit"]["value_id"])


def test_observers_follow_serve_and_forward_without_voting(tmp_path):
    network = make_network(tmp_path / "net", validators=4, observers=1)
    directory, genesis = network.directory, network.genesis
    joining_config(directory, "observer2", load_config(network.config_files[0]), role="observer")
    net = LocalTestnet(directory)
    assert net.observers == [OBSERVER, JOINING]
    wallets = [Wallet(path, genesis.chain_id) for path in network.bank_key_files]
    load = TransferLoad(net, wallets[:2], LOAD_NODES)
    try:
        net.start()
        net.wait_ready()
        net.wait_height(2, indices=[0, 1, 2, 3])
        load.start()
        assert net.status(OBSERVER)["role"] == "observer" and net.status(0)["role"] == "validator"
        observer_address = read_key_file(directory / "keys" / "observer1.json").address

        # 1. It follows the validators under load.
        target = height_of(net, 1) + 5
        wait_for(lambda: height_of(net, OBSERVER) >= target, f"the observer reached {target}: "
                 f"{node_log(net, OBSERVER)}")

        # 2. A transfer submitted to the observer is relayed to the validators and commits.
        payee = KeyPair.generate().public_key
        stx = wallets[2].transfer(payee, 12_345)
        [result] = net.client(OBSERVER).submit([stx.raw])
        assert result["accepted"], result
        committed = net.client(1).wait_committed(stx.hash.hex(), timeout_s=60)
        wait_for(lambda: net.client(OBSERVER).tx(stx.hash.hex())["status"] == "committed",
                 "the observer applied the block with its transfer")
        assert net.client(OBSERVER).tx(stx.hash.hex())["height"] == committed["height"]

        # 3. At one height, its blocks, balances and proofs are the validators'.
        load.stop()
        assert load.accepted and not load.refused, load.refused[:3]
        height = min(height_of(net, 0), height_of(net, OBSERVER))
        assert height >= committed["height"]
        payee_address = encode_address(payee)
        for address in (payee_address, wallets[0].key.address, wallets[2].key.address):
            assert proof(net, OBSERVER, address, height) == proof(net, 0, address, height), address
        assert proof(net, OBSERVER, payee_address, height)["account"]["balance"] == 12_345
        assert same_block(net, OBSERVER, 0, height)
        wait_for(lambda: all(net.client(OBSERVER).tx(h)["status"] == "committed" for h in load.accepted[-10:]),
                 "the observer has the last transfers")
        last = max(net.client(1).tx(h)["height"] for h in load.accepted)
        wait_for(lambda: height_of(net, OBSERVER) >= last, "the observer has the last transfers' block")
        for wallet in wallets:
            address = wallet.key.address
            ours, theirs = proof(net, OBSERVER, address, last), proof(net, 1, address, last)
            assert ours["account"]["balance"] == theirs["account"]["balance"], address

        # 4. It never votes: its key is in no certificate.
        for h in range(1, height + 1):
            signers = {p["validator"] for p in net.client(0).block(h)["commit"]["precommits"]}
            assert observer_address not in signers, h
        assert observer_address not in {v["address"] for v in net.client(0).validators()["validators"]}

        # 5. The board registers a second observer while the network runs; started first, it follows after.
        net.start(JOINING)
        net.wait_ready(indices=[JOINING])
        joining = read_key_file(directory / "keys" / "observer2.json").address
        added_at = board_decides(tmp_path, "add-observer",
                                 ["add-observer", "--name", "Financial supervision", "--observer", joining],
                                 net.api_urls[1], list(network.board_key_files[:2]))
        assert {"name": "Financial supervision", "address": joining} in net.client(1).governance()["observers"]
        target = max(added_at, height_of(net, 1)) + 3
        wait_for(lambda: height_of(net, JOINING) >= target, f"the new observer followed to {target}: "
                 f"{node_log(net, JOINING)}")
        assert same_block(net, JOINING, 1, target)
        # It follows from whichever validator took its link first; the others' refusals before the
        # registration held leave it backing off, for up to p2p's longest backoff.
        wait_for(lambda: joining in net.status(1)["peers"], "validator2 links with the new observer")
        for index in range(len(net)):
            assert net.alive(index), node_log(net, index)
    finally:
        load.stop()
        net.stop()
