"""Helpers for tests that run real validator processes on loopback."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from node.app.config import load_config, render_config
from node.core.keys import KeyPair, read_key_file
from node.core.tx import SignedTransaction, Transaction, TxKind
from node.tools.network import LocalNetwork, create_network
from node.tools.testnet import LocalTestnet, free_ports


def make_network(directory: Path, validators: int = 4, **consensus: int) -> LocalNetwork:
    """A fresh network on free ports; ``consensus`` overrides [consensus] config fields."""
    ports = free_ports(2 * validators)
    network = create_network(directory, validators=validators, banks=max(1, validators - 1),
                             ports=[(ports[2 * i], ports[2 * i + 1]) for i in range(validators)])
    defaults = dict(timeout_propose_ms=1000, timeout_prevote_ms=300, timeout_precommit_ms=300,
                    timeout_delta_ms=200, empty_block_wait_ms=100)
    defaults.update(consensus)
    for path in network.config_files:
        config = load_config(path)
        config = dataclasses.replace(config, consensus=dataclasses.replace(config.consensus, **defaults))
        path.write_text(render_config(config, path.parent))
    return network


@contextmanager
def running(network: LocalNetwork, start: bool = True) -> Iterator[LocalTestnet]:
    """The network's processes, always stopped (and reaped) on exit, also when the test fails."""
    net = LocalTestnet(network.directory)
    try:
        if start:
            net.start()
            net.wait_ready()
        yield net
    finally:
        net.stop()


class Wallet:
    """Signs transactions with locally tracked nonces."""

    def __init__(self, key_file: Path, chain_id: str) -> None:
        self.key: KeyPair = read_key_file(key_file)
        self.chain_id = chain_id
        self.nonce = 0

    def transfer(self, to: bytes, amount: int, memo: str = "") -> SignedTransaction:
        stx = Transaction(TxKind.TRANSFER, self.key.public_key, self.nonce, amount, to, memo).sign(
            self.key, self.chain_id)
        self.nonce += 1
        return stx


def node_log(net: LocalTestnet, index: int) -> str:
    path = net.config_files[index].parent / "node.log"
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"
