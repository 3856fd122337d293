"""Helpers for tests that run real validator processes on loopback."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from node.app.config import ApiSection, Config, NodeSection, P2PSection, load_config, render_config
from node.core.fields import Endpoint
from node.core.keys import KeyPair, read_key_file
from node.core.tx import SignedTransaction, Transaction, TxKind
from node.tools.client import ApiClientError
from node.tools.network import LocalNetwork, create_network
from node.tools.testnet import LocalTestnet, free_ports


def make_network(directory: Path, validators: int = 4, banks: int | None = None, retain_blocks: int = 0,
                 observers: int = 0, **consensus: int) -> LocalNetwork:
    """A fresh network on free ports, ``observers`` registered in the genesis; ``consensus`` overrides
    [consensus] config fields."""
    nodes = validators + observers
    ports = free_ports(2 * nodes)
    network = create_network(directory, validators=validators, banks=banks or max(1, validators - 1),
                             ports=[(ports[2 * i], ports[2 * i + 1]) for i in range(nodes)], observers=observers)
    # No heartbeat wait: these tests watch heights pass on a network that is often idle.
    # tests/test_idle_network.py runs the heartbeat (node/host/heartbeat.py).
    defaults = dict(timeout_propose_ms=1000, timeout_prevote_ms=300, timeout_precommit_ms=300,
                    timeout_delta_ms=200, empty_block_wait_ms=100, empty_block_interval_ms=0)
    defaults.update(consensus)
    for path in network.config_files + network.observer_config_files:
        config = load_config(path)
        config = dataclasses.replace(config, consensus=dataclasses.replace(config.consensus, **defaults),
                                     storage=dataclasses.replace(config.storage, retain_blocks=retain_blocks,
                                                                 snapshot_interval=retain_blocks // 2 or 1000))
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


class TransferLoad(threading.Thread):
    """Transfers among the banks, a few every tenth of a second, each account to one node in nonce order."""

    def __init__(self, net: LocalTestnet, wallets: list[Wallet], nodes: tuple[int, ...]) -> None:
        """Each wallet sends to ``nodes[k % len(nodes)]``: nodes the test never stops."""
        super().__init__(name="transfer-load", daemon=True)
        self.net, self.wallets, self.nodes = net, wallets, nodes
        self.accepted: list[str] = []
        self.refused: list[dict] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.1):
            for k, wallet in enumerate(self.wallets):
                payee = self.wallets[(k + 1) % len(self.wallets)].key.public_key
                txs = [wallet.transfer(payee, 1) for _ in range(3)]
                try:
                    results = self.net.client(self.nodes[k % len(self.nodes)]).submit([stx.raw for stx in txs])
                except ApiClientError as exc:
                    self.refused.append({"error": str(exc)})
                    return
                for stx, result in zip(txs, results):
                    (self.accepted.append(stx.hash.hex()) if result["accepted"] else self.refused.append(result))

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


def somnode(*args: str | Path) -> str:
    done = subprocess.run([sys.executable, "-m", "node", *map(str, args)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"somnode {' '.join(map(str, args))}: {done.stdout}{done.stderr}"
    return done.stdout


def board_decides(workdir: Path, name: str, action: list[str], api: str, signers: list[Path]) -> int:
    """Build, sign (each member on their own copy), combine and submit; the height it committed at."""
    unsigned = workdir / f"{name}.json"
    somnode("gov", "build", *action, "--out", unsigned, "--node", api)
    assert "approvals     none yet" in somnode("gov", "show", unsigned)
    copies = []
    for number, key_file in enumerate(signers):
        copy = workdir / f"{name}-{number}.json"
        shutil.copy(unsigned, copy)
        somnode("gov", "sign", copy, "--key", key_file)
        copies.append(copy)
    signed = workdir / f"{name}-signed.json"
    somnode("gov", "combine", *copies, "--out", signed)
    said = somnode("gov", "submit", signed, "--node", api)
    assert "result=ok" in said, said
    return int(said.split("committed height=")[1].split()[0])


def wait_for(condition, what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def height_of(net: LocalTestnet, index: int) -> int:
    """The node's committed height, -1 while its API does not answer."""
    return (net.status(index) or {}).get("height", -1)


def proof(net: LocalTestnet, index: int, address: str, height: int) -> dict:
    """The node's proof document of an account at ``height``."""
    url = f"{net.api_urls[index]}/v1/accounts/{address}/proof?height={height}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def joining_config(network_dir: Path, name: str, template: Config, role: str = "validator") -> Path:
    """What the operator of a node joining a running network writes: its own key and addresses, the chain's
    genesis, and the network's consensus and storage settings (from ``template``, another node's config)."""
    directory = network_dir / name
    directory.mkdir()
    key_file = network_dir / "keys" / f"{name}.json"
    somnode("keygen", "--out", key_file)
    p2p, api = free_ports(2)
    config = Config(node=NodeSection(name, directory / "data", key_file, network_dir / "genesis.json", role=role),
                    p2p=P2PSection(Endpoint("127.0.0.1", p2p)), api=ApiSection(Endpoint("127.0.0.1", api)),
                    consensus=template.consensus, storage=template.storage)
    path = directory / "config.toml"
    path.write_text(render_config(config, directory))
    return path
