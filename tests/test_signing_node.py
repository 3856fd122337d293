"""One validator in this process, as an operator sees its keys: the warning for a plain key file outside
practice networks, and ``somnode_signatures_total`` counting the signatures made and those lost while a
remote signer is away (the node keeps running meanwhile)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from node.app.assembly import ValidatorNode, load_node_files
from node.app.config import SignerSection, load_config, render_config
from node.core.fields import Endpoint
from node.core.keys import KeyPair, read_key_file, write_key_file
from node.tools.network import create_network
from tests.localnet import free_ports

TIMEOUT_S = 30


def signatures(node: ValidatorNode, outcome: str) -> float:
    value = node.registry.get_sample_value("somnode_signatures_total", {"outcome": outcome})
    assert value is not None, "both outcomes exist from the start"
    return value


async def until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


async def test_a_plain_key_file_is_a_warning_outside_practice_networks_and_its_signatures_count(tmp_path, caplog):
    for chain, warned in (("som-main", True), ("som-localnet", False)):
        network = create_network(tmp_path / chain, validators=1, banks=1, chain_id=chain,
                                 ports=[tuple(free_ports(2))])
        node = ValidatorNode(*load_node_files(network.config_files[0]))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="node.app.assembly"):
            try:
                await node.start()
                assert node.store is not None
                store = node.store
                await until(lambda: store.height >= 1, "the validator commits")  # then idles till a heartbeat
                assert signatures(node, "made") >= 2 and signatures(node, "unavailable") == 0
            finally:
                await node.stop()
        assert ("node.plain_key_file" in caplog.text) == warned, (chain, caplog.text)


async def test_a_validator_whose_remote_signer_is_away_runs_and_counts_the_lost_signatures(tmp_path, caplog):
    network = create_network(tmp_path / "net", validators=1, banks=1, ports=[tuple(free_ports(2))])
    path = network.config_files[0]
    config = load_config(path)
    link_key_file = path.parent / "signer-link.json"
    write_key_file(link_key_file, KeyPair.generate())
    validator_key = read_key_file(network.validator_key_files[0]).public_key
    signer = SignerSection(backend="remote", remote_address=Endpoint("127.0.0.1", free_ports(1)[0]),
                           remote_key=validator_key, remote_link_key_file=link_key_file, remote_timeout_ms=200)
    path.write_text(render_config(dataclasses.replace(
        config, node=dataclasses.replace(config.node, key_file=None), signer=signer), path.parent))
    node = ValidatorNode(*load_node_files(path))
    with caplog.at_level(logging.WARNING, logger="node.signing.remote"):
        try:
            await node.start()
            assert node.key.public_key == validator_key, "the node knows its key without its signer"
            await until(lambda: signatures(node, "unavailable") >= 2, "the lost signatures are counted")
            assert node.halted is not None and not node.halted.done(), "a validator never halts for its signer"
            assert node.store is not None and node.store.height == 0 and signatures(node, "made") == 0
        finally:
            await node.stop()
    assert "remote_signer.unavailable" in caplog.text
    assert "node.plain_key_file" not in caplog.text
