"""Hostile peers against real validator processes, through the real p2p layer.

The test process joins the network as validator 4 (it holds that key) and
sends votes that claim to come from another validator, or from a key outside
the genesis; a second peer with a key outside the genesis tries to link.  The
validators drop the forgeries, refuse the stranger, count both in /metrics,
and keep committing with one app hash.
"""

from __future__ import annotations

import asyncio
import urllib.request

from consensus.messages import MessageType, Vote, signing_bytes
from node.core.keys import KeyPair, read_key_file
from node.p2p.config import NetworkConfig
from node.p2p.transport import PeerNetwork
from tests.localnet import free_ports, make_network, node_log, running


def metric(url: str, name: str, labels: str = "") -> float:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(f"{name}{labels} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.split()[-1])
    return 0.0


async def poll(predicate, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await asyncio.to_thread(predicate):
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


def network_config(genesis, listen_port: int, extra: bytes | None = None) -> NetworkConfig:
    validators = tuple((v.public_key, v.p2p_address) for v in genesis.validators)
    if extra is not None:
        validators += ((extra, f"127.0.0.1:{listen_port}"),)
    return NetworkConfig(chain_id=genesis.chain_id, genesis_hash=genesis.hash(), validators=validators,
                         listen_port=listen_port, backoff_max_s=1.0)


async def test_forged_votes_are_dropped_and_unknown_keys_cannot_link(tmp_path):
    network = make_network(tmp_path / "net", validators=4)
    genesis = network.genesis
    v1, v4 = genesis.validators[0], genesis.validators[3]
    with running(network, start=False) as net:
        try:
            for i in range(3):
                net.start(i)
            await asyncio.to_thread(net.wait_ready, 60, [0, 1, 2])
            target = net.api_urls[1]

            # Validator 4's key, held by the test: a legitimate link, then forgeries over it.
            insider = PeerNetwork(network_config(genesis, int(v4.p2p_address.rsplit(":", 1)[1])),
                                  read_key_file(network.validator_key_files[3]))
            await insider.start()
            try:
                await asyncio.wait_for(insider.wait_for_peers(3), 30)
                forger = KeyPair.generate()

                def rejected(reason: str) -> float:
                    return metric(target, "somnode_peer_messages_rejected_total", f'{{reason="{reason}"}}')

                # A vote for a height already decided is dropped unchecked, and blocks come fast:
                # each burst is aimed at the height being decided when it is sent, until both counted.
                deadline = asyncio.get_running_loop().time() + 30
                while not (await asyncio.to_thread(rejected, "bad_signature") >= 3
                           and await asyncio.to_thread(rejected, "unknown_signer") >= 3):
                    assert asyncio.get_running_loop().time() < deadline, "forgeries were not counted"
                    height = (await asyncio.to_thread(net.status, 1))["height"] + 1
                    for round_ in range(3):
                        body = signing_bytes(genesis.chain_id, MessageType.PRECOMMIT, height, round_, None)
                        # Claims to be validator 1 but is signed by another key.
                        insider.send(net_key(genesis, 1), Vote(MessageType.PRECOMMIT, height, round_, None,
                                                              v1.public_key, forger.sign(body)))
                        # Signed correctly, by a key that is not a validator.
                        insider.send(net_key(genesis, 1), Vote(MessageType.PRECOMMIT, height, round_, None,
                                                              forger.public_key, forger.sign(body)))
                    await asyncio.sleep(0.3)
            finally:
                await insider.stop()

            # A key outside the genesis cannot link at all.
            stranger_key = KeyPair.generate()
            stranger_port = free_ports(1)[0]
            stranger = PeerNetwork(network_config(genesis, stranger_port, extra=stranger_key.public_key),
                                   stranger_key)
            await stranger.start()
            try:
                await poll(lambda: metric(target, "somnode_p2p_refusals_total",
                                          '{reason="unknown_validator"}') >= 1)
                assert stranger.peers() == ()
            finally:
                await stranger.stop()

            # The three honest validators kept going, in agreement.
            top = (await asyncio.to_thread(net.status, 0))["height"] + 3
            await asyncio.to_thread(net.wait_height, top, 60, [0, 1, 2])
            assert len({net.client(i).block(top)["app_hash"] for i in range(3)}) == 1
            assert all(net.alive(i) for i in range(3))
        except BaseException:
            print(node_log(net, 1))
            raise


def net_key(genesis, index: int) -> bytes:
    return genesis.validators[index].public_key
